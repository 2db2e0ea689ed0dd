import Glibc
import TimeUnits
/// A value that is not accepted: one line naming the flag or variable. A flag's is a usage error (exit 64), a
/// variable's a configuration error (exit 78). The one such error of the worker, the cleanup and their
/// libraries (`PreforkWorker.ConfigurationError` is this type).
public struct SettingError: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String
    public var fromFlag: Bool

    /// - Parameter fromFlag: false for a variable or a setting found wrong later (a server refusing it).
    public init(_ description: String, fromFlag: Bool = false) {
        self.description = description
        self.fromFlag = fromFlag
    }

    /// The exit code the programs document for it: 64 for a flag, 78 for the rest.
    public var exitCode: Int32 { fromFlag ? EX_USAGE : EX_CONFIG }
}

/// Reads declared settings from flags, then variables in their order, then the declared default.
public struct SettingsReader: Sendable {
    /// Flag values by `AnySetting.name` (see `FlagParser`); a switch given is `"true"`.
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

    public func found(_ setting: AnySetting) -> Found? {
        if let text = flags[setting.name] { return Found(text: text, source: setting.flags.first ?? setting.name, fromFlag: true) }
        for variable in setting.variables {
            if let text = environment[variable], !text.isEmpty { return Found(text: text, source: variable, fromFlag: false) }
        }
        return nil
    }

    public func found<Value>(_ setting: Setting<Value>) -> Found? { found(setting.declaration) }

    public func isGiven<Value>(_ setting: Setting<Value>) -> Bool { found(setting.declaration) != nil }

    /// The value given, checked against the setting's kind, or the declared default.
    public subscript<Value>(_ setting: Setting<Value>) -> Value {
        get throws(SettingError) {
            guard let found = found(setting.declaration) else { return setting.defaultValue }
            if let problem = setting.kind.problem(found.text, name: found.source) {
                throw SettingError(problem, fromFlag: found.fromFlag)
            }
            guard let value = setting.value(found.text) else {
                throw SettingError("\(found.source): cannot read \(ValueSyntax.shown(found.text))", fromFlag: found.fromFlag)
            }
            return value
        }
    }
}
