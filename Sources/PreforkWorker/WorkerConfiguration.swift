import Glibc
import Logging
import Settings
import TimeUnits
import WorkerRuntime

/// How a worker serves: where it listens, its HTTP limits, its drain. The defaults are the API worker's.
public struct WorkerConfiguration: Sendable {
    /// fd 3 when the manager passed a socket (`LISTEN_FDS`, as the supervisor and systemd do), else an
    /// address of its own (`PORT`, 8080 by default) for running alone.
    public var listen: ListenTarget
    /// A request body above this gets 413 (`MAX_BODY_SIZE`).
    public var maxBodySize = Catalog.maxBodySize.defaultValue
    /// A client that has not sent its whole request head after this long is disconnected; also the keep-alive
    /// idle time (`HEADER_TIMEOUT`).
    public var headerTimeout = Catalog.headerTimeout.defaultValue
    /// From a request's head to the end of its body, else 408 (`BODY_TIMEOUT`): a client sending a byte every few
    /// seconds cannot hold a connection and its buffer forever.
    public var bodyTimeout = Catalog.bodyTimeout.defaultValue
    /// Request bodies held at once over all connections; past it, 503 instead of memory (`BODY_BUFFER_LIMIT`).
    public var bodyBufferLimit = EnvironmentContract.bodyBufferLimit(maxBodySize: Catalog.maxBodySize.defaultValue)
    /// The drain's share of the supervisor's graceful timeout (`GRACEFUL_TIMEOUT`, which the supervisor passes):
    /// in-flight requests get up to this, less a second kept for disposing the pools before the KILL.
    public var gracefulTimeout = Catalog.gracefulTimeout.defaultValue
    /// `MAX_REQUESTS` and `MAX_REQUESTS_JITTER`: the worker asks to be recycled after its share (0: never).
    public var maxRequests = Catalog.maxRequests.defaultValue
    public var maxRequestsJitter = Catalog.maxRequestsJitter.defaultValue
    /// Where the supervisor collects the worker's metrics; nil when it does not (`WorkerContract.metricsSocket`).
    public var metricsSocket: String?
    /// The slot and generation the supervisor gave the worker, for its log lines; nil when run alone.
    public var slot: String?
    public var generation: String?
    /// SwiftNIO threads for the worker's side work (`WORKER_THREADS`): the metrics socket, Swift Concurrency's
    /// executor. Requests are served on the reactor's one thread.
    public var threads = Catalog.workerThreads.defaultValue

    /// A logger whose lines carry the worker's slot and generation.
    public func logger(label: String) -> Logger {
        var logger = Logger(label: label)
        if let slot { logger[metadataKey: "slot"] = "\(slot)" }
        if let generation { logger[metadataKey: "generation"] = "\(generation)" }
        return logger
    }

    /// The socket from `LISTEN_FDS` if there is one, else `PORT`; the HTTP limits and `GRACEFUL_TIMEOUT` as the
    /// supervisor passes it. A malformed value is an error naming the variable, for a one-line exit 78.
    /// - Parameter flags: the worker's flags as `FlagParser` read them (`--bind`).
    public init(environment: [String: String], flags: [String: String] = [:]) throws(ConfigurationError) {
        let reader = SettingsReader(flags: flags, environment: environment)
        do throws(SettingError) {
            let inherited: Int32?
            do { inherited = try InheritedSocket.take() } catch { throw SettingError(error.description) }
            if let fd = inherited {
                listen = .inherited(fd: fd)
            } else if let bind = try reader[Catalog.workerBind] {
                do { listen = try ListenTarget(address: bind) } catch {
                    let reason = error == .expectedHostPort ? "expected host:port, :port, [IPv6]:port or port" : "\(error)"
                    throw SettingError("--bind: \(reason), got \(ValueSyntax.shown(bind))", fromFlag: true)
                }
            } else {
                listen = .address(host: HostPortSyntax.everyIPv4Address, port: try reader[Catalog.port])
            }
            threads = try reader[Catalog.workerThreads]
            // The same reading, and the same messages, as the supervisor's.
            gracefulTimeout = try reader[Catalog.gracefulTimeout]
            maxBodySize = try reader[Catalog.maxBodySize]
            headerTimeout = try reader[Catalog.headerTimeout]
            bodyTimeout = try reader[Catalog.bodyTimeout]
            bodyBufferLimit = try EnvironmentContract.bodyBufferLimit(reader)
            maxRequests = try reader[Catalog.maxRequests]
            maxRequestsJitter = try reader[Catalog.maxRequestsJitter]
        } catch {
            throw error
        }
        metricsSocket = environment[WorkerContract.metricsSocket].flatMap { $0.isEmpty ? nil : $0 }
        slot = environment[WorkerContract.slot]
        generation = environment[WorkerContract.generation]
    }

    public init(listen: ListenTarget) {
        self.listen = listen
    }

    /// The drain's time, then dispose's (`StopGrace`): at its end the requests still running are cut.
    var drainLimit: Duration { StopGrace(gracefulTimeout).workLimit }
    var disposeLimit: Duration { StopGrace(gracefulTimeout).disposeLimit }
}

/// A setting a worker refuses: one line, and exit 78 (64 when it was a flag). An application's `boot` throws it
/// for a configuration that cannot work (a password the server refuses), which stops a first boot at once.
public typealias ConfigurationError = SettingError
