import TimeUnits
import ConnectionURL
import LogFormat

/// The programs (and the supervisor's commands) that read settings.
public enum Program: String, Sendable, CaseIterable, Comparable {
    case supervisor
    /// `supervisor budget`: the connection arithmetic on its own.
    case budget
    /// The commands that talk to a running supervisor over its control socket.
    case status, scale, reload, stop, healthcheck
    /// `supervisor schedule`: a cron expression's next runs.
    case schedule
    case worker
    /// `worker migrate` and `worker create-token`: the operator's tools for the worker's database.
    case migrate
    case createToken = "create-token"
    case cleanup

    /// The supervisor's subcommands, which take only their own flags.
    public var isCommand: Bool { ![.supervisor, .worker, .migrate, .createToken, .cleanup].contains(self) }

    public static func < (lhs: Program, rhs: Program) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}

/// One setting as `--help`, the settings reference, the flag parser and the environment check see it: its flags, its
/// variables, its default as text, what it accepts, its help line and who reads it. `Setting<Value>` pairs it
/// with the typed default and reading that the code uses.
public struct AnySetting: Sendable, Hashable, CustomStringConvertible {
    /// What a value may be; the check is the same wherever the value is read.
    public enum Kind: Sendable, Hashable {
        /// A whole number in the range.
        case count(ClosedRange<Int>)
        /// A whole number in the range, or `auto`.
        case countOrAuto(ClosedRange<Int>)
        /// A `DurationSyntax` duration at least `minimum`; `never` also accepts `-1` (and reads as nil).
        case duration(minimum: Duration, maximum: Duration? = nil, never: Bool)
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
    /// The typed default written as a value of `kind`; nil when there is none or it is worked out (see `defaultHelp`).
    public let defaultValue: String?
    /// The default as `--help` and the settings reference state it.
    public let defaultHelp: String
    public let kind: Kind
    /// For `--help` and the settings reference: what it does, one line.
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

    init(_ declared: Declared, default defaultValue: String?, defaultHelp: String?, kind: Kind) {
        self.name = declared.flags.first.map { String($0.drop { $0 == "-" }) } ?? declared.variables[0]
        self.flags = declared.flags
        self.variables = declared.variables
        self.defaultValue = defaultValue
        self.defaultHelp = defaultHelp ?? defaultValue ?? ""
        self.kind = kind
        self.help = declared.help
        self.readers = declared.readers
        self.flagReaders = declared.flags.isEmpty ? [] : (declared.flagReaders ?? declared.readers)
        self.repeatable = declared.repeatable
        self.once = declared.once
        self.valueName = declared.valueName ?? kind.valueName
    }

    public var description: String { flags.first ?? variables[0] }

    /// `NAME=value` for a child's environment, under the setting's first variable: what the supervisor hands its
    /// workers and the cleanup job.
    public func assignment(_ value: some CustomStringConvertible) -> String { "\(variables[0])=\(value)" }

    /// Whether the flag is a switch: `--no-notify`, never `--no-notify=yes`.
    public var isSwitch: Bool { kind == .boolean }

    /// Two commands may each have a `--timeout` of their own: a setting is its name and its readers.
    public static func == (lhs: AnySetting, rhs: AnySetting) -> Bool { lhs.name == rhs.name && lhs.readers == rhs.readers }
    public func hash(into hasher: inout Hasher) { hasher.combine(name) }
}

/// What every declaration has besides its value: the names, the help, the readers.
struct Declared {
    var flags: [String]
    var variables: [String]
    var valueName: String?
    var help: String
    var readers: Set<Program>
    var flagReaders: Set<Program>?
    var repeatable = false
    var once = false
}

/// One setting, declared once with its typed default: `reader[Catalog.workers]` is an `Int`, the declared default
/// when nothing is given. The parsers, `--help`, the settings reference and the supervisor's check of its workers'
/// environment are all made from these declarations, so they cannot disagree.
@dynamicMemberLookup
public struct Setting<Value: Sendable>: Sendable {
    public let declaration: AnySetting
    /// What the program uses when neither a flag nor a variable gives a value.
    public let defaultValue: Value
    /// The reading of a text that passed the kind's check.
    let value: @Sendable (String) -> Value?

    init(_ declared: Declared, kind: AnySetting.Kind, default defaultValue: Value, defaultText: String?, defaultHelp: String?,
         value: @escaping @Sendable (String) -> Value?) {
        self.declaration = AnySetting(declared, default: defaultText, defaultHelp: defaultHelp, kind: kind)
        self.defaultValue = defaultValue
        self.value = value
    }

    public subscript<T>(dynamicMember keyPath: KeyPath<AnySetting, T>) -> T { declaration[keyPath: keyPath] }
    /// `NAME=value` for a child's environment (`AnySetting.assignment`).
    public func assignment(_ value: some CustomStringConvertible) -> String { declaration.assignment(value) }
}

/// `DB_POOL_SIZE`: a number, or `auto` (the supervisor works it out from the connection budget).
public enum CountOrAuto: Sendable, Equatable {
    case auto
    case count(Int)

    public var count: Int? { if case .count(let value) = self { value } else { nil } }
}

/// `--budget` / `DB_BUDGET`.
public enum BudgetMode: String, Sendable, CaseIterable {
    /// A configuration that can exceed the budget does not start (exit 78); TTIN and scale past it are
    /// refused; restarts surge only when the surge fits.
    case enforce
    /// The same table, as a warning; nothing is refused or held back.
    case warn
    /// No accounting: the workers do not use Postgres.
    case off
}

// MARK: Declarations by kind

extension Setting {
    /// The whole numbers a count accepts.
    public var range: ClosedRange<Int> {
        guard case .count(let range) = declaration.kind else { preconditionFailure("\(declaration) is not a count") }
        return range
    }
}

extension Setting where Value == Int {
    static func count(_ flags: [String] = [], variables: [String] = [], default value: Int, in range: ClosedRange<Int>,
                      valueName: String? = nil, help: String, readers: Set<Program>, flagReaders: Set<Program>? = nil) -> Self {
        Self(Declared(flags: flags, variables: variables, valueName: valueName, help: help, readers: readers, flagReaders: flagReaders),
             kind: .count(range), default: value, defaultText: "\(value)", defaultHelp: nil) { ValueSyntax.count($0, range: range) }
    }

    static func size(_ flags: [String] = [], variables: [String] = [], default value: Int, help: String,
                     readers: Set<Program>) -> Self {
        Self(Declared(flags: flags, variables: variables, help: help, readers: readers),
             kind: .size, default: value, defaultText: ValueSyntax.describe(bytes: value), defaultHelp: nil, value: ValueSyntax.size)
    }
}

extension Setting where Value == Int? {
    /// A size with no default (off), or one worked out from other settings (`defaultHelp` says how).
    static func size(_ flags: [String] = [], variables: [String] = [], defaultHelp: String, help: String,
                     readers: Set<Program>) -> Self {
        Self(Declared(flags: flags, variables: variables, help: help, readers: readers),
             kind: .size, default: nil, defaultText: nil, defaultHelp: defaultHelp, value: ValueSyntax.size)
    }
}

extension Setting where Value == CountOrAuto {
    static func countOrAuto(_ flags: [String] = [], variables: [String] = [], default value: Int, in range: ClosedRange<Int>,
                            help: String, readers: Set<Program>, flagReaders: Set<Program>? = nil) -> Self {
        Self(Declared(flags: flags, variables: variables, help: help, readers: readers, flagReaders: flagReaders),
             kind: .countOrAuto(range), default: .count(value), defaultText: "\(value)", defaultHelp: nil) { text in
            Substring(text).trimmingSpaces.lowercased() == "auto" ? .auto : ValueSyntax.count(text, range: range).map { .count($0) }
        }
    }
}

extension Setting where Value == Duration {
    static func duration(_ flags: [String] = [], variables: [String] = [], default value: Duration, minimum: Duration,
                         maximum: Duration? = nil, help: String, readers: Set<Program>, flagReaders: Set<Program>? = nil) -> Self {
        Self(Declared(flags: flags, variables: variables, help: help, readers: readers, flagReaders: flagReaders),
             kind: .duration(minimum: minimum, maximum: maximum, never: false), default: value, defaultText: ValueSyntax.describe(value),
             defaultHelp: nil, value: DurationSyntax.parse)
    }
}

extension Setting where Value == Duration? {
    /// A duration that may be absent: none by default (`defaultHelp` says what then), or `-1` for never.
    static func duration(_ flags: [String] = [], variables: [String] = [], default value: Duration?, defaultHelp: String? = nil,
                         minimum: Duration, maximum: Duration? = nil, never: Bool, help: String, readers: Set<Program>) -> Self {
        Self(Declared(flags: flags, variables: variables, help: help, readers: readers),
             kind: .duration(minimum: minimum, maximum: maximum, never: never), default: value, defaultText: value.map(ValueSyntax.describe),
             defaultHelp: defaultHelp) { text in
            Substring(text).trimmingSpaces == "-1" ? .some(nil) : DurationSyntax.parse(text).map { .some($0) }
        }
    }
}

extension Setting where Value == Bool {
    /// Off unless given; as a flag, a switch.
    static func boolean(_ flags: [String] = [], variables: [String] = [], default value: Bool = false, help: String,
                        readers: Set<Program>, flagReaders: Set<Program>? = nil) -> Self {
        Self(Declared(flags: flags, variables: variables, help: help, readers: readers, flagReaders: flagReaders),
             kind: .boolean, default: value, defaultText: value ? "true" : nil, defaultHelp: value ? nil : "off",
             value: ValueSyntax.boolean)
    }
}

extension Setting where Value == Bool? {
    /// A boolean whose default is worked out from other settings (`defaultHelp` says how).
    static func boolean(variables: [String], defaultHelp: String, help: String, readers: Set<Program>) -> Self {
        Self(Declared(flags: [], variables: variables, help: help, readers: readers),
             kind: .boolean, default: nil, defaultText: nil, defaultHelp: defaultHelp) { ValueSyntax.boolean($0).map { .some($0) } }
    }
}

extension Setting where Value == LogLevel {
    static func logLevel(_ flags: [String], variables: [String], default value: LogLevel, help: String, readers: Set<Program>) -> Self {
        Self(Declared(flags: flags, variables: variables, help: help, readers: readers),
             kind: .logLevel, default: value, defaultText: value.rawValue, defaultHelp: nil, value: LogLevelSyntax.parse)
    }
}

extension Setting where Value: RawRepresentable & CaseIterable, Value.RawValue == String {
    static func choice(_ flags: [String], variables: [String], default value: Value, help: String, readers: Set<Program>) -> Self {
        Self(Declared(flags: flags, variables: variables, help: help, readers: readers),
             kind: .choice(Value.allCases.map(\.rawValue)), default: value, defaultText: value.rawValue, defaultHelp: nil) {
            Value(rawValue: String(Substring($0).trimmingSpaces.lowercased()))
        }
    }
}

extension Setting {
    /// A choice whose default is worked out from other settings (`defaultHelp` says how).
    static func choice<Choice: RawRepresentable & CaseIterable & Sendable>(
        _ flags: [String], variables: [String], defaultHelp: String, help: String, readers: Set<Program>
    ) -> Self where Value == Choice?, Choice.RawValue == String {
        Self(Declared(flags: flags, variables: variables, help: help, readers: readers),
             kind: .choice(Choice.allCases.map(\.rawValue)), default: nil, defaultText: nil, defaultHelp: defaultHelp) {
            Choice(rawValue: String(Substring($0).trimmingSpaces.lowercased())).map { .some($0) }
        }
    }
}

extension Setting where Value == String {
    static func text(_ flags: [String] = [], variables: [String] = [], default value: String, valueName: String? = nil,
                     help: String, readers: Set<Program>, flagReaders: Set<Program>? = nil) -> Self {
        Self(Declared(flags: flags, variables: variables, valueName: valueName, help: help, readers: readers, flagReaders: flagReaders),
             kind: .text, default: value, defaultText: value, defaultHelp: nil) { $0 }
    }
}

extension Setting where Value == String? {
    /// Text with no default: `defaultHelp` says what is done without it.
    static func text(_ flags: [String] = [], variables: [String] = [], defaultHelp: String, valueName: String? = nil,
                     help: String, readers: Set<Program>, flagReaders: Set<Program>? = nil, repeatable: Bool = false,
                     once: Bool = false) -> Self {
        Self(Declared(flags: flags, variables: variables, valueName: valueName, help: help, readers: readers,
                      flagReaders: flagReaders, repeatable: repeatable, once: once),
             kind: .text, default: nil, defaultText: nil, defaultHelp: defaultHelp) { $0 }
    }

    /// A URL, checked without echoing it; nil when unset.
    static func url(variables: [String], kind: AnySetting.Kind, defaultHelp: String, help: String, readers: Set<Program>) -> Self {
        Self(Declared(flags: [], variables: variables, help: help, readers: readers),
             kind: kind, default: nil, defaultText: nil, defaultHelp: defaultHelp) { $0 }
    }
}

extension Setting where Value == UInt32 {
    static func fileMode(_ flags: [String], variables: [String], default value: UInt32, help: String, readers: Set<Program>) -> Self {
        Self(Declared(flags: flags, variables: variables, help: help, readers: readers),
             kind: .fileMode, default: value, defaultText: "0" + String(value, radix: 8), defaultHelp: nil, value: ValueSyntax.fileMode)
    }
}

extension AnySetting.Kind {
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
        case .duration(let minimum, let maximum, let never):
            if never, Substring(text).trimmingSpaces == "-1" { return nil }
            guard let value = DurationSyntax.parse(text) else {
                return "\(name): expected a duration such as \(DurationSyntax.examples)\(never ? ", or -1 for never" : ""), \(got())"
            }
            if let maximum, value > maximum { return "\(name): must be at most \(ValueSyntax.describe(maximum)), \(got())" }
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
