import Glibc

/// The supervisor as a systemd `Type=notify` service: READY, STATUS, RELOADING, STOPPING and the watchdog.
/// With no `NOTIFY_SOCKET` (Docker, a terminal) every call is a no-op.
public struct Upstream {
    public let socketPath: String
    public var enabled: Bool { !socketPath.isEmpty }
    /// How often to send `WATCHDOG=1`: half of what systemd's `WatchdogSec=` asks for.
    public let watchdogInterval: Duration?

    public init(environment: [String: String]) {
        socketPath = environment["NOTIFY_SOCKET"] ?? ""
        if !socketPath.isEmpty, let microseconds = SystemdProtocol.watchdogMicroseconds(environment: environment) {
            watchdogInterval = .microseconds(Int64(microseconds / 2))
        } else {
            watchdogInterval = nil
        }
    }

    public func send(_ message: String) {
        guard enabled else { return }
        var text = message
        if message == "RELOADING=1" {
            // systemd 253+ wants the moment the reload began, for Type=notify-reload.
            var now = timespec()
            clock_gettime(CLOCK_MONOTONIC, &now)
            text += "\nMONOTONIC_USEC=\(UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000)"
        }
        SystemdProtocol.notify(text, socketPath: socketPath)
    }
}
