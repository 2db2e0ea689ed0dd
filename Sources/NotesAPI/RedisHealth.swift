import Metrics
import Synchronization
import WorkerRuntime

/// Whether this worker last found Redis up or down, from every place that talks to it: the boot check, /readyz,
/// and the requests themselves (a failed pipeline, a successful one). Kept current by the requests, because a
/// worker under systemd or Docker gets no readiness probe: the `redis_down` gauge and the worker's `STATUS=` in
/// `supervisor status` once kept what the boot saw for the worker's whole life.
final class RedisHealth: Sendable {
    private let down = Atomic<Bool>(false)
    private let gauge: Metrics.Gauge
    private let notifier = Notifier()

    init(gauge: Metrics.Gauge) {
        self.gauge = gauge
        gauge.record(0)
    }

    var isDown: Bool { down.load(ordering: .relaxed) }

    /// Records what a call to Redis found; only a change costs more than one atomic load.
    func observed(up: Bool) {
        guard down.load(ordering: .relaxed) == up else { return }
        guard down.compareExchange(expected: up, desired: !up, ordering: .relaxed).exchanged else { return }
        gauge.record(up ? 0 : 1)
        notifier.status(up ? "serving" : "serving, degraded: Redis unavailable")
    }
}
