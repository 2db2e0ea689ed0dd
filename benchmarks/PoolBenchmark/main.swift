import TimeUnits
import ConnectionPool
import Foundation
import PoolCore
import PreforkPostgres

/// `pool-bench DATABASE_URL`: the engine's figures, one measurement at a time, each for a fixed time.
/// Printed as `name value unit` lines that scripts/bench puts side by side with SQLAlchemy's.

let seconds = Double(ProcessInfo.processInfo.environment["BENCH_SECONDS"] ?? "2") ?? 2
guard CommandLine.arguments.count == 2, let url = try? PostgresURL(CommandLine.arguments[1]) else {
    FileHandle.standardError.write("usage: pool-bench postgres://...\n".data(using: .utf8)!)
    exit(64)
}

/// Runs `body` in `tasks` concurrent loops for the benchmark's duration; returns operations per second.
func measure(tasks: Int, _ body: @escaping @Sendable () async throws -> Void) async throws -> Double {
    let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
    let started = ContinuousClock.now
    let total = try await withThrowingTaskGroup(of: Int.self) { group in
        for _ in 0..<tasks {
            group.addTask {
                var count = 0
                while ContinuousClock.now < deadline {
                    for _ in 0..<16 { try await body() }
                    count += 16
                }
                return count
            }
        }
        return try await group.reduce(0, +)
    }
    let elapsed = started.duration(to: .now)
    return Double(total) / elapsed.inSeconds
}

func report(_ name: String, _ opsPerSecond: Double) {
    print(String(format: "%@ %.0f ops/s %.2f us/op", name, opsPerSecond, 1_000_000 / opsPerSecond))
}

var configuration = PostgresConfiguration(url: url)
configuration.applicationName = "pool-bench"
configuration.pool.size = 10
configuration.pool.maxOverflow = 10
let engine = PostgresEngine(configuration)
// Warm the pool: 20 connections open, 10 stay.
try await withThrowingTaskGroup(of: Void.self) { group in
    for _ in 0..<20 { group.addTask { _ = try await engine.query("SELECT pg_sleep(0.05)") } }
    try await group.waitForAll()
}

// The state machine alone: what the QueuePool logic costs per checkout + checkin, without lock or metrics.
do {
    var machine = PoolStateMachine<ContinuousClock.Instant>(configuration: configuration.pool)
    let clock = ContinuousClock()
    _ = machine.checkout(0, now: clock.now)
    _ = machine.connected(0, now: clock.now)
    _ = machine.checkin(0, healthy: true, now: clock.now)
    let iterations = 1_000_000
    let started = clock.now
    for request in 1...iterations {
        _ = machine.checkout(request, now: clock.now)
        _ = machine.checkin(0, healthy: true, now: clock.now)
    }
    let elapsed = started.duration(to: clock.now)
    report("core_checkout_checkin", Double(iterations) / elapsed.inSeconds)
}

let pool = engine.pool
report("checkout_checkin_1_task", try await measure(tasks: 1) {
    let lease = try await pool.checkout()
    pool.checkin(lease)
})
report("checkout_checkin_64_tasks", try await measure(tasks: 64) {
    let lease = try await pool.checkout()
    pool.checkin(lease)
})

// Raw libpq on one connection, on this thread: the floor the pool adds to.
let raw = try PostgresConnection.connect(url: url, defaults: [("application_name", "pool-bench-raw")])
let rawDeadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
let rawStarted = ContinuousClock.now
var rawCount = 0
while ContinuousClock.now < rawDeadline {
    for _ in 0..<16 { _ = try raw.execute("SELECT 1") }
    rawCount += 16
}
let rawElapsed = rawStarted.duration(to: .now)
report("raw_libpq_select1_1_connection",
       Double(rawCount) / rawElapsed.inSeconds)
raw.close()

report("pooled_select1_1_task", try await measure(tasks: 1) { _ = try await engine.query("SELECT 1") })
report("pooled_select1_64_tasks", try await measure(tasks: 64) { _ = try await engine.query("SELECT 1") })
print("pool_status \(engine.status)")
await engine.dispose()
