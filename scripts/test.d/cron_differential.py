#!/usr/bin/env python3
"""Seeded differential test of the supervisor's cron schedule against cron_reference.py.

    cron_differential.py --seed N [--cases K] [--supervisor PATH] [--verbose]
    cron_differential.py --self-test            (the reference alone, no supervisor)

Generates K random cases (zone, after-instant, expression), mostly within hours of real DST transitions
2024-2045, answers them with the reference, feeds all of them to one `supervisor schedule --batch` process
(stdin lines `ZONE AFTER EXPRESSION`, one stdout line each: epoch seconds, `never` or `error: ...`) and
compares. Exit 0 when every answer agrees, 1 otherwise (each disagreement is printed with a reproduction).
"""

import argparse
import datetime
import os
import random
import shlex
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ beside the scripts
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cron_reference as ref  # noqa: E402

ZONES = [
    "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Pacific/Chatham", "America/Sao_Paulo",
    "Africa/Casablanca", "Asia/Kolkata", "America/Santiago", "Europe/Dublin", "UTC",
    "Antarctica/Troll",  # +00 / +02: a two-hour gap and fold
    "America/St_Johns",  # -03:30 / -02:30
]

UTC = datetime.timezone.utc
START_2024 = int(datetime.datetime(2024, 1, 1, tzinfo=UTC).timestamp())
END_2045 = int(datetime.datetime(2046, 1, 1, tzinfo=UTC).timestamp())
H = 3600


def iso(t):
    return datetime.datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def local_iso(zone, t):
    return datetime.datetime.fromtimestamp(t, ref._zone(zone)).isoformat()


# ---- transitions ----------------------------------------------------------------------------------------

def transitions(zone, start, end):
    """[(instant, offset_before, offset_after)] in [start, end), sampling every 6 h and bisecting."""
    tz = ref._zone(zone)
    out = []
    t, off = start, ref.utc_offset(tz, start)
    while t < end:
        n = t + 6 * H
        o = ref.utc_offset(tz, n)
        if o != off:
            lo, hi = t, n
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if ref.utc_offset(tz, mid) == off:
                    lo = mid
                else:
                    hi = mid
            o = ref.utc_offset(tz, hi)
            out.append((hi, off, o))
            t, off = hi, o
            continue
        t = n
    return out


# ---- expressions ----------------------------------------------------------------------------------------

MONTH_NAMES = "JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split()
DAY_NAMES = "SUN MON TUE WED THU FRI SAT".split()
STEPS = [1, 2, 3, 4, 5, 6, 7, 10, 12, 15, 20, 30]

SPECIAL_VALID = [
    "0 0 29 2 */7", "0 0 29 2 SUN", "0 0 29 2 ?", "0 0 30 2 MON", "0 0 31 * *", "59 23 31 12 *",
    "0 0 * * 1/2", "0 0 * * 7/2", "30 2 * * TUE,7/4", "0 0 * * */3", "0 0 */2 * *", "0 0 * * 5-7",
    "0 2 * * 7", "0 2 * * 0", "0 0 ? * ?", "0 0 ? * MON", "0 0 1 * ?", "0 0 1,15 * MON-FRI",
    "0 0 31 * *", "0 0 * jan-Mar,Oct-DEC sun", "007 02 * * *", "*/20 * * * *",
    "0 0 1 1 *", "45 2 * * *", "45 3 * * *", "30 1 * * *", "30 0 * * *", "0 23/1 * * *",
    "0 0 29 2 MON", "0 0 * 2 */7", "0 1-3 * * *", "*/15 2 * * *", "0,30 0-3 * * *", "0 23 * * *",
    "0 30 2 * * *", "30 30 2 * * *", "59 59 1 * * *", "0 0 0 * * *", "*/10 * 2 * * *", "0 */30 2 * * *",
]

SPECIAL_INVALID = [
    "0 0 30 2 *", "0 0 31 4,6 *", "0 0 31 2,4,6,9,11 *", "0 0 30,31 FEB ?", "0 0 31 4 ?", "0 0 30 2 */7",
    "60 * * * *", "* 24 * * *", "0 0 0 * *", "0 0 32 * *", "0 0 * 0 *", "0 0 * 13 *", "0 0 * * 8",
    "60 0 0 * * *", "+5 * * * *", "? * * * *", "0 ? * * *", "0 0 * ? *", "? 0 0 * * *", "0 0 ?,1 * *",
    "0 0 * * ?/2", "0 0 * * 1,?", "*/0 * * * *", "0 0 1-5/0 * *", "5-1 * * * *", "0 0 * * FRI-SUN",
    "0 0 * FOO *", "0 0 * MON *", "0 0 * * JAN", "0 0 * * SUNDAY", "0 0 * * MO", "0 0 * JANUARY *",
    "0 0 * *", "0 0 0 0 * * * *", "@reboot", "@evry 5m", "@", "@daily 0",
    "@dailyx", "1,,2 * * * *", ",1 * * * *", "1, * * * *", "*/ * * * *", "1- * * * *", "-1 * * * *",
    "/5 * * * *", "1-2-3 * * * *", "1//2 * * * *", "*-5 * * * *", "** * * * *", "1.5 * * * *",
    "0x10 * * * *", "1_0 * * * *", "1e1 * * * *", "0 0 * * */MON", "0 0 * * MON/", "", "   ", "\t",
    "\uff15 * * * *", "\u0663 * * * *", "0\u00a00 * * * *", "0 0\u3000* * *", "0 0 * * \u017fun", "0 0 * * * * *",
    "0 0 1-32 * *", "0 0 * * 0-8", "0 60/5 * * *", "0 0 * * -1",
]


def rand_case(rng, s):
    r = rng.random()
    if r < 0.6:
        return s.upper()
    if r < 0.8:
        return s.lower()
    return "".join(c.upper() if rng.random() < 0.5 else c.lower() for c in s)


def render(rng, v, kind):
    if kind == "month" and rng.random() < 0.35:
        return rand_case(rng, MONTH_NAMES[v - 1])
    if kind == "dow" and v <= 6 and rng.random() < 0.35:
        return rand_case(rng, DAY_NAMES[v])
    s = str(v)
    if rng.random() < 0.04:
        s = "0" + s
    return s


def pick_value(rng, kind):
    if kind in ("second", "minute"):
        return rng.choice([0, 15, 30, 45]) if rng.random() < 0.5 else rng.randint(0, 59)
    if kind == "hour":
        return rng.choice([0, 1, 2, 3, 23]) if rng.random() < 0.6 else rng.randint(0, 23)
    if kind == "dom":
        return rng.randint(1, 28) if rng.random() < 0.85 else rng.randint(29, 31)
    if kind == "month":
        return rng.randint(1, 12)
    return rng.randint(0, 7)


def pick_step(rng):
    return rng.choice(STEPS) if rng.random() < 0.9 else rng.randint(1, 90)


def generic_field(rng, kind):
    items = []
    n = rng.choices([1, 2, 3], weights=[75, 17, 8])[0]
    for _ in range(n):
        r = rng.random()
        if r < 0.45:
            items.append(render(rng, pick_value(rng, kind), kind))
        elif r < 0.65:
            a, b = sorted((pick_value(rng, kind), pick_value(rng, kind)))
            items.append(f"{render(rng, a, kind)}-{render(rng, b, kind)}")
        elif r < 0.77:
            items.append(f"*/{pick_step(rng)}")
        elif r < 0.88:
            a, b = sorted((pick_value(rng, kind), pick_value(rng, kind)))
            items.append(f"{render(rng, a, kind)}-{render(rng, b, kind)}/{pick_step(rng)}")
        else:
            items.append(f"{render(rng, pick_value(rng, kind), kind)}/{pick_step(rng)}")
    return ",".join(items)


def gen_field(rng, kind):
    r = rng.random()
    if kind == "second":
        if r < 0.4:
            return "0"
        if r < 0.5:
            return "*"
        if r < 0.7:
            return str(rng.choice([0, 15, 30, 45, 59, 1]))
    elif kind == "minute":
        if r < 0.08:
            return "*"
        if r < 0.55:
            return str(rng.choice([0, 15, 30, 45]))
        if r < 0.65:
            return rng.choice(["0,30", "15,45", "0,15,30,45", "*/15", "*/30", "0-59/15", "30-45"])
    elif kind == "hour":
        if r < 0.12:
            return "*"
        if r < 0.6:
            return str(rng.choice([0, 1, 2, 2, 3, 23, 4, 22, 12]))
        if r < 0.7:
            return rng.choice(["1-3", "0-3", "1,2,3", "2,3", "0,23", "22-23", "*/2", "1/2", "2-3/1"])
    elif kind == "dom":
        if r < 0.62:
            return "*"
        if r < 0.67:
            return "?"
        if r < 0.72:
            return f"*/{rng.choice([2, 2, 3, 7, 10, 15])}"
    elif kind == "month":
        if r < 0.7:
            return "*"
    elif kind == "dow":
        if r < 0.6:
            return "*"
        if r < 0.65:
            return "?"
        if r < 0.7:
            return rng.choice(["1/2", "7/2", "TUE,7/4", "*/3", "*/7", "5-7", "0", "7", "SUN", "MON-FRI",
                               "sat,sun", "6,7", "0-6/2", "7-7", "Sun-Sat"])
    return generic_field(rng, kind)


def blank(rng):
    if rng.random() < 0.7:
        return " "
    return rng.choice(["  ", "\t", " \t", "\t\t", " \t ", "   "])


def join_fields(rng, fields):
    s = "".join(f + (blank(rng) if i < len(fields) - 1 else "") for i, f in enumerate(fields))
    if rng.random() < 0.1:
        s = rng.choice([" ", "\t", "  ", " \t"]) + s
    if rng.random() < 0.1:
        s = s + rng.choice([" ", "\t", "  ", "\t "])
    return s


KINDS = ["second", "minute", "hour", "dom", "month", "dow"]

BAD_TOKENS = {
    "second": ["60", "+5", "?", "*/0", "5-1", "-1", "0-60", "MON"],
    "minute": ["60", "+0", "?", "*/0", "45-15", "1,,2", "0x1", "*/", "\uff10", "61/2"],
    "hour": ["24", "+2", "?", "0-24", "3-1", "2/0", "2,", "1.0", "two"],
    "dom": ["0", "32", "?,1", "?/2", "1-0", "*/0", "15-", "+1", "L"],
    "month": ["0", "13", "?", "JANUARY", "MON", "DEC-JAN", "*/0", "1--2"],
    "dow": ["8", "0-8", "?/2", "1,?", "JAN", "FRI-SUN", "SUNDAY", "*/0", "+0", "7-0", "\u017fat"],
}


def gen_expression(rng):
    r = rng.random()
    if r < 0.05:
        macro = rng.choice(["@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"])
        s = rand_case(rng, macro)
        if rng.random() < 0.2:
            s = rng.choice([" ", "\t"]) + s + rng.choice(["", " ", "\t"])
        return s
    if r < 0.08:
        return rng.choice(SPECIAL_VALID)
    six = rng.random() < 0.25
    fields = [gen_field(rng, k) for k in (KINDS if six else KINDS[1:])]
    if r < 0.19:  # deliberately invalid (the reference decides what really is)
        m = rng.random()
        if m < 0.3:
            return rng.choice(SPECIAL_INVALID)
        if m < 0.4:  # wrong field count
            return join_fields(rng, fields[: rng.choice([3, 4])] if not six else fields + ["*"])
        i = rng.randrange(len(fields))
        kind = (KINDS if six else KINDS[1:])[i]
        bad = rng.choice(BAD_TOKENS[kind])
        fields[i] = bad if rng.random() < 0.7 else fields[i] + "," + bad
    return join_fields(rng, fields)


# ---- instants -------------------------------------------------------------------------------------------

def gen_after(rng, zone, trans, chain):
    r = rng.random()
    if chain.get(zone) and r < 0.15:
        return rng.choice(chain[zone]) - rng.choice([0, 0, 1])
    if trans and r < 0.75:
        t, ob, oa = rng.choice(trans)
        q = rng.random()
        if q < 0.35:
            return t + rng.randint(-4 * H, 4 * H)
        if q < 0.65:
            return t + rng.randint(-16, 16) * 900 + rng.choice([0, 0, 0, -1, 1])
        if q < 0.85 and oa < ob:  # inside either pass of the repeated local times
            return t + rng.randint(-(ob - oa), ob - oa - 1)
        return t + rng.choice([-1, 0, 1, abs(ob - oa), -abs(ob - oa), 60, -60])
    return rng.randint(START_2024, END_2045)


def gen_targeted(rng, trans):
    """A local time inside a transition's gap or repeated stretch, and an instant before or within it."""
    t, ob, oa = rng.choice(trans)
    lo, hi = t + min(ob, oa), t + max(ob, oa)  # the local times skipped or repeated
    local = rng.randint(lo, hi - 1)
    if rng.random() < 0.7:
        local -= local % (900 if rng.random() < 0.6 else 60)
        local = max(local, lo)
    day = datetime.datetime.fromtimestamp(local, UTC)
    h, m, sec = day.hour, day.minute, day.second
    days = rng.choice(["* *", "* *", f"{day.day} *", f"* {day.month}", f"{day.day} {day.month}"])
    dow = rng.choice(["*", "*", "?", str((day.weekday() + 1) % 7), DAY_NAMES[(day.weekday() + 1) % 7]])
    if sec or rng.random() < 0.2:
        expr = f"{sec} {m} {h} {days} {dow}"
    else:
        expr = f"{m} {h} {days} {dow}"
    q = rng.random()
    if q < 0.5:
        after = t - rng.randint(1, 26 * H)
    elif q < 0.8:
        after = t + rng.randint(-(hi - lo), hi - lo)
    else:
        after = t + rng.choice([-1, 0, 1, -60])
    return after, expr


def make_cases(seed, count):
    rng = random.Random(seed)
    trans = {}
    for z in ZONES:
        start = START_2024
        if z == "America/Sao_Paulo":  # no transitions since 2019: take its last (midnight) ones
            start = int(datetime.datetime(2016, 1, 1, tzinfo=UTC).timestamp())
        trans[z] = transitions(z, start, END_2045)
    cases, chain = [], {}
    for _ in range(count):
        zone = rng.choice(ZONES)
        if trans[zone] and rng.random() < 0.2:
            after, expr = gen_targeted(rng, trans[zone])
        else:
            after = gen_after(rng, zone, trans[zone], chain)
            expr = gen_expression(rng)
        try:
            p = ref.parse(expr)
        except ValueError:
            expected = "error"
        else:
            expected = ref.next_fire(p, zone, after)
            if expected is not None:
                lst = chain.setdefault(zone, [])
                if len(lst) < 200:
                    lst.append(expected)
                else:
                    lst[rng.randrange(200)] = expected
        cases.append((zone, after, expr, expected))
    return cases, trans


# ---- running the system under test ---------------------------------------------------------------------

def find_supervisor():
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    for sub in ("release", "debug"):
        p = os.path.join(root, ".build", sub, "supervisor")
        if os.access(p, os.X_OK):
            return p
    return None


def describe(v, zone):
    if v == "error":
        return "error"
    if v is None:
        return "never"
    if isinstance(v, int):
        return f"{v} ({iso(v)}, local {local_iso(zone, v)})"
    return repr(v)


def run(args):
    t0 = time.monotonic()
    cases, trans = make_cases(args.seed, args.cases)
    t_ref = time.monotonic() - t0
    sup = args.supervisor or find_supervisor()
    if not sup:
        print("cron_differential: no supervisor (give --supervisor PATH)", file=sys.stderr)
        return 1
    for zone, after, expr, _ in cases:
        assert "\n" not in expr and "\r" not in expr
    data = "".join(f"{z} {a} {e}\n" for z, a, e, _ in cases).encode("utf-8")
    t1 = time.monotonic()
    try:
        proc = subprocess.run([sup, "schedule", "--batch"], input=data, capture_output=True, timeout=300)
    except subprocess.TimeoutExpired:
        print(f"cron_differential: {sup} schedule --batch did not finish in 300 s", file=sys.stderr)
        return 1
    t_sut = time.monotonic() - t1
    out = proc.stdout.decode("utf-8", "replace").split("\n")
    if out and out[-1] == "":
        out.pop()
    problems = []
    if proc.returncode != 0:
        problems.append(f"supervisor exited {proc.returncode}; stderr: {proc.stderr.decode(errors='replace')[-2000:]}")
    if len(out) != len(cases):
        problems.append(f"supervisor wrote {len(out)} lines for {len(cases)} input lines")
    disagreements = []
    for i, (zone, after, expr, expected) in enumerate(cases):
        line = out[i] if i < len(out) else "<missing>"
        s = line.strip()
        if s.startswith("error:") or s == "error":
            got = "error"
        elif s == "never":
            got = None
        elif s.lstrip("-").isdigit() and s.isascii():
            got = int(s)
        else:
            got = "malformed: " + line
        ok = got == expected  # "error" == "error", None (never) == None, or the same instant
        if args.verbose:
            print(f"{'ok ' if ok else 'BAD'} {zone} {after} {expr!r} -> {line}")
        if not ok:
            disagreements.append((zone, after, expr, expected, line, got))
    valid = sum(1 for c in cases if c[3] != "error")
    n_trans = sum(len(v) for v in trans.values())
    print(f"cron differential: seed {args.seed}, {len(cases)} cases ({valid} valid, {len(cases) - valid} invalid), "
          f"{len(ZONES)} zones ({n_trans} transitions), reference {t_ref:.1f} s, supervisor {t_sut:.1f} s, "
          f"{len(disagreements)} disagreements")
    for p in problems:
        print("PROBLEM: " + p)
    for zone, after, expr, expected, line, got in disagreements:
        print(f"DISAGREE zone={zone} after={after} ({iso(after)}, local {local_iso(zone, after)}) expr={expr!r}\n"
              f"    expected {describe(expected, zone)}\n"
              f"    got      {line!r}" + (f" = {describe(got, zone)}" if isinstance(got, int) else "") + "\n"
              f"    repro: printf '%s\\n' {shlex.quote(f'{zone} {after} {expr}')} | {sup} schedule --batch")
    return 0 if not disagreements and not problems else 1


# ---- self-test of the reference -------------------------------------------------------------------------

def ts(s):
    return int(datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp())


def self_test(seed):
    failures = []

    def check(expr, zone, after, want):
        got = ref.next_fire(ref.parse(expr), zone, ts(after))
        if got != ts(want):
            failures.append(f"{expr!r} {zone} after {after}: want {want}, got {iso(got) if got else got}")
        return got

    # Berlin fall back 2024-10-27 01:00Z (03:00 CEST -> 02:00 CET): 02:30 runs once, in the first pass.
    check("30 2 * * *", "Europe/Berlin", "2024-10-27T01:20:00Z", "2024-10-28T01:30:00Z")
    check("30 2 * * *", "Europe/Berlin", "2024-10-27T00:20:00Z", "2024-10-27T00:30:00Z")
    check("30 2 * * *", "Europe/Berlin", "2024-10-27T00:30:00Z", "2024-10-28T01:30:00Z")
    check("30 2 * * *", "Europe/Berlin", "2024-10-27T00:29:59Z", "2024-10-27T00:30:00Z")
    check("0 3 * * *", "Europe/Berlin", "2024-10-27T00:30:00Z", "2024-10-27T02:00:00Z")
    # Berlin spring forward 2024-03-31 01:00Z (02:00 CET -> 03:00 CEST): 02:xx runs at 03:00 CEST.
    check("30 2 * * *", "Europe/Berlin", "2024-03-31T00:00:00Z", "2024-03-31T01:00:00Z")
    check("*/15 2 * * *", "Europe/Berlin", "2024-03-31T00:50:00Z", "2024-03-31T01:00:00Z")
    check("*/15 2 * * *", "Europe/Berlin", "2024-03-31T01:00:00Z", "2024-04-01T00:00:00Z")
    check("30 30 2 * * *", "Europe/Berlin", "2024-03-31T00:59:59Z", "2024-03-31T01:00:00Z")
    check("0 3 * * *", "Europe/Berlin", "2024-03-31T00:00:00Z", "2024-03-31T01:00:00Z")
    check("59 59 1 * * *", "Europe/Berlin", "2024-03-31T00:00:00Z", "2024-03-31T00:59:59Z")
    # odd days, then the 1st
    t = ts("2024-01-01T00:00:00Z")
    p = ref.parse("0 0 */2 * *")
    want = [datetime.date(2024, 1, d) for d in range(3, 32, 2)] + \
        [datetime.date(2024, 2, d) for d in range(1, 30, 2)] + [datetime.date(2024, 3, 1)]
    for d in want:
        t = ref.next_fire(p, "UTC", t)
        if iso(t) != f"{d.isoformat()}T00:00:00Z":
            failures.append(f"*/2 day-of-month: want {d}, got {iso(t)}")
            break
    # Feb 29 that is a Sunday
    check("0 0 29 2 */7", "UTC", "2024-01-01T00:00:00Z", "2032-02-29T00:00:00Z")
    check("0 0 29 2 */7", "UTC", "2032-02-29T00:00:00Z", "2060-02-29T00:00:00Z")
    check("0 0 29 2 */7", "UTC", "2060-02-29T00:00:00Z", "2088-02-29T00:00:00Z")
    check("0 0 29 2 SUN", "UTC", "2060-02-29T00:00:00Z", "2061-02-06T00:00:00Z")  # both restricted: either
    # both day fields restricted: either; one starting with * : both
    check("0 0 30 2 MON", "UTC", "2024-02-01T00:00:00Z", "2024-02-05T00:00:00Z")
    check("0 0 13 * FRI", "UTC", "2024-09-10T00:00:00Z", "2024-09-13T00:00:00Z")
    check("0 0 13 * FRI", "UTC", "2024-09-13T00:00:00Z", "2024-09-20T00:00:00Z")
    check("0 0 */13 * FRI", "UTC", "2024-09-01T00:00:00Z", "2024-09-27T00:00:00Z")  # a Friday 1st/14th/27th
    check("0 0 */13 * FRI", "UTC", "2024-09-27T00:00:00Z", "2024-11-01T00:00:00Z")
    check("0 0 * * */3", "UTC", "2024-09-01T00:00:00Z", "2024-09-04T00:00:00Z")  # Sun 1st -> Wed 4th
    check("0 0 * * */3", "UTC", "2024-09-04T00:00:00Z", "2024-09-07T00:00:00Z")  # -> Sat 7th
    check("0 0 * * */3", "UTC", "2024-09-07T00:00:00Z", "2024-09-08T00:00:00Z")  # -> Sun 8th
    # day-of-week 7 and N/S up to 7
    check("0 0 * * 1/2", "UTC", "2024-09-06T00:00:00Z", "2024-09-08T00:00:00Z")  # Fri -> Sun
    check("0 0 * * 7/2", "UTC", "2024-09-02T00:00:00Z", "2024-09-08T00:00:00Z")
    check("0 0 * * TUE,7/4", "UTC", "2024-09-03T00:00:00Z", "2024-09-08T00:00:00Z")
    check("0 0 * * TUE,7/4", "UTC", "2024-09-08T00:00:00Z", "2024-09-10T00:00:00Z")
    check("0 0 * * SUN/2", "UTC", "2024-09-08T00:00:00Z", "2024-09-10T00:00:00Z")  # 0,2,4,6
    # Sao Paulo: midnight gap 2018-11-04 (00:00 -03 -> 01:00 -02), midnight fold 2019-02-17 (00:00 -02 -> 23:00 -03)
    check("0 0 * * *", "America/Sao_Paulo", "2018-11-03T12:00:00Z", "2018-11-04T03:00:00Z")
    check("30 23 * * *", "America/Sao_Paulo", "2019-02-16T12:00:00Z", "2019-02-17T01:30:00Z")
    check("30 23 * * *", "America/Sao_Paulo", "2019-02-17T01:30:00Z", "2019-02-18T02:30:00Z")
    check("30 23 * * *", "America/Sao_Paulo", "2019-02-17T02:10:00Z", "2019-02-18T02:30:00Z")
    # Lord Howe: 2024-10-06 02:00 +10:30 -> 02:30 +11 (gap); 2024-04-07 02:00 +11 -> 01:30 +10:30 (fold)
    check("15 2 * * *", "Australia/Lord_Howe", "2024-10-05T15:00:00Z", "2024-10-05T15:30:00Z")
    check("45 2 * * *", "Australia/Lord_Howe", "2024-10-05T15:00:00Z", "2024-10-05T15:45:00Z")
    check("45 1 * * *", "Australia/Lord_Howe", "2024-04-06T14:44:00Z", "2024-04-06T14:45:00Z")
    check("45 1 * * *", "Australia/Lord_Howe", "2024-04-06T15:05:00Z", "2024-04-07T15:15:00Z")
    # Chatham: 2024-09-29 02:45 +12:45 -> 03:45 +13:45
    check("0 3 * * *", "Pacific/Chatham", "2024-09-28T12:00:00Z", "2024-09-28T14:00:00Z")
    check("45 2 * * *", "Pacific/Chatham", "2024-09-28T12:00:00Z", "2024-09-28T14:00:00Z")
    # Troll: 2024-03-31 01:00 UTC, +00 -> +02 (two-hour gap)
    check("30 2 * * *", "Antarctica/Troll", "2024-03-31T00:00:00Z", "2024-03-31T01:00:00Z")
    # macros
    check("  @Weekly\t", "UTC", "2024-09-03T00:00:00Z", "2024-09-08T00:00:00Z")
    check("@ANNUALLY", "UTC", "2024-09-03T00:00:00Z", "2025-01-01T00:00:00Z")
    check("@hourly", "Asia/Kolkata", "2024-09-03T00:00:00Z", "2024-09-03T00:30:00Z")

    for e in SPECIAL_VALID + ["0\t0 \t* * *", "0 0 ? * *", "00 00 01 jan Sun", "0 0 29 2 *"]:
        try:
            ref.parse(e)
        except ValueError as err:
            failures.append(f"{e!r} should be valid: {err}")
    for e in SPECIAL_INVALID:
        try:
            ref.parse(e)
            failures.append(f"{e!r} should be invalid")
        except ValueError:
            pass

    # Randomised: the fast algorithm against a second-by-second scan, near real transitions.
    rng = random.Random(seed)
    trans = {z: transitions(z, START_2024, START_2024 + 3 * 366 * 86400) for z in ZONES}
    trans["America/Sao_Paulo"] = transitions("America/Sao_Paulo", ts("2016-01-01T00:00:00Z"), START_2024)
    frequent = ["*/15 * * * *", "0,30 1-3 * * *", "*/10 2 * * *", "45 * * * *", "0 */2 * * *", "30 * * * * *",
                "0 15,45 0-4 * * *", "*/20 0-3,22-23 * * *", "59 59 * * * *", "0 0 * * * *", "* 2 * * *"]
    checked = 0
    for i in range(160):
        zone = rng.choice([z for z in ZONES if trans[z]])
        tt, ob, oa = rng.choice(trans[zone])
        after = tt + rng.randint(-3 * H, 3 * H)
        if rng.random() < 0.5:
            after = tt + rng.randint(-12, 12) * 900 + rng.choice([0, -1])
        expr = rng.choice(frequent) if rng.random() < 0.7 else gen_expression(rng)
        try:
            p = ref.parse(expr)
        except ValueError:
            continue
        fast = ref.next_fire(p, zone, after)
        if fast - after > 4 * H:
            continue
        slow = ref.brute_next_fire(p, zone, after, fast - after)
        checked += 1
        if slow != fast:
            failures.append(f"brute force: {zone} {after} ({iso(after)}) {expr!r}: fast {iso(fast)}, "
                            f"brute {iso(slow) if slow else slow}")
    for f in failures:
        print("SELF-TEST FAIL: " + f)
    print(f"cron reference self-test: {len(failures)} failures ({checked} brute-force comparisons)")
    return 1 if failures else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--cases", type=int, default=6000)
    ap.add_argument("--supervisor", default=None, help="the supervisor binary (default: .build/release or debug)")
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--self-test", action="store_true", help="check the reference alone (no supervisor)")
    args = ap.parse_args()
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1 << 31)
    if args.self_test:
        return self_test(args.seed)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
