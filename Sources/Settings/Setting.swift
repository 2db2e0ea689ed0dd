import TimeUnits
import ConnectionURL

/// The programs that read settings.
public enum Program: String, Sendable, CaseIterable, Comparable {
    case supervisor
    /// `supervisor budget`: the connection arithmetic on its own.
    case budget
    case worker
    case cleanup

    public static func < (lhs: Program, rhs: Program) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}

/// One setting, declared once: its flags, its variables, its default, what it accepts, its help line and who
/// reads it. The parsers, `--help`, the README's table and the supervisor's check of its workers' environment
/// are all made from these declarations, so they cannot disagree.
public struct Setting: Sendable, Hashable, CustomStringConvertible {
    /// What a value may be; the check is the same wherever the value is read.
    public enum Kind: Sendable, Hashable {
        /// A whole number in the range.
        case count(ClosedRange<Int>)
        /// A whole number in the range, or `auto`.
        case countOrAuto(ClosedRange<Int>)
        /// A `DurationSyntax` duration at least `minimum`; `never` also accepts `-1` (and reads as nil).
        case duration(minimum: Duration, never: Bool)
        /// Bytes: a number, or K, M, G, T (powers of 1024) with an optional B or iB.
        case size
        /// true/false, 1/0, yes/no, on/off; as a flag, a switch that takes no value.
        case boolean
        case logLevel
        /// One of these words, in any case.
        case choice([String])
        /// Checked where it is used (an address, a cron expression, a command).
        case text
        /// A libpq URL (`postgresql://`), checked without libpq and never echoed.
        case postgresURL
        /// `redis://`, checked and never echoed.
        case redisURL
        /// An octal file mode, such as 0660.
        case fileMode
    }

    /// The key flags are stored under: the long flag without its dashes, or the variable.
    public let name: String
    /// `--workers` first, then its short form; empty for a variable only.
    public let flags: [String]
    /// Variables in order of precedence: `API_WORKERS` before `WEB_CONCURRENCY`.
    public let variables: [String]
    /// The default as a value of `kind`, nil when there is none or it is worked out (see `defaultHelp`).
    public let defaultValue: String?
    /// The default as `--help` and the README state it.
    public let defaultHelp: String
    public let kind: Kind
    /// For `--help` and the README: what it does, one line.
    public let help: String
    /// The programs that read it.
    public let readers: Set<Program>
    /// The programs that take its flags, when fewer than its readers (the budget's `--pool-size` is not a
    /// supervisor flag: the supervisor reads `DB_POOL_SIZE` to know the workers' pools).
    public let flagReaders: Set<Program>
    /// A flag given more than once adds to the list (`--relay-signal USR1 --relay-signal USR2`).
    public let repeatable: Bool
    /// A second one is refused rather than winning: `--bind A --bind B` listens on both under gunicorn, so
    /// taking only B would be a surprise.
    public let once: Bool
    /// For `--help`: `<n>`, `<duration>`.
    public let valueName: String

    public init(_ flags: [String] = [], variables: [String] = [], default defaultValue: String? = nil,
                defaultHelp: String? = nil, kind: Kind, valueName: String? = nil, help: String, readers: Set<Program>,
                flagReaders: Set<Program>? = nil, repeatable: Bool = false, once: Bool = false) {
        self.name = flags.first.map { String($0.drop { $0 == "-" }) } ?? variables[0]
        self.flags = flags
        self.variables = variables
        self.defaultValue = defaultValue
        self.defaultHelp = defaultHelp ?? defaultValue ?? ""
        self.kind = kind
        self.help = help
        self.readers = readers
        self.flagReaders = flags.isEmpty ? [] : (flagReaders ?? readers)
        self.repeatable = repeatable
        self.once = once
        self.valueName = valueName ?? kind.valueName
    }

    public var description: String { flags.first ?? variables[0] }

    /// Whether the flag is a switch: `--no-notify`, never `--no-notify=yes`.
    public var isSwitch: Bool { kind == .boolean }

    public static func == (lhs: Setting, rhs: Setting) -> Bool { lhs.name == rhs.name }
    public func hash(into hasher: inout Hasher) { hasher.combine(name) }
}

extension Setting.Kind {
    var valueName: String {
        switch self {
        case .count, .countOrAuto: "n"
        case .duration: "duration"
        case .size: "size"
        case .boolean: ""
        case .logLevel: "level"
        case .choice(let words): words.joined(separator: "|")
        case .text: "value"
        case .postgresURL, .redisURL: "url"
        case .fileMode: "mode"
        }
    }

    /// Why `text` is not a value of this kind, naming the setting as `name` and never echoing a URL; nil if it is.
    public func problem(_ text: String, name: String) -> String? {
        func got() -> String { "got \(ValueSyntax.shown(text))" }
        switch self {
        case .count(let range):
            return ValueSyntax.count(text, range: range) == nil
                ? "\(name): expected a whole number from \(range.lowerBound) to \(range.upperBound), \(got())" : nil
        case .countOrAuto(let range):
            if Substring(text).trimmingSpaces.lowercased() == "auto" { return nil }
            return ValueSyntax.count(text, range: range) == nil
                ? "\(name): expected auto or a whole number from \(range.lowerBound) to \(range.upperBound), \(got())" : nil
        case .duration(let minimum, let never):
            if never, Substring(text).trimmingSpaces == "-1" { return nil }
            guard let value = DurationSyntax.parse(text) else {
                return "\(name): expected a duration such as \(DurationSyntax.examples)\(never ? ", or -1 for never" : ""), \(got())"
            }
            if value < minimum {
                return minimum == .milliseconds(1)
                    ? "\(name): must be more than 0, \(got())"
                    : "\(name): must be at least \(ValueSyntax.describe(minimum)), \(got())"
            }
            return nil
        case .size:
            return ValueSyntax.size(text) == nil ? "\(name): expected a size such as 512M, 1.5G or 300000000, \(got())" : nil
        case .boolean:
            return ValueSyntax.boolean(text) == nil ? "\(name): expected true or false (1/0, yes/no, on/off), \(got())" : nil
        case .logLevel:
            return LogLevelSyntax.parse(text) == nil ? "\(name): expected \(LogLevelSyntax.names), \(got())" : nil
        case .choice(let words):
            let word = Substring(text).trimmingSpaces.lowercased()
            return words.contains(word) ? nil : "\(name): expected \(ValueSyntax.list(words)), \(got())"
        case .text:
            return nil
        case .postgresURL:
            do { _ = try PostgresURLSyntax(text) } catch { return error.description }
            return nil
        case .redisURL:
            do { _ = try RedisURL(text) } catch { return error.description }
            return nil
        case .fileMode:
            return ValueSyntax.fileMode(text) == nil ? "\(name): expected an octal mode from 0000 to 0777 such as 0660, \(got())" : nil
        }
    }
}
