/// How a stopping child spends the graceful timeout the supervisor gives it before SIGKILL: the work in flight
/// (requests, a cleanup batch) gets all of it but a second, kept for disposing the pools (half of it when it is
/// short); disposing gets three quarters of that rest, so the process exits a quarter of it (250 ms by default)
/// before the SIGKILL. One rule for the worker and the cleanup job.
public struct StopGrace: Sendable, Equatable {
    public var gracefulTimeout: Duration

    public init(_ gracefulTimeout: Duration) { self.gracefulTimeout = gracefulTimeout }

    /// When the work still running is cut: its statements are cancelled in Postgres as the pools are disposed.
    public var workLimit: Duration { gracefulTimeout > .seconds(2) ? gracefulTimeout - .seconds(1) : gracefulTimeout / 2 }

    /// How long disposing may take after that.
    public var disposeLimit: Duration { (gracefulTimeout - workLimit) * 3 / 4 }
}
