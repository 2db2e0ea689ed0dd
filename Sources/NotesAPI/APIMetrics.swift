import TimeUnits
import LogFormat
import Metrics
import NIOConcurrencyHelpers
import Prometheus

/// The worker's metrics in Prometheus' registry: requests and their latency by route, the authentication
/// cache, Redis fallbacks and rate-limit rejections; the pools add their own through the same factory.
public final class APIMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    public let factory: PrometheusMetricsFactory

    private struct RequestKey: Hashable {
        var method: String
        var route: String
        var status: UInt
    }

    private let requestCounters = NIOLockedValueBox<[RequestKey: Metrics.Counter]>([:])
    private let durations = NIOLockedValueBox<[String: Metrics.Timer]>([:])
    let authCacheHits: Metrics.Counter
    let authCacheMisses: Metrics.Counter
    let authCacheNegativeHits: Metrics.Counter
    let redisFallbacks: Metrics.Counter
    let rateLimited: Metrics.Counter
    let authMissesShed: Metrics.Counter
    /// 1 while the last call to Redis (a request, the boot check, /readyz) failed: the worker is degraded,
    /// serving through Postgres alone, and still ready.
    let redisDown: Metrics.Gauge
    /// The worker's log lines dropped because stderr was not read fast enough or was closed (`LogSink`), brought
    /// up to the sink's count at each scrape.
    let logLinesDropped: Metrics.Counter
    private let logLinesDroppedPublished = NIOLockedValueBox(0)

    public init() {
        registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        // Buckets from half a millisecond (a cached request) to 10 s (a pool timeout).
        factory.defaultDurationHistogramBuckets = [
            .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
            .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
            .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10),
        ]
        self.factory = factory
        authCacheHits = Metrics.Counter(label: "auth_cache_total", dimensions: [("result", "hit")], factory: factory)
        authCacheMisses = Metrics.Counter(label: "auth_cache_total", dimensions: [("result", "miss")], factory: factory)
        authCacheNegativeHits = Metrics.Counter(label: "auth_cache_total", dimensions: [("result", "negative_hit")], factory: factory)
        redisFallbacks = Metrics.Counter(label: "redis_fallbacks_total", factory: factory)
        rateLimited = Metrics.Counter(label: "rate_limited_total", factory: factory)
        authMissesShed = Metrics.Counter(label: "auth_misses_shed_total", factory: factory)
        redisDown = Metrics.Gauge(label: "redis_down", factory: factory)
        logLinesDropped = Metrics.Counter(label: "log_lines_dropped_total", factory: factory)
    }

    /// One finished request. Counters and timers are made once per label set and kept: looking them up in the
    /// factory for every request would take its lock twice.
    func record(method: String, route: String, status: UInt, duration: Duration) {
        let key = RequestKey(method: method, route: route, status: status)
        let counter = requestCounters.withLockedValue { counters in
            if let counter = counters[key] { return counter }
            let counter = Metrics.Counter(label: "http_requests_total",
                                  dimensions: [("method", method), ("route", route), ("status", String(status))],
                                  factory: factory)
            counters[key] = counter
            return counter
        }
        counter.increment()
        let timer = durations.withLockedValue { timers in
            if let timer = timers[route] { return timer }
            let timer = Metrics.Timer(label: "http_request_duration_seconds", dimensions: [("route", route)], factory: factory)
            timers[route] = timer
            return timer
        }
        timer.recordNanoseconds(duration.inNanoseconds)
    }

    /// The Prometheus text exposition of everything.
    public func exposition() -> [UInt8] {
        let dropped = LogSink.shared.dropped
        let delta = logLinesDroppedPublished.withLockedValue { published in
            defer { published = max(published, dropped) }
            return dropped - published
        }
        if delta > 0 { logLinesDropped.increment(by: delta) }
        return registry.emitToBuffer()
    }
}
