import Foundation
import Synchronization
import PoolCore
import Testing
@testable import PreforkPostgres

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// The database `scripts/test` started (a throwaway cluster): `DATABASE_URL`, and for the restart test the
/// data directory and binaries.
enum TestDatabase {
    static func url() throws -> PostgresURL {
        guard let text = ProcessInfo.processInfo.environment["DATABASE_URL"], !text.isEmpty else {
            throw TestFailure("DATABASE_URL is not set: run the tests with scripts/test, which starts a Postgres")
        }
        return try PostgresURL(text)
    }

    /// An engine with its own application_name, so `pg_stat_activity` shows exactly its backends.
    static func engine(_ name: String, _ configure: (inout PostgresConfiguration) -> Void = { _ in }) throws -> PostgresEngine {
        var configuration = PostgresConfiguration(url: try url())
        configuration.applicationName = "\(name)-\(getpid())"
        configure(&configuration)
        return PostgresEngine(configuration)
    }

    /// A connection outside any pool, for watching and for sabotage.
    static func admin() throws -> PostgresConnection {
        try PostgresConnection.connect(url: try url(), defaults: [("application_name", "test-admin")])
    }

    /// Backends the server has for an application_name.
    static func backends(_ applicationName: String, admin: PostgresConnection) throws -> Int {
        let result = try admin.execute("SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1", [applicationName])
        return Int(result.rows[0]["n"].int ?? -1)
    }

    /// Backends of a closed pool leave `pg_stat_activity` shortly after their sockets close (the server
    /// process exits asynchronously): polls for up to `within`, returns the last count.
    static func backendsSettle(_ applicationName: String, to expected: Int, admin: PostgresConnection,
                               within: Duration = .seconds(2)) async throws -> Int {
        let deadline = ContinuousClock.now + within
        while true {
            let count = try backends(applicationName, admin: admin)
            if count == expected || ContinuousClock.now >= deadline { return count }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Waits (up to 5 s) until one statement of the application is running on the server: a cancel sent before
    /// it arrives is ignored by Postgres, so the dispose tests wait for this before disposing.
    static func untilOneStatementIsActive(_ applicationName: String, admin: PostgresConnection) async throws {
        let deadline = ContinuousClock.now + .seconds(5)
        while try admin.execute("SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1 AND state = 'active'",
                                [applicationName]).rows[0]["n"].int != 1, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    /// Runs pg_ctl as the postgres user on a thread of its own (`system`, which waits for its child itself),
    /// so no cooperative thread blocks while the server restarts.
    static func pgCtl(_ arguments: [String]) async throws {
        let environment = ProcessInfo.processInfo.environment
        guard let bin = environment["TEST_PG_BIN"], let data = environment["TEST_PG_DATA"] else {
            throw TestFailure("TEST_PG_BIN/TEST_PG_DATA not set: run the tests with scripts/test")
        }
        let command = "runuser -u postgres -- \(bin)/pg_ctl -D \(data) -w \(arguments.joined(separator: " ")) >/dev/null 2>&1"
        let status: Int32 = await withCheckedContinuation { continuation in
            Thread { continuation.resume(returning: system(command)) }.start()
        }
        guard status == 0 else { throw TestFailure("pg_ctl \(arguments) failed with status \(status)") }
    }
}

/// A value shared between test tasks and threads.
final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
    func withLock<T: Sendable>(_ body: (inout Value) -> T) -> T { mutex.withLock { body(&$0) } }
}

/// Polls `condition` every 5 ms for up to 5 s: the pool's state, not a sleep, says when to look.
func until(_ condition: () -> Bool) async throws {
    let deadline = ContinuousClock.now + .seconds(5)
    while !condition() {
        guard ContinuousClock.now < deadline else { throw TestFailure("condition not reached in 5 s") }
        try await Task.sleep(for: .milliseconds(5))
    }
}

/// Every suite that talks to the shared Postgres runs alone: one of them restarts the server, and a suite
/// running beside it had its connections refused meanwhile ("condition not reached in 5 s" in CI).
@Suite(.serialized) enum SharedServer {}
