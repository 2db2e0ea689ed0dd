#!/usr/bin/env python3
"""The docs stay true to the repository: every relative link in README.md, CHANGELOG.md, docs/ and the examples' and
the Python helper's READMEs (and its #anchor) exists, and every repository path they name in backticks
(`Sources/...`, `scripts/...`, `deploy/...`) exists. They speak to a user, not of this project's development: no
"the seed" (a design document that is not in the repository), no issue numbers, no commit ids of this repository.
And a figure quoted from a benchmark names the report it comes from: a section (from one heading to the next)
that speaks of a benchmark and quotes a measurement (requests/s, ms, µs, MB, a ratio such as 2.4x) links to, or
names, a file under benchmarks/results/. The README stays under 12 KB and every other page under 15 KB (not the
generated settings reference, not the changelog), and the version is one string wherever it is stated. Exit 1
with one line per problem."""
import os
import re
import subprocess
import sys

# Pages still to be rewritten without their development history: checked for links, not for wording.
HISTORY_ALLOWED: set = set()
HISTORY = re.compile(r"\bthe seed\b|\bseed's\b|\bissues? \d+\b", re.I)
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOP = ("Sources/", "Tests/", "scripts/", "deploy/", "docs/", "benchmarks/", "Examples/", "Fuzz/", "python/", ".ci/")


def anchors(path):
    """GitHub's heading anchors of a markdown file (code fences skipped), and explicit <a id> / {#id} ones."""
    found, fence, counts = set(), False, {}
    for line in open(path, encoding="utf-8"):
        if line.startswith("```"):
            fence = not fence
        if fence:
            continue
        m = re.match(r"#{1,6} (.*)", line)
        if m:
            text = re.sub(r"[`*_]", "", m.group(1)).strip().lower()
            slug = re.sub(r"[^\w\- ]", "", text).replace(" ", "-")
            n = counts.get(slug, 0)
            counts[slug] = n + 1
            found.add(slug if n == 0 else f"{slug}-{n}")
        for m in re.finditer(r'<a id="([^"]+)"', line):
            found.add(m.group(1))
    return found


# A measurement as a page quotes one, and the words that say a section speaks of a benchmark.
FIGURE = re.compile(r"\b\d[\d,]*(\.\d+)?\s?(ms|µs|us|MB|ops/s|rps|req/s|requests/s|rows/s|tps)\b|\b\d+(\.\d+)?x\b")
BENCHMARK = re.compile(r"scripts/bench|benchmark|measured", re.I)
# A duration or size that is a setting or a rule, not a measurement: "every 200 ms", "after 10 s", "a 1 MB body".
SETTING = re.compile(r"\b(every|after|within|at most|up to|limit|timeout|default|defaults to)\s+$", re.I)
REPORT = re.compile(r"benchmarks/results/\d{4}-\d\d-\d\d/")
# Where figures are not quoted from a benchmark: the history of versions (it may recall what a release measured)
# and the generated settings reference.
FIGURES_EXEMPT = {"CHANGELOG.md", "docs/reference/settings.md"}


def documents():
    yield os.path.join(ROOT, "README.md")
    yield os.path.join(ROOT, "CHANGELOG.md")
    for folder, _, files in os.walk(os.path.join(ROOT, "docs")):
        for name in sorted(files):
            if name.endswith(".md"):
                yield os.path.join(folder, name)
    for top in ("Examples", "python"):
        for folder, _, files in os.walk(os.path.join(ROOT, top)):
            if "README.md" in files and "/." not in folder and "/build" not in folder:
                yield os.path.join(folder, "README.md")


def is_commit(word, cache={}):
    """Whether a hex word names a commit of this repository (a kernel's or another project's commit id may stay)."""
    if word not in cache:
        out = subprocess.run(["git", "-C", ROOT, "rev-parse", "--verify", "--quiet", f"{word}^{{commit}}"],
                             capture_output=True, text=True)
        cache[word] = out.returncode == 0
    return cache[word]


def sections(text):
    """(first line number, text) of each part of a page from one heading to the next (code fences kept whole)."""
    parts, start, lines, fence = [], 1, [], False
    for number, line in enumerate(text.split("\n"), 1):
        if line.startswith("```"):
            fence = not fence
        if not fence and re.match(r"#{1,6} ", line) and lines:
            parts.append((start, "\n".join(lines)))
            start, lines = number, []
        lines.append(line)
    parts.append((start, "\n".join(lines)))
    return parts


# A page's size: the README is read whole by someone deciding whether to use this; a docs page past about 15 KB
# wants splitting (the generated settings reference is a table, looked up rather than read).
README_LIMIT, PAGE_LIMIT = 12 * 1024, 15 * 1024
SIZE_EXEMPT = {"docs/reference/settings.md", "CHANGELOG.md"}


def versions():
    """The one version string, where each place states it: what `--version` prints (BuildInfo.swift), the
    changelog's newest version, the Python helper's package version, the example's Package.swift."""
    def first(path, pattern):
        with open(os.path.join(ROOT, path), encoding="utf-8") as f:
            found = re.search(pattern, f.read(), re.M)
        return found.group(1) if found else f"(none in {path})"
    return {
        "Sources/Settings/BuildInfo.swift": first("Sources/Settings/BuildInfo.swift", r'version = "([^"]+)"'),
        "CHANGELOG.md": first("CHANGELOG.md", r"^## (\d+\.\d+\.\d+)"),
        "python/prefork-asgi/pyproject.toml": first("python/prefork-asgi/pyproject.toml", r'^version = "([^"]+)"'),
        "Examples/VisitCounter/Package.swift": first("Examples/VisitCounter/Package.swift", r"prefork (\d+\.\d+\.\d+)"),
    }


def main():
    problems = []
    stated = versions()
    if len(set(stated.values())) != 1:
        problems.append("the version differs between places: " + ", ".join(f"{k} {v}" for k, v in stated.items()))
    for doc in documents():
        here = os.path.dirname(doc)
        shown = os.path.relpath(doc, ROOT)
        text = open(doc, encoding="utf-8").read()
        size = len(text.encode())
        limit = README_LIMIT if shown == "README.md" else PAGE_LIMIT
        if shown not in SIZE_EXEMPT and size > limit:
            problems.append(f"{shown}: {size} bytes, more than {limit}: split it")
        prose = re.sub(r"```.*?```", "", text, flags=re.S)
        for number, line in enumerate(text.split("\n"), 1):
            for label, url in re.findall(r"\[([^\]]*)\]\(([^)\s]+)\)", line):
                if re.match(r"[a-z]+:", url):
                    continue
                path, _, fragment = url.partition("#")
                target = os.path.normpath(os.path.join(here, path)) if path else doc
                if not os.path.exists(target):
                    problems.append(f"{shown}:{number}: link to a missing file: {url}")
                elif fragment and target.endswith(".md") and fragment not in anchors(target):
                    problems.append(f"{shown}:{number}: link to a missing heading: {url}")
        if shown not in HISTORY_ALLOWED:
            for number, line in enumerate(text.split("\n"), 1):
                for m in HISTORY.finditer(line):
                    problems.append(f"{shown}:{number}: development history in user docs: {m.group(0)!r}")
                for word in re.findall(r"\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*[0-9])[0-9a-f]{7,40}\b", line):
                    if is_commit(word):
                        problems.append(f"{shown}:{number}: names a commit of this repository: {word}")
        if shown not in FIGURES_EXEMPT:
            for start, part in sections(text):
                figure = next((m for m in FIGURE.finditer(part) if not SETTING.search(part[:m.start()])), None)
                if figure and BENCHMARK.search(part) and not REPORT.search(part):
                    heading = part.split("\n", 1)[0].strip()
                    problems.append(f"{shown}:{start}: quotes benchmark figures ({figure.group(0)!r}) without naming"
                                    f" their report under benchmarks/results/: {heading[:60]}")
        for token in re.findall(r"`([^`\s]+)`", prose):
            token = token.rstrip(".,:;)")
            if not token.startswith(TOP) or re.search(r"[<>*{}$]|\.\.\.", token):
                continue
            path = token.split(":")[0]
            if not os.path.exists(os.path.join(ROOT, path)):
                problems.append(f"{shown}: names a path that does not exist: {token}")
    for problem in problems:
        print(problem)
    if problems:
        print(f"doc_links: {len(problems)} broken references", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
