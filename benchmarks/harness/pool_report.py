"""Reads the `name value ops/s value us/op` lines of both benchmarks and prints them with the ratios."""
import sys

figures = {}
for line in sys.stdin:
    print(line.rstrip())
    words = line.split()
    if len(words) >= 5 and words[2] == "ops/s":
        figures[words[0]] = (float(words[1]), float(words[3]))

print()
overhead = figures["pooled_select1_1_task"][1] - figures["raw_libpq_select1_1_connection"][1]
print(f"pool overhead per checkout (checkout + checkin, 1 task):  {figures['checkout_checkin_1_task'][1]:.2f} us")
print(f"pooled SELECT 1 minus raw libpq SELECT 1 (1 task):       {overhead:.2f} us "
      "(checkout, checkin, and the reply read by the reactor)")
for tasks in ("1_task", "64_tasks"):
    ours = figures[f"pooled_select1_{tasks}"][0]
    theirs = figures[f"sqlalchemy_select1_{tasks}"][0]
    print(f"pooled SELECT 1, {tasks.replace('_', ' ')}: ours {ours:,.0f} ops/s, SQLAlchemy+asyncpg {theirs:,.0f} ops/s: "
          f"{ours / theirs:.1f}x")
