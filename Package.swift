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
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
    ],
    targets: [
        // System calls Swift cannot import (variadic prctl, signalfd, CMSG macros) and the fork/exec shim.
        .target(name: "CShims"),
        .systemLibrary(name: "CSystemd", pkgConfig: "libsystemd", providers: [.apt(["libsystemd-dev"])]),
        .systemLibrary(name: "CLibpq", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),

        // Pure cores: the arbiter's and the connection pool's state machines. No I/O, no clock reads.
        .target(name: "Arbiter"),
        .target(name: "PoolCore", swiftSettings: crossModuleOptimization),

        // The supervisor's shell: sockets, spawning, signals, the event loop that drives the arbiter.
        .target(
            name: "Prefork",
            dependencies: [
                "Arbiter", "CShims",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // The pool's shell: the state machine behind a lock, blocking driver calls on its own threads.
        .target(
            name: "ConnectionPool",
            dependencies: [
                "PoolCore",
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: crossModuleOptimization
        ),

        // The Postgres engine: libpq connections in the pool, an async API.
        .target(
            name: "Postgres",
            dependencies: ["CLibpq", "ConnectionPool", "PoolCore", .product(name: "CoreMetrics", package: "swift-metrics")]
        ),

        // What every worker needs to live under the supervisor or systemd: the inherited socket and sd_notify.
        .target(
            name: "WorkerRuntime",
            dependencies: [
                "CSystemd",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),

        .executableTarget(
            name: "Supervisor",
            dependencies: [
                "Prefork",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "TestWorker",
            dependencies: [
                "WorkerRuntime",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),

        .executableTarget(name: "PoolBenchmark", dependencies: ["Postgres", "ConnectionPool", "PoolCore"]),

        // The injected time of the cores' tests.
        .target(name: "ManualClock"),

        .testTarget(name: "ArbiterTests", dependencies: ["Arbiter", "ManualClock"]),
        .testTarget(name: "PoolCoreTests", dependencies: ["PoolCore", "ManualClock"]),
        .testTarget(
            name: "PostgresTests",
            dependencies: ["Postgres", "ConnectionPool", "PoolCore", .product(name: "MetricsTestKit", package: "swift-metrics")]
        ),
        .testTarget(name: "PreforkTests", dependencies: ["Prefork", "Arbiter"]),
        .testTarget(name: "SupervisorIntegrationTests", exclude: ["Fixtures"]),
    ]
)
