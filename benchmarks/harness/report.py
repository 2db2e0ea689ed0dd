"""The report of scripts/bench all: README.md with the tables and ratios, and the PNG plots beside it.
Ratios are ours over theirs for throughput, theirs over ours for latency and memory, so above 1 is better for
ours in every column."""
import math
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

NAMES = {"swift": "prefork (Swift)", "uvicorn": "uvicorn --workers", "gunicorn": "gunicorn + UvicornWorker"}
COLORS = {"swift": "#d9480f", "uvicorn": "#1c7ed6", "gunicorn": "#2f9e44"}


def ratio(a, b):
    return f"{a / b:.1f}x" if b and not math.isnan(a) and not math.isnan(b) else "n/a"


def plot_throughput(sweep, path):
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 7), sharex=True)
    xs = [row["connections"] for row in sweep]
    for kind in NAMES:
        top.plot(xs, [row[kind]["ok_rps"] for row in sweep], marker="o", color=COLORS[kind], label=NAMES[kind])
        bottom.plot(xs, [row[kind]["p99"] for row in sweep], marker="o", color=COLORS[kind], label=NAMES[kind])
    top.set_ylabel("successful requests/s")
    top.set_title("GET /v1/notes/{id}, 4 workers: throughput and p99 against connections")
    bottom.set_ylabel("p99 latency (ms, log)")
    bottom.set_yscale("log")
    bottom.set_xscale("log", base=2)
    bottom.set_xticks(xs, [str(x) for x in xs])
    bottom.set_xlabel("concurrent connections (wrk)")
    for axis in (top, bottom):
        axis.grid(True, alpha=0.3)
        axis.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_memory(memory, path):
    fig, axis = plt.subplots(figsize=(8, 4.5))
    kinds = [k for k in NAMES if k in memory]
    width = 0.38
    for offset, (phase, label) in enumerate((("idle", "idle"), ("loaded", "after the sweep"))):
        values = [memory[k][phase]["total_pss"] for k in kinds]
        bars = axis.bar([i + (offset - 0.5) * width for i in range(len(kinds))], values, width,
                        label=f"whole stack, {label}", color=[COLORS[k] for k in kinds], alpha=0.55 + 0.45 * offset)
        axis.bar_label(bars, fmt="%.0f MB")
    axis.set_xticks(range(len(kinds)), [NAMES[k] for k in kinds])
    axis.set_ylabel("PSS of manager + 4 workers (MB)")
    axis.set_title("Memory per stack (proportional set size, shared pages divided among sharers)")
    axis.legend()
    axis.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_timeline(scenario, path):
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6.5), sharex=True)
    for kind, data in scenario["stacks"].items():
        series = data["series"]
        ts = [p["t"] for p in series]
        top.plot(ts, [p["rps"] for p in series], color=COLORS[kind], label=f"{NAMES[kind]} ok/s")
        if any(p["failed_rps"] for p in series) and "exited_at" not in data:
            top.plot(ts, [p["failed_rps"] for p in series], color=COLORS[kind], linestyle=":",
                     label=f"{NAMES[kind]} failed/s")
        bottom.plot(ts, [p["p99"] for p in series], color=COLORS[kind], label=NAMES[kind])
        for t, _ in data["events"]:
            for axis in (top, bottom):
                axis.axvline(t, color=COLORS[kind], alpha=0.35, linestyle="--", linewidth=1)
        if "exited_at" in data:
            for axis in (top, bottom):
                axis.axvline(data["exited_at"], color=COLORS[kind], linewidth=2, alpha=0.6)
    top.set_title(f"{scenario['title']}\n64 keep-alive connections, 250 ms buckets; dashed: signals"
                  f"{', solid: the manager exited' if 'term' in path else ''}", fontsize=11)
    top.set_ylabel("requests/s")
    bottom.set_ylabel("p99 of successes (ms, log)")
    bottom.set_yscale("log")
    bottom.set_xlabel("seconds since the load started")
    for axis in (top, bottom):
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def outcome_text(outcomes):
    failed = {k: v for k, v in outcomes.items() if k != "2xx"}
    return ", ".join(f"{v} {k}" for k, v in sorted(failed.items())) or "none"


def write(data, out):
    lines = []
    add = lines.append
    m, v = data["machine"], data["versions"]
    add(f"# Benchmark report, {data['date']}")
    add("")
    add("Produced by `scripts/bench all` in one run on one machine; every comparison below was measured side by "
        "side in that run. Ratios are ours against theirs, so above 1 is better for ours in every column.")
    add("")
    add("## Machine and versions")
    add("")
    add(f"- {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, {m['os']}, Linux {m['kernel']}; the load "
        f"generators run on the same cores as the servers")
    add(f"- {v['swift']}; release build with the static Swift runtime, as the Dockerfile ships it")
    add(f"- Python {v['python']}: FastAPI {v['fastapi']}, uvicorn {v['uvicorn']} (uvloop {v['uvloop']}, httptools "
        f"{v['httptools']}), gunicorn {v['gunicorn']} with uvicorn-worker {v['uvicorn-worker']}, SQLAlchemy "
        f"{v['sqlalchemy']}, asyncpg {v['asyncpg']}, redis-py {v['redis']}")
    add(f"- {v['postgres']} (max_connections 100, fsync off), {v['redis_server'].split(' sha=')[0]}, {v['wrk']}, {v['pgbench']}")
    add(f"- {data['workers']} workers in every stack, the seed's pools (Postgres 10 + 10 with pre-ping and "
        f"recycle 3600, Redis 5), the rate limit raised so it never rejects; run took "
        f"{data['elapsed_minutes']:.0f} min")
    add("")
    add("The endpoint is `GET /v1/notes/{id}` with a bearer token: one Redis round trip (auth cache and rate "
        "limit, pipelined) and one Postgres statement, as in `benchmarks/python/app.py` and the Swift worker.")
    add("")

    if "sweep" in data:
        sweep = data["sweep"]
        plot_throughput(sweep, os.path.join(out, "throughput.png"))
        add("## Throughput against connections")
        add("")
        add(f"`wrk -t2 -c C -d{data['seconds']}s --latency`, median of {data['rounds']} rounds interleaving the "
            "stacks. ok/s counts 2xx only.")
        add("")
        add("| C | prefork ok/s | uvicorn ok/s | gunicorn ok/s | vs uvicorn | vs gunicorn | prefork p99 ms "
            "| uvicorn p99 ms | gunicorn p99 ms | errors (prefork; uvicorn; gunicorn) | peak PG conns |")
        add("|---|---|---|---|---|---|---|---|---|---|---|")
        for row in sweep:
            s, u, g = row["swift"], row["uvicorn"], row["gunicorn"]
            errors = "; ".join(f"{x['non2xx']} non-2xx, {x['errors']} socket" if x["non2xx"] or x["errors"] else "0"
                               for x in (s, u, g))
            add(f"| {row['connections']} | {s['ok_rps']:,.0f} | {u['ok_rps']:,.0f} | {g['ok_rps']:,.0f} "
                f"| {ratio(s['ok_rps'], u['ok_rps'])} | {ratio(s['ok_rps'], g['ok_rps'])} | {s['p99']:.1f} "
                f"| {u['p99']:.1f} | {g['p99']:.1f} | {errors} | {s['peak_pg']} / {u['peak_pg']} / {g['peak_pg']} |")
        add("")
        add("![throughput](throughput.png)")
        add("")

    if "physical" in data and "sweep" in data:
        p = data["physical"]
        best = max(row["swift"]["ok_rps"] for row in data["sweep"])
        at64 = next((row for row in data["sweep"] if row["connections"] == 64), data["sweep"][0])
        add("## The physical limit")
        add("")
        add("The same round trips without HTTP, each tool alone on the same cores: "
            f"`{p['pg_command']}` (the worker's statement, prepared) and `{p['redis_command']}` (three commands per "
            "round trip; the worker sends GET + INCR). A request needs both and their CPU adds up, so the "
            "limit is 1 / (1/pg + 1/redis).")
        add("")
        add("| | requests/s | share of the limit |")
        add("|---|---|---|")
        add(f"| Postgres statements alone (pgbench, 64 clients) | {p['pg_tps']:,.0f} | |")
        add(f"| Redis round trips alone (redis-benchmark, 20 clients, -P 3) | {p['redis_round_trips']:,.0f} | |")
        add(f"| **limit for one of each** | **{p['limit']:,.0f}** | 100% |")
        for kind in NAMES:
            add(f"| {NAMES[kind]}, C=64 | {at64[kind]['ok_rps']:,.0f} | {100 * at64[kind]['ok_rps'] / p['limit']:.0f}% |")
        add(f"| prefork, best of the sweep | {best:,.0f} | {100 * best / p['limit']:.0f}% |")
        add("")

    if "memory" in data:
        memory = data["memory"]
        plot_memory(memory, os.path.join(out, "memory.png"))
        add("## Memory per stack")
        add("")
        add("From `/proc/PID/smaps_rollup` of every process of the stack: PSS adds up to what the stack holds "
            "(shared pages divided among their sharers); USS is what one more worker costs.")
        add("")
        add("| | manager RSS | worker RSS | worker USS | whole stack PSS, idle | whole stack PSS, after load "
            "| vs prefork (after load) |")
        add("|---|---|---|---|---|---|---|")
        ours = memory.get("swift", {}).get("loaded", {}).get("total_pss", float("nan"))
        for kind in NAMES:
            if kind not in memory:
                continue
            idle, loaded = memory[kind]["idle"], memory[kind]["loaded"]
            add(f"| {NAMES[kind]} | {idle['manager_rss']:.1f} MB | {loaded['worker_rss']:.1f} MB "
                f"| {loaded['worker_uss']:.1f} MB | {idle['total_pss']:.0f} MB | {loaded['total_pss']:.0f} MB "
                f"| {ratio(loaded['total_pss'], ours) if kind != 'swift' else '1.0x'} |")
        add("")
        add("![memory](memory.png)")
        add("")

    if "timelines" in data:
        add("## Under disruption")
        add("")
        add("`loadgen` (benchmarks/harness/loadgen.c) keeps 64 keep-alive connections busy and records every request "
            "with its start time and outcome; signals are stamped on the same clock. A failed request is one a "
            "client saw fail: reset, refused or closed without an answer, or a non-2xx status.")
        add("")
        for name, scenario in data["timelines"].items():
            plot_timeline(scenario, os.path.join(out, f"timeline-{name}.png"))
            add(f"### {scenario['title'][0].upper()}{scenario['title'][1:]}")
            add("")
            if name == "term":
                add("| | exit | requests started before TERM | failed of those | in flight at TERM, answered "
                    "| started after TERM: served | reset (accepted, then dropped) | peak PG conns |")
                add("|---|---|---|---|---|---|---|---|")
                for kind, d in scenario["stacks"].items():
                    reset = d.get("reset_after_term", d["outcomes"].get("reset or closed", 0)
                                  if d["failed_before"] == 0 else "n/a")
                    add(f"| {NAMES[kind]} | {d['exit_code']} after {d['exit_seconds'] * 1000:.0f} ms "
                        f"| {d['started_before']:,} | {d['failed_before']} | {d['in_flight_ok']} of {d['in_flight']} "
                        f"| {d['served_after_term']:,} | {reset} | {d['peak_pg']} |")
                add("")
                add("Requests started after TERM that were not served were refused (the connection never accepted, "
                    "so a client or load balancer can retry elsewhere) unless counted as reset.")
            else:
                extra = " | kills | slots serving again before the next kill" if name == "kill" else ""
                add(f"| | requests | failed | failures | ok/s before | lowest ok/s after (250 ms) | p99 ms "
                    f"| peak PG conns{extra} |")
                add("|---|---|---|---|---|---|---|---" + ("|---|---|" if name == "kill" else "|"))
                for kind, d in scenario["stacks"].items():
                    tail = f" | {d['kills']} | {d['refilled']} of {d['kills']}" if name == "kill" else ""
                    add(f"| {NAMES[kind]} | {d['total']:,} | {d['failed']} | {outcome_text(d['outcomes'])} "
                        f"| {d['rps_before']:,.0f} | {d['rps_lowest']:,.0f} | {d['p99']:.1f} | {d['peak_pg']}{tail} |")
            add("")
            add(f"![{name}](timeline-{name}.png)")
            add("")

    # The benchmarks that print their own figures: their output as it came, under what they measure.
    printed = (
        ("pool", "The Postgres pool beside SQLAlchemy's",
         "`scripts/bench pool`: checkout and checkin alone, pooled `SELECT 1` against raw libpq, and SQLAlchemy's "
         "async engine (asyncpg) with the same settings (10 + 10, pre-ping, recycle 3600), one after the other."),
        ("cleanup", "The cleanup job under load",
         "`scripts/bench cleanup`: the job deletes 1,000,000 notes soft-deleted 40 days ago, in batches of 1000 "
         "with a pool of 1 + 1, while the API (2 workers) serves `GET /v1/notes/{id}` at 64 connections. The "
         "Python seed has no cleanup job to compare with."),
        ("supervisor", "The supervisor alone",
         "`scripts/bench supervisor --compare`: the supervisor with its test worker, and the three managers "
         "side by side with a trivial app (a new pid answering HTTP, measured from outside)."),
    )
    for key, title, intro in printed:
        if key in data:
            lines.extend([f"## {title}", "", intro, "", "```", data[key], "```", ""])
    add("## Reproduce")
    add("")
    add("```")
    add("scripts/bench all            # this report, in benchmarks/results/<date>/ (about 8 minutes)")
    add("scripts/chaos                # the fault scenarios")
    add("```")
    with open(os.path.join(out, "README.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
