import Glibc
import SystemdProtocol
import Logging

/// The supervisor as a systemd `Type=notify` service: READY, STATUS, RELOADING, STOPPING and the watchdog.
/// With no `NOTIFY_SOCKET` (Docker, a terminal) every call is a no-op.
package final class Upstream {
    package let socketPath: String
    package var enabled: Bool { !socketPath.isEmpty }
    /// How often to send `WATCHDOG=1`: half of what systemd's `WatchdogSec=` asks for.
    package let watchdogInterval: Duration?
    /// Messages that could not be sent since the last one that could; reported once per streak.
    private(set) var dropped = 0
    private let logger: Logger

    package init(environment: [String: String], logger: Logger) {
        self.logger = logger
        socketPath = SystemdProtocol.notifySocket(environment: environment) ?? ""
        if !socketPath.isEmpty, let microseconds = SystemdProtocol.watchdogMicroseconds(environment: environment) {
            watchdogInterval = SystemdProtocol.watchdogPingInterval(microseconds: microseconds)
        } else {
            watchdogInterval = nil
        }
    }

    package func send(_ message: String) {
        guard enabled else { return }
        var text = message
        if message == "RELOADING=1" {
            // systemd 253+ wants the moment the reload began, for Type=notify-reload.
            var now = timespec()
            clock_gettime(CLOCK_MONOTONIC, &now)
            text += "\nMONOTONIC_USEC=\(UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000)"
        }
        if SystemdProtocol.notify(text, socket: socketPath) {
            if dropped > 0 { logger.notice("NOTIFY_SOCKET accepts messages again", metadata: ["dropped": "\(dropped)"]) }
            dropped = 0
        } else {
            if dropped == 0 { logger.warning("cannot notify NOTIFY_SOCKET (\(socketPath)): dropping messages until it can") }
            dropped += 1
        }
    }
}
