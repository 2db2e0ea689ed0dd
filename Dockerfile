# syntax=docker/dockerfile:1
# The API as a container: the supervisor is PID 1 and runs $API_WORKERS workers on $PORT.
#   docker build -t prefork .
#   docker run -e DATABASE_URL=postgresql://... -e REDIS_URL=redis://... -e API_WORKERS=4 -p 8080:8080 prefork
# `docker stop` sends SIGTERM (STOPSIGNAL) straight to the supervisor (exec-form ENTRYPOINT, no shell in
# between), which drains every worker within its 8 s graceful timeout, inside Docker's 10 s.
# scripts/check-image proves what can be proven without a Docker engine; CI runs it.

# The toolchain CI builds with.
ARG SWIFT_VERSION=6.3

FROM swift:${SWIFT_VERSION}-bookworm AS build
RUN export DEBIAN_FRONTEND=noninteractive \
    && apt-get update \
    && apt-get install -y --no-install-recommends libpq-dev libhiredis-dev libsystemd-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The dependencies first, at the versions Package.resolved pins: a change to our sources does not fetch them again.
# (Not --force-resolved-versions: that also demands the pinned commit ids, which differ between a package's
# GitHub repository and a mirror of it; the versions are the pins.)
COPY Package.swift Package.resolved ./
RUN swift package resolve
# Every path Package.swift names must exist, though only Sources goes into the shipped executables.
COPY Sources ./Sources
COPY Tests ./Tests
COPY benchmarks/PoolBenchmark ./benchmarks/PoolBenchmark
# The commit for --version and prefork_build_info (the build context has no .git): docker build --build-arg
# PREFORK_GIT_COMMIT=$(git rev-parse --short=12 HEAD).
ARG PREFORK_GIT_COMMIT=unknown
RUN printf '#define PREFORK_GIT_COMMIT "%s"\n' "$(printf '%s' "$PREFORK_GIT_COMMIT" | tr -cd 'A-Za-z0-9._-')" \
    > Sources/CBuildInfo/commit.h
# Only the three shipped executables, the Swift runtime linked in (the runtime stage has no Swift toolchain, only
# the C libraries below), without symbols. One product per `swift build`: given several, SwiftPM builds the last.
RUN for product in supervisor worker cleanup; do swift build -c release --static-swift-stdlib --product "$product" || exit 1; done \
    && install -D -m 0755 -t /out .build/release/supervisor .build/release/worker .build/release/cleanup \
    && strip /out/supervisor /out/worker /out/cleanup

FROM debian:bookworm-slim
RUN export DEBIAN_FRONTEND=noninteractive \
    && apt-get update \
    && apt-get install -y --no-install-recommends libpq5 libhiredis0.14 libsystemd0 tzdata ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 api \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin api
COPY --from=build /out/ /usr/local/bin/
# Numeric, so Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
# PORT only: an API_WORKERS here would override the WEB_CONCURRENCY that PaaS platforms set (API_WORKERS wins
# over it); unset, the supervisor runs API_WORKERS, else WEB_CONCURRENCY, else 1 worker.
ENV PORT=8080
EXPOSE 8080
STOPSIGNAL SIGTERM
# GET /healthz on $PORT from inside the container (no curl in a slim image); /readyz is for load balancers.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 CMD ["/usr/local/bin/supervisor", "healthcheck"]
# The supervisor is PID 1: it reaps orphans, relays nothing through a shell, and starts the `worker` and
# `cleanup` installed beside it. Flags and variables: docs/reference/settings.md (API_WORKERS, PORT, GRACEFUL_TIMEOUT, ...).
ENTRYPOINT ["/usr/local/bin/supervisor"]
