import Foundation
import IntegrationSupport
import Testing

/// A SIGTERM that reaches a worker while it starts is acted on once the worker can, never lost: a lost one
/// left the worker serving until the supervisor's graceful timeout killed it (a deploy's stop took 8 s).
@Suite("A SIGTERM while a worker starts", .serialized)
struct TermAtStartTests {
    /// Starts the test worker alone on an ephemeral port, sends TERM after `delay`, and returns how it ended,
    /// or nil if it was still running 5 s later (then it is killed).
    static func termAfter(_ delay: Duration, environment extra: [String: String] = [:]) throws -> (reason: Process.TerminationReason, status: Int32)? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try Binaries.path("test-worker"))
        var environment = ProcessInfo.processInfo.environment
        environment["PORT"] = "0"
        environment.removeValue(forKey: "LISTEN_FDS")
        environment.removeValue(forKey: "NOTIFY_SOCKET")
        environment.merge(extra) { $1 }
        process.environment = environment
        process.standardError = FileHandle.nullDevice
        try process.run()
        if delay > .zero { usleep(UInt32(delay.inMicroseconds)) }
        kill(process.processIdentifier, SIGTERM)
        let deadline = Date().addingTimeInterval(5)
        while process.isRunning, Date() < deadline { usleep(5_000) }
        guard !process.isRunning else {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            return nil
        }
        return (process.terminationReason, process.terminationStatus)
    }

    /// The window between installing the handler and libdispatch's signalfd was a few hundred microseconds:
    /// sweep the whole start, every 250 µs, and under load, where CI met it.
    @Test func aTermAtAnyMomentOfTheStartEndsTheWorker() throws {
        var hung: [Duration] = []
        for step in 0..<120 {
            let delay = Duration.microseconds(250 * step)
            if try Self.termAfter(delay) == nil { hung.append(delay) }
        }
        #expect(hung.isEmpty, "still running 5 s after a TERM sent this long after exec: \(hung)")
    }

    /// TERM during a slow boot waits for the handler, then drains: exit 0, not death by the signal.
    @Test func aTermDuringBootIsHonouredOnceTheHandlerIsInstalled() throws {
        let ended = try #require(try Self.termAfter(.milliseconds(200), environment: ["TEST_WORKER_BOOT_DELAY": "600"]))
        #expect(ended.reason == .exit && ended.status == 0, "\(ended)")
    }
}

extension Duration {
    fileprivate var inMicroseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000 + attoseconds / 1_000_000_000_000
    }
}
