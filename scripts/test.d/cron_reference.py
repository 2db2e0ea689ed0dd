"""Independent reference implementation of the supervisor's cron schedule (Vixie cron / cronie rules).

Written from the documented contract only (not from Sources/Schedule), for the differential test
cron_differential.py. Standard library only; time zones through zoneinfo (the system's tz database).

    parse(expr)                        -> Schedule, or raises ValueError
    next_fire(schedule, zone, after)   -> int epoch seconds of the first firing strictly after `after`, or None

Firing rule: every local wall time L that the expression matches fires at f(L) = the first instant t whose
local wall time is >= L. That is L itself when L occurs once, its first occurrence when it occurs twice (fall
back), and the first instant after the gap when it does not exist (spring forward). f is non-decreasing, so
the next firing after instant A is f(L) for the smallest matching L greater than M(A) = the latest local wall
time seen at any instant <= A (which, inside a repeated hour, is the end of the first pass).
Local times are handled as "naive epoch seconds" (wall clock read as if it were UTC).
"""

import bisect
import datetime
import re
import zoneinfo

__all__ = ["parse", "next_fire", "Schedule", "local_seconds", "utc_offset"]

_BLANKS = re.compile(r"[ \t]+")
_DIGITS = re.compile(r"[0-9]+")
_NAME = re.compile(r"[A-Za-z]{3}")

_MONTHS = {n: i + 1 for i, n in enumerate("JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split())}
_DAYS = {n: i for i, n in enumerate("SUN MON TUE WED THU FRI SAT".split())}

# (name, low, high, names)
_SECOND = ("second", 0, 59, None)
_MINUTE = ("minute", 0, 59, None)
_HOUR = ("hour", 0, 23, None)
_DOM = ("day-of-month", 1, 31, None)
_MONTH = ("month", 1, 12, _MONTHS)
_DOW = ("day-of-week", 0, 7, _DAYS)

_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

_EPOCH_ORDINAL = datetime.date(1970, 1, 1).toordinal()


def _cron_weekday(d):
    """Sunday = 0 ... Saturday = 6."""
    return (d.weekday() + 1) % 7


def _weekdays_per_month_day():
    """(month, day) -> set of cron weekdays that date falls on over a whole 400-year Gregorian cycle."""
    table = {}
    d = datetime.date(2000, 1, 1)
    end = datetime.date(2400, 1, 1)
    one = datetime.timedelta(days=1)
    while d < end:
        table.setdefault((d.month, d.day), set()).add(_cron_weekday(d))
        d += one
    return table


_CALENDAR = _weekdays_per_month_day()


def _value(token, spec):
    name, low, high, names = spec
    if _DIGITS.fullmatch(token):
        v = int(token)
    elif names is not None and _NAME.fullmatch(token) and token.upper() in names:
        v = names[token.upper()]
    else:
        raise ValueError(f"{name} field: '{token}' is not a number or name")
    if not low <= v <= high:
        raise ValueError(f"{name} field: {v} is out of range {low}-{high}")
    return v


def _field(text, spec):
    name, low, high, _ = spec
    values = set()
    for item in text.split(","):
        if item == "":
            raise ValueError(f"{name} field '{text}': empty item")
        base, slash, step_text = item.partition("/")
        if slash:
            if not _DIGITS.fullmatch(step_text):
                raise ValueError(f"{name} field '{text}': step '{step_text}' is not a positive integer")
            step = int(step_text)
            if step < 1:
                raise ValueError(f"{name} field '{text}': step 0")
        else:
            step = 1
        if base == "*":
            start, stop = low, high
        elif "-" in base:
            a, _, b = base.partition("-")
            start, stop = _value(a, spec), _value(b, spec)
            if start > stop:
                raise ValueError(f"{name} field '{text}': backwards range {start}-{stop}")
        else:
            start = _value(base, spec)
            stop = high if slash else start
        values.update(range(start, stop + 1, step))
    return values


class Schedule:
    def __init__(self, seconds, minutes, hours, doms, months, dows, dom_star, dow_star, text):
        self.seconds = sorted(seconds)
        self.minutes = sorted(minutes)
        self.hours = sorted(hours)
        self.doms = frozenset(doms)
        self.months = frozenset(months)
        self.dows = frozenset(d % 7 for d in dows)  # 7 is Sunday
        self.either = not (dom_star or dow_star)  # both day fields restricted: a day matches if either does
        self.text = text

    def __repr__(self):
        return f"Schedule({self.text!r})"

    def day_matches(self, d):
        if d.month not in self.months:
            return False
        dom_ok = d.day in self.doms
        dow_ok = _cron_weekday(d) in self.dows
        return (dom_ok or dow_ok) if self.either else (dom_ok and dow_ok)

    def time_matches(self, tod):
        h, r = divmod(tod, 3600)
        m, s = divmod(r, 60)
        return h in self.hours and m in self.minutes and s in self.seconds

    def next_time(self, tod):
        """Smallest matching second of the day >= tod, or None."""
        hrs, mins, secs = self.hours, self.minutes, self.seconds
        h0, r = divmod(tod, 3600)
        m0, s0 = divmod(r, 60)
        i = bisect.bisect_left(hrs, h0)
        if i < len(hrs) and hrs[i] == h0:
            j = bisect.bisect_left(mins, m0)
            if j < len(mins) and mins[j] == m0:
                k = bisect.bisect_left(secs, s0)
                if k < len(secs):
                    return h0 * 3600 + m0 * 60 + secs[k]
                j += 1
            if j < len(mins):
                return h0 * 3600 + mins[j] * 60 + secs[0]
            i += 1
        if i < len(hrs):
            return hrs[i] * 3600 + mins[0] * 60 + secs[0]
        return None

    def can_fire(self):
        for (month, day), weekdays in _CALENDAR.items():
            if month not in self.months:
                continue
            dom_ok = day in self.doms
            if self.either:
                if dom_ok or weekdays & self.dows:
                    return True
            elif dom_ok and weekdays & self.dows:
                return True
        return False

    def next_local(self, start):
        """Smallest matching local wall time (naive epoch seconds) >= start, searching ~401 years."""
        day, tod = divmod(start, 86400)
        d = datetime.date.fromordinal(_EPOCH_ORDINAL + day)
        limit = d.toordinal() + 401 * 366
        one = datetime.timedelta(days=1)
        while d.toordinal() <= limit:
            if d.month not in self.months:
                # jump to the first of the next month
                d = datetime.date(d.year + (d.month == 12), d.month % 12 + 1, 1)
                tod = 0
                continue
            if self.day_matches(d):
                t = self.next_time(tod)
                if t is not None:
                    return (d.toordinal() - _EPOCH_ORDINAL) * 86400 + t
            d += one
            tod = 0
        return None


def parse(expr):
    if not isinstance(expr, str):
        raise ValueError("not a string")
    text = expr.strip(" \t")
    if text.startswith("@"):
        key = text.lower() if text.isascii() else None
        if key not in _MACROS:
            raise ValueError(f"unknown macro '{text}'")
        text = _MACROS[key]
    fields = _BLANKS.split(text) if text else []
    if len(fields) == 5:
        fields = ["0"] + fields
    elif len(fields) != 6:
        raise ValueError(f"{len(fields)} fields, expected 5 or 6")
    sec, minute, hour, dom, month, dow = fields
    if dom == "?":
        dom = "*"
    if dow == "?":
        dow = "*"
    s = Schedule(
        _field(sec, _SECOND),
        _field(minute, _MINUTE),
        _field(hour, _HOUR),
        _field(dom, _DOM),
        _field(month, _MONTH),
        _field(dow, _DOW),
        dom.startswith("*"),
        dow.startswith("*"),
        expr,
    )
    if not s.can_fire():
        raise ValueError("the expression never fires")
    return s


# ---- time zones -----------------------------------------------------------------------------------------

def _zone(zone_name):
    return zoneinfo.ZoneInfo(zone_name)


def utc_offset(tz, t):
    """UTC offset in seconds at instant t (epoch seconds)."""
    off = datetime.datetime.fromtimestamp(t, tz).utcoffset()
    return off.days * 86400 + off.seconds


def local_seconds(tz, t):
    return t + utc_offset(tz, t)


_STEP = 1800  # offsets are sampled every 30 minutes, transitions found by bisection


def _pieces(tz, a, b):
    """[(start, end_exclusive, offset)] covering instants a..b, one per constant-offset stretch."""
    out = []
    cur, off = a, utc_offset(tz, a)
    start = a
    while cur < b:
        nxt = min(cur + _STEP, b)
        o = utc_offset(tz, nxt)
        if o == off:
            cur = nxt
            continue
        lo, hi = cur, nxt  # offset(lo) == off, offset(hi) != off
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if utc_offset(tz, mid) == off:
                lo = mid
            else:
                hi = mid
        out.append((start, hi, off))
        start, cur, off = hi, hi, utc_offset(tz, hi)
    out.append((start, b + 1, off))
    return out


_H = 3600


def _max_local_upto(tz, after):
    """Latest local wall time shown at any instant <= after (UTC offsets lie within -12h..+14h)."""
    best = None
    for s, e, o in _pieces(tz, after - 28 * _H, after):
        v = min(e - 1, after) + o
        if best is None or v > best:
            best = v
    return best


def _first_instant_reaching(tz, local):
    """Smallest instant t with local wall time >= local."""
    for s, e, o in _pieces(tz, local - 16 * _H, local + 16 * _H):
        t = max(s, local - o)
        if t < e:
            return t
    raise AssertionError("no instant reaches the local time")


def next_fire(schedule, zone_name, after):
    tz = _zone(zone_name)
    after = int(after)
    m = _max_local_upto(tz, after)
    local = schedule.next_local(m + 1)
    if local is None:
        return None
    t = _first_instant_reaching(tz, local)
    assert t > after
    return t


def brute_next_fire(schedule, zone_name, after, horizon):
    """Second-by-second scan (slow; for self-checks): instant t fires iff some matching local wall time lies in
    (latest local time before t, local time at t]. Returns the first firing in (after, after + horizon] or None."""
    tz = _zone(zone_name)
    m = max(local_seconds(tz, t) for t in range(after - 3 * _H, after + 1))  # folds in 2024+ are <= 2 h
    for t in range(after + 1, after + horizon + 1):
        lt = local_seconds(tz, t)
        if lt > m:
            for L in range(m + 1, lt + 1):
                day, tod = divmod(L, 86400)
                if schedule.time_matches(tod) and schedule.day_matches(
                        datetime.date.fromordinal(_EPOCH_ORDINAL + day)):
                    return t
            m = lt
    return None
