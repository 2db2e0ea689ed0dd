import SystemdProtocol

/// The worker's end of sd_notify: tells its manager it is ready, alive, draining. Works the same under our
/// supervisor and under systemd; a no-op when `NOTIFY_SOCKET` is unset.
public struct Notifier: Sendable {
    /// Half of `WATCHDOG_USEC`, as sd_watchdog_enabled(3) recommends, or nil when no heartbeat is wanted.
    public let heartbeatInterval: Duration?

    public init() {
        heartbeatInterval = SystemdProtocol.watchdogMicroseconds().map(SystemdProtocol.watchdogPingInterval)
    }

    public func ready(status: String? = nil) { send("READY=1" + (status.map { "\nSTATUS=\($0)" } ?? "")) }
    public func stopping(status: String? = nil) { send("STOPPING=1" + (status.map { "\nSTATUS=\($0)" } ?? "")) }
    public func status(_ text: String) { send("STATUS=\(text)") }
    public func heartbeat() { send("WATCHDOG=1") }

    /// Sends without ever blocking the caller for long. libsystemd's `sd_notify` blocks while the manager's
    /// datagram queue is full (10 datagrams, `net.unix.max_dgram_qlen`, shared by every worker), which froze
    /// every worker's event loop, and so its requests, while the supervisor was stopped. A heartbeat that does
    /// not fit is dropped (the next follows, and the supervisor forgives its own stalls); other messages are
    /// retried for up to two seconds, or `attempts` times 10 ms. Returns whether the datagram went out (true
    /// when there is no manager to tell).
    @discardableResult
    public func send(_ message: String, attempts: Int? = nil) -> Bool {
        guard let socket = SystemdProtocol.notifySocket() else { return true }
        return SystemdProtocol.notify(message, socket: socket, attempts: attempts ?? (message == "WATCHDOG=1" ? 1 : 200))
    }
}
