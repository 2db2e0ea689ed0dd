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

    init(pool: String) {
        let dimensions = [("pool", pool)]
        idle = Gauge(label: "pool_connections", dimensions: dimensions + [("state", "idle")])
        checkedOut = Gauge(label: "pool_connections", dimensions: dimensions + [("state", "checked_out")])
        opening = Gauge(label: "pool_connections", dimensions: dimensions + [("state", "opening")])
        waiting = Gauge(label: "pool_waiting_checkouts", dimensions: dimensions)
        checkouts = Counter(label: "pool_checkouts_total", dimensions: dimensions)
        timeouts = Counter(label: "pool_checkout_timeouts_total", dimensions: dimensions)
        connectFailures = Counter(label: "pool_connect_failures_total", dimensions: dimensions)
        connects = Counter(label: "pool_connects_total", dimensions: dimensions)
        closes = Counter(label: "pool_closes_total", dimensions: dimensions)
        wait = Metrics.Timer(label: "pool_checkout_wait", dimensions: dimensions, preferredDisplayUnit: .seconds)
    }

    func record(_ status: PoolStatus) {
        idle.record(status.idle)
        checkedOut.record(status.checkedOut)
        opening.record(status.connecting)
        waiting.record(status.waiting)
    }
}
