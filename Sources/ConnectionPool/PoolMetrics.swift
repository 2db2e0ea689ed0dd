import Metrics
import PoolCore

/// swift-metrics for one pool, labelled with its name: connection gauges by state, checkout and connect
/// counters, and the checkout wait as a timer (a histogram in Prometheus).
struct PoolMetrics: Sendable {
    let idle: Gauge
    let checkedOut: Gauge
    let opening: Gauge
    let waiting: Gauge
    let checkouts: Counter
    let timeouts: Counter
    let connectFailures: Counter
    let connects: Counter
    let closes: Counter
    let wait: Metrics.Timer
    /// Writes to the server, and what they carried: statements per round trip is the second over the first.
    let roundTrips: Counter
    let statements: Counter

    /// - Parameter factory: where the metrics go; the process-wide `MetricsSystem` unless a test says otherwise.
    init(pool: String, factory: any MetricsFactory) {
        let dimensions = [("pool", pool)]
        idle = Gauge(label: "pool_connections", dimensions: dimensions + [("state", "idle")], factory: factory)
        checkedOut = Gauge(label: "pool_connections", dimensions: dimensions + [("state", "checked_out")], factory: factory)
        opening = Gauge(label: "pool_connections", dimensions: dimensions + [("state", "opening")], factory: factory)
        waiting = Gauge(label: "pool_waiting_checkouts", dimensions: dimensions, factory: factory)
        checkouts = Counter(label: "pool_checkouts_total", dimensions: dimensions, factory: factory)
        timeouts = Counter(label: "pool_checkout_timeouts_total", dimensions: dimensions, factory: factory)
        connectFailures = Counter(label: "pool_connect_failures_total", dimensions: dimensions, factory: factory)
        connects = Counter(label: "pool_connects_total", dimensions: dimensions, factory: factory)
        closes = Counter(label: "pool_closes_total", dimensions: dimensions, factory: factory)
        roundTrips = Counter(label: "pool_round_trips_total", dimensions: dimensions, factory: factory)
        statements = Counter(label: "pool_statements_total", dimensions: dimensions, factory: factory)
        wait = Metrics.Timer(label: "pool_checkout_wait", dimensions: dimensions, factory: factory)
    }

    func record(_ status: PoolStatus) {
        idle.record(status.idle)
        checkedOut.record(status.checkedOut)
        opening.record(status.connecting)
        waiting.record(status.waiting)
    }
}
