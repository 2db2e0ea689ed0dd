import Arbiter
import Glibc

/// Everything the supervisor needs to run, validated before anything is bound or spawned.
public struct SupervisorSettings: Sendable {
    public var arbiter = Arbiter<ContinuousClock.Instant>.Configuration()
    public var bind: BindAddress = .tcp(host: "0.0.0.0", port: 8080)
    /// Kernel accept queue. 2048, as gunicorn: a burst during a rolling restart queues instead of being refused.
    public var backlog: Int32 = 2048
    public var command: Spawner.Command
    public var environment: [String: String]
    /// The scheduled cleanup job; nil when there is none.
    public var cleanup: CleanupConfiguration?
    /// The connection budget (`--budget`, `DB_*`, `REPLICAS`).
    public var budget: BudgetConfiguration?
    /// With `--budget warn`, what would have been refused, for the start log.
    public var budgetWarning: String?
    /// A worker asks to be replaced after this many requests (`--max-requests`), plus up to the jitter, so
    /// that workers started together do not all recycle together.
    public var maxRequests: Int?
    public var maxRequestsJitter = 0
    /// A worker whose resident memory passes this many bytes is recycled (`--max-worker-memory`).
    public var maxWorkerMemory: Int?
    /// The control socket's path (`--control-socket`); nil for none.
    public var controlSocket: String?
    /// The path came from `--control-socket` or `CONTROL_SOCKET`: if it cannot be created the supervisor exits
    /// 71 rather than run deaf to the commands the operator will send there; the default path only warns.
    public var controlSocketIsExplicit = false
    /// Where the admin endpoint serves every worker's metrics (`--metrics-bind`); nil for none, the default.
    public var metricsBind: BindAddress?

    public init(command: Spawner.Command, environment: [String: String]) {
        self.command = command
        self.environment = environment
    }
}

/// Reading durations, counts and switches given as flags or environment values.
public enum SettingParser {
    /// `USR1`, `USR2`, `SIGUSR1`, comma-separated, or `none`: the signals relayed to the workers.
    public static func relayedSignals(_ text: String, name: String) throws(ConfigurationError) -> Set<Arbiter<ContinuousClock.Instant>.UserSignal> {
        var signals: Set<Arbiter<ContinuousClock.Instant>.UserSignal> = []
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            var word = String(item).trimmingSpaces.uppercased()
            if word == "NONE" { continue }
            if word.hasPrefix("SIG") { word.removeFirst(3) }
            guard let signal = Arbiter<ContinuousClock.Instant>.UserSignal(rawValue: word) else {
                throw ConfigurationError("\(name): expected USR1, USR2 or none, got '\(item)' (only these are relayed: "
                    + "the others are the supervisor's own)")
            }
            signals.insert(signal)
        }
        return signals
    }

    /// Seconds as a plain number (`8`, `0.5`), or with a unit: `250ms`, `8s`, `2m`, `1h`.
    public static func duration(_ text: String, name: String) throws(ConfigurationError) -> Duration {
        let trimmed = text.trimmingSpaces
        let units: [(suffix: String, seconds: Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        var number = Substring(trimmed)
        var scale = 1.0
        for unit in units where trimmed.hasSuffix(unit.suffix) {
            number = trimmed.dropLast(unit.suffix.count)
            scale = unit.seconds
            break
        }
        guard let value = Double(number), value.isFinite, value >= 0, value * scale <= 86_400 * 365 else {
            throw ConfigurationError("\(name): expected seconds such as 8, 0.5 or 250ms, got '\(text)'")
        }
        return .milliseconds(Int64((value * scale * 1000).rounded()))
    }

    /// Bytes as a plain number, or with K, M, G (powers of 1024, an optional B or iB): `512M`, `1.5G`.
    public static func size(_ text: String, name: String) throws(ConfigurationError) -> Int {
        var number = Substring(text.trimmingSpaces.uppercased())
        for suffix in ["IB", "B"] where number.hasSuffix(suffix) { number = number.dropLast(suffix.count); break }
        var scale = 1.0
        if let unit = number.last, let power = ["K": 1.0, "M": 2.0, "G": 3.0, "T": 4.0][String(unit)] {
            scale = pow(1024, power)
            number = number.dropLast()
        }
        guard let value = Double(number), value.isFinite, value > 0, value * scale < 1e15 else {
            throw ConfigurationError("\(name): expected a size such as 512M, 1.5G or 300000000, got '\(text)'")
        }
        return Int(value * scale)
    }

    public static func count(_ text: String, name: String, range: ClosedRange<Int>) throws(ConfigurationError) -> Int {
        guard let value = Int(text.trimmingSpaces), range.contains(value) else {
            throw ConfigurationError(
                "\(name): expected a whole number from \(range.lowerBound) to \(range.upperBound), got '\(text)'")
        }
        return value
    }
}

extension String {
    var trimmingSpaces: String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}
