import TimeUnits
/// A program's command line read against its declared settings: `--name value`, `--name=value`, switches,
/// and the rest (the worker command after the options, or after `--`).
///
/// Hand-written rather than ArgumentParser for the supervisor: ArgumentParser discovers options by
/// reflection, which faults about 4 MB of the binary into memory at start, half the supervisor's budget.
public struct FlagParser: Sendable {
    public var settings: [AnySetting]
    /// Switches that are not settings: `--help`, `--version`, `--json`.
    public var switches: [String: String]
    /// Whether the first argument that is not an option ends the options (the supervisor's worker command),
    /// or arguments and options may mix (a subcommand's).
    public var stopsAtFirstArgument: Bool

    public init(settings: [AnySetting], switches: [String: String] = ["--help": "help", "-h": "help", "--version": "version"],
                stopsAtFirstArgument: Bool) {
        self.settings = settings
        self.switches = switches
        self.stopsAtFirstArgument = stopsAtFirstArgument
    }

    public struct Parsed: Sendable, Equatable {
        /// Values by `Setting.name`; a repeated flag's values joined with commas.
        public var flags: [String: String] = [:]
        /// The switches given, by their names (`help`, `version`).
        public var switches: Set<String> = []
        public var arguments: [String] = []
        /// The arguments came after `--`: a first word that looks like a command was meant as a program.
        public var afterDashes = false
    }

    /// Errors are usage errors: they name the option, and where to read more.
    public func parse(_ arguments: some Sequence<String>, program: String) throws(SettingError) -> Parsed {
        var parsed = Parsed()
        var byFlag: [String: AnySetting] = [:]
        for setting in settings { for flag in setting.flags { byFlag[flag] = setting } }
        var iterator = arguments.makeIterator()
        while let argument = iterator.next() {
            if argument == "--" {
                parsed.afterDashes = parsed.arguments.isEmpty
                while let rest = iterator.next() { parsed.arguments.append(rest) }
                break
            }
            // `-5` is an argument (a count), not an option.
            guard argument.hasPrefix("-"), argument != "-", Int(argument) == nil else {
                parsed.arguments.append(argument)
                if stopsAtFirstArgument {
                    while let rest = iterator.next() { parsed.arguments.append(rest) }
                    break
                }
                continue
            }
            var name = argument
            var inline: String?
            if argument.hasPrefix("--"), let equals = argument.firstIndex(of: "=") {
                name = String(argument[..<equals])
                inline = String(argument[argument.index(after: equals)...])
            }
            if let word = switches[name] {
                guard inline == nil else { throw SettingError("\(name) takes no value", fromFlag: true) }
                parsed.switches.insert(word)
                continue
            }
            guard let setting = byFlag[name] else {
                // The flag a typo most likely meant: one that starts with it, or that it starts with (`--worker`).
                let near = name.count > 3 ? (Array(byFlag.keys) + Array(switches.keys)).filter {
                    $0.hasPrefix("--") && ($0.hasPrefix(name) || name.hasPrefix($0))
                }.sorted() : []
                let hint = near.count == 1 ? "did you mean \(near[0])? " : ""
                throw SettingError("unknown option \(ValueSyntax.shown(name)) (\(hint)see \(program) --help)", fromFlag: true)
            }
            if setting.isSwitch {
                guard inline == nil else { throw SettingError("\(name) takes no value", fromFlag: true) }
                parsed.flags[setting.name] = "true"
                continue
            }
            guard let value = inline ?? iterator.next() else { throw SettingError("\(name) needs a value", fromFlag: true) }
            if setting.once, parsed.flags[setting.name] != nil {
                throw SettingError("\(name) is given twice; it takes one value", fromFlag: true)
            }
            if setting.repeatable, let earlier = parsed.flags[setting.name] {
                parsed.flags[setting.name] = earlier + "," + value
            } else {
                parsed.flags[setting.name] = value
            }
        }
        return parsed
    }
}
