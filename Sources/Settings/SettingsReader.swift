import TimeUnits
/// A value that is not accepted: one line naming the flag or variable. A flag's is a usage error (exit 64), a
/// variable's a configuration error (exit 78).
public struct SettingError: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String
    public var fromFlag: Bool

    public init(_ description: String, fromFlag: Bool) {
        self.description = description
        self.fromFlag = fromFlag
    }
}

/// Reads declared settings from flags, then variables in their order, then the declared default.
public struct SettingsReader: Sendable {
    /// Flag values by `Setting.name` (see `CommandLine`); a switch given is `"true"`.
    public var flags: [String: String]
    public var environment: [String: String]

    public init(flags: [String: String] = [:], environment: [String: String]) {
        self.flags = flags
        self.environment = environment
    }

    /// Where a setting's value comes from, when it is given at all. An empty variable counts as unset.
    public struct Found: Sendable, Equatable {
        public var text: String
        /// The flag or the variable, for messages.
        public var source: String
        public var fromFlag: Bool
    }

    public func found(_ setting: Setting) -> Found? {
        if let text = flags[setting.name] { return Found(text: text, source: setting.flags.first ?? setting.name, fromFlag: true) }
        for variable in setting.variables {
            if let text = environment[variable], !text.isEmpty { return Found(text: text, source: variable, fromFlag: false) }
        }
        return nil
    }

    public func isGiven(_ setting: Setting) -> Bool { found(setting) != nil }

    /// The text given, checked against the setting's kind, or the declared default; nil if neither.
    public func text(_ setting: Setting) throws(SettingError) -> String? {
        guard let found = found(setting) else { return setting.defaultValue }
        if let problem = setting.kind.problem(found.text, name: found.source) {
            throw SettingError(problem, fromFlag: found.fromFlag)
        }
        return found.text
    }

    public func count(_ setting: Setting) throws(SettingError) -> Int? {
        guard let text = try text(setting) else { return nil }
        guard case .count(let range) = setting.kind else { return ValueSyntax.count(text, range: 0...Int.max) }
        return ValueSyntax.count(text, range: range)
    }

    /// nil for `auto`.
    public func countOrAuto(_ setting: Setting) throws(SettingError) -> Int? {
        guard let text = try text(setting), Substring(text).trimmingSpaces.lowercased() != "auto" else { return nil }
        return ValueSyntax.count(text, range: 0...Int.max)
    }

    /// nil when unset without a default, or `-1` (never) where the setting allows it.
    public func duration(_ setting: Setting) throws(SettingError) -> Duration? {
        guard let text = try text(setting), Substring(text).trimmingSpaces != "-1" else { return nil }
        return DurationSyntax.parse(text)
    }

    public func size(_ setting: Setting) throws(SettingError) -> Int? {
        try text(setting).flatMap(ValueSyntax.size)
    }

    /// A switch or a boolean variable: false unless given.
    public func isOn(_ setting: Setting) throws(SettingError) -> Bool {
        try text(setting).flatMap(ValueSyntax.boolean) ?? false
    }

    public func boolean(_ setting: Setting) throws(SettingError) -> Bool? {
        try text(setting).flatMap(ValueSyntax.boolean)
    }

    public func logLevel(_ setting: Setting = Catalog.logLevel) throws(SettingError) -> LogLevel {
        try text(setting).flatMap(LogLevelSyntax.parse) ?? .info
    }

    /// One of the kind's words, lowercased.
    public func choice(_ setting: Setting) throws(SettingError) -> String? {
        try text(setting).map { String(Substring($0).trimmingSpaces.lowercased()) }
    }

    public func fileMode(_ setting: Setting) throws(SettingError) -> UInt32? {
        try text(setting).flatMap(ValueSyntax.fileMode)
    }
}
