"""The Dockerfile's rules, checked by reading it (no Docker engine here): prints one line per rule, exits 1 if any fails.

Usage: dockerfile_rules.py Dockerfile  -> also prints `PACKAGES: ...` (the runtime stage's apt packages) and
`BUILD: ...` (the build command) for scripts/check-image to use.
"""
import json
import re
import sys

RUNTIME_PACKAGES = {"libpq5", "libhiredis0.14", "libsystemd0", "tzdata", "ca-certificates"}
BINARIES = {"supervisor", "worker", "cleanup"}


def instructions(text):
    """(instruction, arguments) pairs, with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", text)
    result = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        result.append((word.upper(), rest.strip()))
    return result


def main(path):
    steps = instructions(open(path).read())
    stages = []
    for word, rest in steps:
        if word == "FROM":
            stages.append({"from": rest, "steps": []})
        elif stages:
            stages[-1]["steps"].append((word, rest))
    failures = []

    def rule(ok, text):
        print(("ok    " if ok else "FAIL  ") + text)
        if not ok:
            failures.append(text)

    rule(len(stages) >= 2, "multi-stage: a build stage and a runtime stage")
    build, runtime = stages[0], stages[-1]
    rule(build["from"].startswith("swift:"), f"the build stage is the official Swift image ({build['from']})")
    build_runs = " ".join(rest for word, rest in build["steps"] if word == "RUN")
    rule("libpq-dev" in build_runs and "libhiredis-dev" in build_runs and "libsystemd-dev" in build_runs,
         "the build stage installs libpq-dev, libhiredis-dev, libsystemd-dev")
    command = re.search(r"swift build -c release --static-swift-stdlib", build_runs)
    rule(command is not None, "release build with the Swift standard library linked statically")
    rule(runtime["from"].split(" ")[0] == "debian:bookworm-slim", f"the runtime stage is debian:bookworm-slim ({runtime['from']})")

    runtime_runs = " ".join(rest for word, rest in runtime["steps"] if word == "RUN")
    installed = set()
    for match in re.finditer(r"apt-get install ([^&;]*)", runtime_runs):
        installed |= {word for word in match.group(1).split() if not word.startswith("-")}
    rule(installed == RUNTIME_PACKAGES, f"the runtime stage installs exactly {sorted(RUNTIME_PACKAGES)} (got {sorted(installed)})")
    rule("--no-install-recommends" in runtime_runs, "apt-get install --no-install-recommends")
    rule(not any(package.endswith("-dev") for package in installed), "no -dev package at runtime")

    copies = [rest for word, rest in runtime["steps"] if word == "COPY"]
    rule(any(rest.startswith("--from=build") for rest in copies), "the binaries come from the build stage")
    build_install = re.search(r"install -D -m 0755 -t /out (.*?)(?:&&|$)", build_runs)
    copied = {item.rsplit("/", 1)[-1] for item in (build_install.group(1).split() if build_install else [])}
    rule(copied == BINARIES, f"supervisor, worker and cleanup are installed (got {sorted(copied)})")

    users = [rest for word, rest in runtime["steps"] if word == "USER"]
    user = users[-1].split(":")[0] if users else "root"
    rule(bool(users) and user not in ("root", "0"), f"runs as a non-root user ({users[-1] if users else 'none'})")
    rule(any(word == "EXPOSE" for word, _ in runtime["steps"]), "EXPOSE")
    stopsignal = [rest for word, rest in runtime["steps"] if word == "STOPSIGNAL"]
    rule(stopsignal == ["SIGTERM"], "STOPSIGNAL SIGTERM")

    entrypoints = [rest for word, rest in runtime["steps"] if word == "ENTRYPOINT"]
    entry = None
    if entrypoints:
        try:
            entry = json.loads(entrypoints[-1])
        except json.JSONDecodeError:
            entry = None
    rule(isinstance(entry, list) and entry and entry[0].endswith("/supervisor"),
         "exec-form ENTRYPOINT on the supervisor (PID 1, signals reach it with no shell in between)")
    rule(isinstance(entry, list) and not any(arg in ("-w", "--workers", "-b", "--bind") or arg.startswith(("--workers=", "--bind="))
                                             for arg in entry),
         "no --workers or --bind baked in: API_WORKERS and PORT decide")
    cmds = [rest for word, rest in runtime["steps"] if word == "CMD"]
    rule(all(rest.startswith("[") for rest in cmds), "no shell-form CMD")
    envs = " ".join(rest for word, rest in runtime["steps"] if word == "ENV")
    rule("PORT=" in envs, "PORT has a default in the image")
    rule("API_WORKERS=" not in envs and "WEB_CONCURRENCY=" not in envs,
         "no worker count baked in: it would override the WEB_CONCURRENCY a platform sets")
    healthchecks = [rest for word, rest in runtime["steps"] if word == "HEALTHCHECK"]
    rule(bool(healthchecks) and "CMD [" in healthchecks[-1] and ("healthcheck" in healthchecks[-1] or "/healthz" in healthchecks[-1]),
         "HEALTHCHECK on /healthz, exec form")

    print("PACKAGES: " + " ".join(sorted(installed)))
    rule("strip /out/" in build_runs, "the binaries are stripped")
    rule("Package.resolved" in " ".join(rest for word, rest in build["steps"] if word == "COPY"),
         "Package.resolved is copied before resolving: the pinned versions are built")
    print("BUILD: swift build -c release --static-swift-stdlib")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
