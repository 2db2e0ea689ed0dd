import CSystemd
import NIOCore

/// The worker's end of sd_notify: tells its manager it is ready, alive, draining. Works the same under our
/// supervisor and under systemd; a no-op when `NOTIFY_SOCKET` is unset.
public struct Notifier: Sendable {
    /// Half of `WATCHDOG_USEC`, as sd_watchdog_enabled(3) recommends, or nil when no heartbeat is wanted.
    public let heartbeatInterval: TimeAmount?

    public init() {
        var microseconds: UInt64 = 0
        if sd_watchdog_enabled(0, &microseconds) > 0, microseconds > 0 {
            heartbeatInterval = .microseconds(Int64(microseconds / 2))
        } else {
            heartbeatInterval = nil
        }
    }

    public func ready(status: String? = nil) { send("READY=1" + (status.map { "\nSTATUS=\($0)" } ?? "")) }
    public func stopping(status: String? = nil) { send("STOPPING=1" + (status.map { "\nSTATUS=\($0)" } ?? "")) }
    public func status(_ text: String) { send("STATUS=\(text)") }
    public func heartbeat() { send("WATCHDOG=1") }

    public func send(_ message: String) {
        _ = sd_notify(0, message)
    }

    /// Sends `WATCHDOG=1` from `eventLoop` itself, so a loop blocked by a stuck handler stops the heartbeat
    /// and the supervisor notices; a timer thread of its own would keep beating for a dead loop.
    @discardableResult
    public func startHeartbeat(on eventLoop: any EventLoop) -> RepeatedTask? {
        guard let interval = heartbeatInterval else { return nil }
        return eventLoop.scheduleRepeatedTask(initialDelay: .zero, delay: interval) { _ in
            self.heartbeat()
        }
    }

    /// The same for a group of loops: `WATCHDOG=1` only when every loop has run a task since the last beat,
    /// so one blocked loop of several is enough to stop the heartbeat.
    @discardableResult
    public func startHeartbeat(on group: any EventLoopGroup) -> RepeatedTask? {
        guard let interval = heartbeatInterval else { return nil }
        let loops = Array(group.makeIterator())
        guard loops.count > 1 else { return startHeartbeat(on: group.next()) }
        let first = loops[0]
        return first.scheduleRepeatedTask(initialDelay: .zero, delay: interval) { _ in
            EventLoopFuture.andAllSucceed(loops.map { $0.submit {} }, on: first).whenSuccess { self.heartbeat() }
        }
    }
}
