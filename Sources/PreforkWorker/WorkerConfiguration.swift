import Glibc
import Settings
import TimeUnits
import WorkerRuntime

/// How a worker serves: where it listens, its HTTP limits, its drain. The defaults are the API worker's.
public struct WorkerConfiguration: Sendable {
    /// fd 3 when the manager passed a socket (`LISTEN_FDS`, as the supervisor and systemd do), else an
    /// address of its own (`PORT`, 8080 by default) for running alone.
    public var listen: ListenTarget
    /// A request body above this gets 413.
    public var maxBodySize = 1 << 20
    /// A client that has not sent its whole request head after this long is disconnected.
    public var headerTimeout: Duration = .seconds(10)
    /// A body that stalls for this long between reads is cut.
    public var bodyTimeout: Duration = .seconds(30)
    /// Request bodies held at once over all connections; past it, 503 instead of memory.
    public var bodyBufferLimit = 32 << 20
    /// The drain's share of the supervisor's graceful timeout (`GRACEFUL_TIMEOUT`, which the supervisor passes):
    /// in-flight requests get up to this, less a second kept for disposing the pools before the KILL.
    public var gracefulTimeout: Duration = .seconds(8)

    /// The socket from `LISTEN_FDS` if there is one, else `PORT`; `GRACEFUL_TIMEOUT` as the supervisor passes
    /// it. A malformed value is an error naming the variable, for a one-line exit 78.
    public init(environment: [String: String]) throws(ConfigurationError) {
        if let fd = InheritedSocket.take() {
            listen = .inherited(fd: fd)
        } else if let text = environment["PORT"] {
            guard let port = Int(text), (0...65535).contains(port) else {
                throw ConfigurationError("PORT: expected a port number, got '\(text)'")
            }
            listen = .address(host: "0.0.0.0", port: port)
        } else {
            listen = .address(host: "0.0.0.0", port: 8080)
        }
        do {
            // The same reading, and the same messages, as the supervisor's and the API worker's.
            if let timeout = try SettingsReader(environment: environment).duration(Catalog.gracefulTimeout) {
                gracefulTimeout = timeout
            }
        } catch {
            throw ConfigurationError(error.description)
        }
    }

    public init(listen: ListenTarget) {
        self.listen = listen
    }

    /// The drain's time: the graceful timeout less a second for the pools (half of it when it is short). At its
    /// end the requests still running are cut: their statements are cancelled in Postgres as the pools are
    /// disposed, before the supervisor's SIGKILL.
    var drainLimit: Duration { gracefulTimeout > .seconds(2) ? gracefulTimeout - .seconds(1) : gracefulTimeout / 2 }

    /// How long `dispose` may take after the drain: three quarters of what is left, so the exit comes a quarter
    /// of it (250 ms by default) before the supervisor's SIGKILL.
    var disposeLimit: Duration { (gracefulTimeout - drainLimit) * 3 / 4 }
}

public struct ConfigurationError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
