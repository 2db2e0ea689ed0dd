// swift-tools-version:6.0
import PackageDescription

/// The pool is generic (over its clock, and over the connection's driver) and its callers live in other
/// modules; without its bodies available across modules, every checkout would run unspecialised generic code
/// (measured: 6.8 µs per checkout + checkin instead of about 1 µs).
let crossModuleOptimization: [SwiftSetting] = [.unsafeFlags(["-cross-module-optimization"])]

/// Strict concurrency is the default in the Swift 6 language mode; warnings are errors in our own targets
/// (CI builds with `-warnings-as-errors` through scripts/test).
let package = Package(
    name: "prefork",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "supervisor", targets: ["Supervisor"]),
        .executable(name: "test-worker", targets: ["TestWorker"]),
        .executable(name: "pool-bench", targets: ["PoolBenchmark"]),
        .executable(name: "worker", targets: ["APIWorker"]),
        .executable(name: "cleanup", targets: ["Cleanup"]),
        // For a worker of your own (Examples/VisitCounter, docs/guides/swift-worker.md): the runtime (fd 3, READY=1
        // and the heartbeat, the drain, SIGTERM, MAX_REQUESTS) with its HTTP/1.1 server, and the two pools.
        .library(name: "PreforkWorker", targets: ["PreforkWorker", "WorkerRuntime"]),
        .library(name: "PreforkPostgres", targets: ["PreforkPostgres"]),
        .library(name: "PreforkRedis", targets: ["PreforkRedis"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // System calls Swift cannot import (variadic prctl, signalfd, CMSG macros) and the fork/exec shim.
        .target(name: "CShims"),
        // SIGPIPE and the open-files limit, set up first by each of our programs.
        .target(name: "ProcessDefaults", dependencies: ["CShims"]),
        .systemLibrary(name: "CLibpq", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .systemLibrary(name: "CHiredis", pkgConfig: "hiredis", providers: [.apt(["libhiredis-dev"])]),

        // sd_notify and socket activation, both ends (supervisor and workers), written out: their variables read in
        // one place, a notify that never blocks; and the socket-address helpers both ends share.
        .target(name: "SystemdProtocol"),

        // Time in plain integers, written once: Duration conversions, the duration grammar, civil dates.
        .target(name: "TimeUnits"),
        // The commit the binaries were built from (scripts/lib.sh writes it), for --version.
        .target(name: "CBuildInfo"),
        // Every setting of the four programs declared once: flags, variables, defaults, kinds, help; the one
        // duration grammar and log-level reading; the environment contract the supervisor checks for its workers.
        .target(
            name: "Settings",
            dependencies: ["ConnectionURL", "CBuildInfo", "TimeUnits", "LogFormat", .product(name: "Logging", package: "swift-log")]
        ),

        // Log lines for the supervisor and the workers: text for people, JSON for collectors.
        .target(name: "LogFormat", dependencies: [.product(name: "Logging", package: "swift-log")]),

        // Pure cores: the arbiter's and the connection pool's state machines. No I/O, no clock reads.
        .target(name: "Arbiter", dependencies: ["TimeUnits"]),
        // The seed's connection arithmetic: workers × pools under max_connections minus a reserve.
        .target(name: "Budget"),
        .target(name: "PoolCore", dependencies: ["TimeUnits"], swiftSettings: crossModuleOptimization),
        // The cleanup's schedule: cron expressions, time zones from the tz database, next fire times.
        .target(name: "Schedule", dependencies: ["TimeUnits"]),

        // The supervisor's system layer: sockets, spawning, signals, sd_notify, the runtime directory.
        .target(
            name: "SupervisorSystem",
            dependencies: ["Arbiter", "CShims", "Settings", "SystemdProtocol", "TimeUnits", .product(name: "Logging", package: "swift-log")]
        ),
        // The supervisor's settings: its flags and variables read through the declarations, the budget, the
        // cleanup job, and the check of the workers' environment.
        .target(
            name: "SupervisorConfiguration",
            dependencies: ["Arbiter", "Budget", "ConnectionURL", "LogFormat", "Schedule", "Settings", "SupervisorSystem", "TimeUnits"]
        ),
        // What operators reach: the control socket, `supervisor status`, the admin endpoint's metrics.
        .target(
            name: "SupervisorControl",
            dependencies: ["Arbiter", "CShims", "LogFormat", "Settings", "SupervisorSystem", "SystemdProtocol", "TimeUnits"]
        ),
        // The supervisor's loop: waits on the kernel, feeds the arbiter, runs its actions, runs the cleanup job.
        .target(
            name: "SupervisorShell",
            dependencies: [
                "Arbiter", "Budget", "CShims", "LogFormat", "Settings", "TimeUnits",
                "SupervisorSystem", "SupervisorConfiguration", "SupervisorControl",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // The worker's one event-loop thread: epoll over the HTTP connections and the database replies, and the
        // executor their tasks run on.
        .target(
            name: "Reactor",
            dependencies: ["CShims", "TimeUnits", .product(name: "NIOConcurrencyHelpers", package: "swift-nio")],
            swiftSettings: crossModuleOptimization
        ),

        // The pool's shell: the state machine behind a lock, blocking driver calls on its own threads.
        .target(
            name: "ConnectionPool",
            dependencies: [
                "PoolCore", "Reactor", "TimeUnits",
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: crossModuleOptimization
        ),

        // The Postgres engine: libpq connections in the pool, an async API.
        // DATABASE_URL checked and redacted without libpq: shared by the Postgres engine and the supervisor.
        .target(name: "ConnectionURL"),

        .target(
            name: "PreforkPostgres",
            dependencies: ["CLibpq", "ConnectionURL", "Settings", "TimeUnits", "ConnectionPool", "PoolCore", "Reactor", .product(name: "CoreMetrics", package: "swift-metrics")]
        ),

        // The Redis client: hiredis connections in the same pool, pipelines, an async API.
        .target(name: "PreforkRedis", dependencies: ["CHiredis", "ConnectionURL", "Settings", "TimeUnits", "ConnectionPool", "PoolCore", "Reactor", .product(name: "CoreMetrics", package: "swift-metrics")]),

        // A worker's life around an application: the HTTP/1.1 server on the reactor's thread (strict parser,
        // keep-alive, limits, drain), boot before READY=1, the heartbeat, SIGTERM, dispose. The API worker is one
        // such application; Examples/VisitCounter is another, built as an outside package would build it.
        .target(
            name: "PreforkWorker",
            dependencies: [
                "WorkerRuntime", "Reactor", "SystemdProtocol", "CShims", "TimeUnits", "LogFormat", "Settings", "ProcessDefaults",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // The seed's API: routes, authentication, rate limit, metrics, migrations, on PreforkWorker.
        .target(
            name: "NotesAPI",
            dependencies: [
                "PreforkWorker", "PreforkPostgres", "PreforkRedis", "PoolCore", "WorkerRuntime", "LogFormat", "Settings", "TimeUnits",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),

        // What every worker needs to live under the supervisor or systemd: the inherited socket and sd_notify.
        .target(
            name: "WorkerRuntime",
            dependencies: ["SystemdProtocol"]
        ),

        .executableTarget(
            name: "Supervisor",
            dependencies: [
                "SupervisorShell", "SupervisorSystem", "SupervisorConfiguration", "SupervisorControl", "Arbiter", "Budget",
                "LogFormat", "Schedule", "ConnectionURL", "Settings", "TimeUnits", "ProcessDefaults",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "TestWorker",
            dependencies: [
                "WorkerRuntime", "PreforkWorker", "ProcessDefaults", "Settings", "TimeUnits",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),

        .executableTarget(
            name: "APIWorker",
            dependencies: ["NotesAPI", "PreforkWorker", "PreforkPostgres", "Schedule", "Settings"]
        ),
        .executableTarget(
            name: "Cleanup",
            dependencies: [
                "PreforkPostgres", "WorkerRuntime", "LogFormat", "Schedule", "Settings", "TimeUnits", "ProcessDefaults",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Benchmarks live under benchmarks/, their harness and their Python stacks with them; this one is a target of
        // the package rather than a package of its own so that it shares the one release build.
        .executableTarget(name: "PoolBenchmark", dependencies: ["PreforkPostgres", "ConnectionPool", "PoolCore", "TimeUnits"],
                          path: "benchmarks/PoolBenchmark"),

        // Test support lives under Tests/Support, one module per kind of support (as postgres-nio's
        // _ConnectionPoolTestUtils): the injected time of the cores' tests.
        .target(name: "ManualClock", path: "Tests/Support/ManualClock"),

        .testTarget(name: "ArbiterTests", dependencies: ["Arbiter", "ManualClock", "Schedule", "TimeUnits"]),
        .testTarget(name: "BudgetTests", dependencies: ["Budget"]),
        .testTarget(name: "SettingsTests", dependencies: ["Settings", "TimeUnits"]),
        .testTarget(name: "PoolCoreTests", dependencies: ["PoolCore", "ManualClock"]),
        // The pool's shell with a counting driver; the engines' tests run it against real servers.
        .testTarget(name: "ConnectionPoolTests", dependencies: ["ConnectionPool", "PoolCore"]),
        .testTarget(
            name: "PreforkPostgresTests",
            dependencies: ["PreforkPostgres", "ConnectionURL", "PoolCore", .product(name: "MetricsTestKit", package: "swift-metrics")]
        ),
        .testTarget(name: "ScheduleTests", dependencies: ["Schedule", "TimeUnits"]),
        .testTarget(name: "PreforkRedisTests", dependencies: ["PreforkRedis", "CHiredis", "ConnectionURL", "PoolCore", .product(name: "MetricsTestKit", package: "swift-metrics")]),
        // The worker's HTTP parser beside SwiftNIO's, for the differential tests and the fuzzer.
        .target(name: "HTTPDifferential", dependencies: [
            "PreforkWorker", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOEmbedded", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
        ], path: "Tests/Support/HTTPDifferential"),
        .testTarget(name: "NotesAPITests", dependencies: [
            "NotesAPI", "PreforkWorker", "LogFormat",
            .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio"),
        ]),
        // The worker library: its HTTP parser beside SwiftNIO's, and the request limit against a real notify socket.
        .testTarget(name: "PreforkWorkerTests", dependencies: ["PreforkWorker", "WorkerRuntime", "HTTPDifferential"]),
        // End to end: the worker binary over real sockets against real Postgres and Redis. Run apart from the
        // other targets (scripts/test), because the Postgres tests restart the shared server.
        .testTarget(name: "APIIntegrationTests", dependencies: ["IntegrationSupport", "PreforkPostgres", "PreforkRedis", "ConnectionURL"]),
        // Real child processes, their logs, /proc, and a raw HTTP client: shared by the integration tests.
        .target(name: "IntegrationSupport", path: "Tests/Support/IntegrationSupport"),
        // One test target per supervisor module, named after it.
        .testTarget(name: "SystemdProtocolTests", dependencies: ["SystemdProtocol"]),
        .testTarget(name: "SupervisorSystemTests", dependencies: ["SupervisorSystem", "SystemdProtocol", "Arbiter"]),
        .testTarget(name: "SupervisorConfigurationTests", dependencies: ["SupervisorConfiguration", "SupervisorSystem", "Settings", "TimeUnits"]),
        .testTarget(name: "SupervisorControlTests", dependencies: ["SupervisorControl"]),
        .testTarget(name: "SupervisorShellTests", dependencies: [
            "SupervisorShell", "SupervisorSystem", "SupervisorConfiguration", "SupervisorControl", "Arbiter", "Budget", "Settings",
        ]),
        .testTarget(name: "SupervisorIntegrationTests", dependencies: ["IntegrationSupport"], exclude: ["Fixtures"]),
    ]
)

/// libFuzzer targets (scripts/fuzz): only with `PREFORK_FUZZ=1`, because they only link when built with
/// `-sanitize=fuzzer` (their `main` hands over to libFuzzer's driver).
if Context.environment["PREFORK_FUZZ"] == "1" {
    let fuzzTargets: [(name: String, dependencies: [Target.Dependency])] = [
        ("FuzzHTTP", ["NotesAPI", "PreforkWorker", "HTTPDifferential", .product(name: "NIOCore", package: "swift-nio"),
                      .product(name: "NIOHTTP1", package: "swift-nio")]),
        ("FuzzNotify", ["Arbiter"]),
        ("FuzzCron", ["Schedule"]),
        ("FuzzSettings", ["NotesAPI", "SupervisorConfiguration", "Settings", "TimeUnits"]),
    ]
    package.targets.append(.target(name: "FuzzDriver", path: "Fuzz/Driver"))
    for target in fuzzTargets {
        let directory = String(target.name.dropFirst(4))
        package.targets.append(.executableTarget(name: target.name, dependencies: target.dependencies + ["FuzzDriver"],
                                                 path: "Fuzz/\(directory)",
                                                 exclude: ["corpus"]))
        package.products.append(.executable(name: "fuzz-\(directory.lowercased())", targets: [target.name]))
    }
}

