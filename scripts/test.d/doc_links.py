#!/usr/bin/env python3
"""The docs stay true to the repository: every relative link in README.md and docs/ (and its #anchor) exists, and
every repository path they name in backticks (`Sources/...`, `scripts/...`, `deploy/...`) exists. And they speak
to a user, not of this project's development: no "the seed" (a design document that is not in the repository),
no issue numbers. Exit 1 with one line per problem."""
import os
import re
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


def documents():
    yield os.path.join(ROOT, "README.md")
    for folder, _, files in os.walk(os.path.join(ROOT, "docs")):
        for name in sorted(files):
            if name.endswith(".md"):
                yield os.path.join(folder, name)


def main():
    problems = []
    for doc in documents():
        here = os.path.dirname(doc)
        shown = os.path.relpath(doc, ROOT)
        text = open(doc, encoding="utf-8").read()
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
