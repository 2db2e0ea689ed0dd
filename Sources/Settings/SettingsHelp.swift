import TimeUnits
/// `--help` and the settings reference's table, written from the declarations.
public enum SettingsHelp {
    /// The OPTIONS block of a program's `--help`: each flag, its help, its variables and its default.
    public static func options(of program: Program, extra: [(String, String)] = []) -> String {
        var rows: [(String, String)] = Catalog.flags(of: program).map { setting in
            let long = setting.flags.first { $0.hasPrefix("--") } ?? setting.flags[0]
            let short = setting.flags.first { !$0.hasPrefix("--") }
            var left = (short.map { "\($0), " } ?? "    ") + long
            if !setting.isSwitch { left += " <\(setting.valueName)>" }
            return (left, line(setting))
        }
        rows += extra
        return rows.map { left, right in
            let padded = left.count < 30 ? left + String(repeating: " ", count: 30 - left.count) : left + "\n" + String(repeating: " ", count: 32)
            return "  " + padded + wrap(right, indent: 32)
        }.joined(separator: "\n")
    }

    /// The variables a program reads that it takes no flag for.
    public static func environment(of program: Program) -> String {
        Catalog.read(by: program).filter { !$0.variables.isEmpty && !$0.flagReaders.contains(program) }.map { setting in
            let left = setting.variables.joined(separator: ", ")
            let padded = left.count < 28 ? left + String(repeating: " ", count: 28 - left.count) : left + "\n" + String(repeating: " ", count: 30)
            return "  " + padded + wrap(line(setting, withVariables: false), indent: 30)
        }.joined(separator: "\n")
    }

    static func line(_ setting: AnySetting, withVariables: Bool = true) -> String {
        var text = setting.help
        if withVariables, !setting.variables.isEmpty { text += " [\(setting.variables.joined(separator: ", "))]" }
        if !setting.defaultHelp.isEmpty { text += " (default \(setting.defaultHelp))" }
        return text
    }

    /// Lines of at most 110 columns, the continuation indented under the first.
    static func wrap(_ text: String, indent: Int) -> String {
        var lines: [String] = []
        var current = ""
        for word in text.split(separator: " ") {
            if !current.isEmpty, indent + current.count + 1 + word.count > 110 {
                lines.append(current)
                current = String(word)
            } else {
                current += current.isEmpty ? String(word) : " " + word
            }
        }
        lines.append(current)
        return lines.joined(separator: "\n" + String(repeating: " ", count: indent))
    }

    /// The table of every setting in docs/reference/settings.md (between `<!-- settings -->` and
    /// `<!-- /settings -->`); a test checks that the page holds exactly this.
    public static func markdownTable() -> String {
        var rows = ["| flag | environment | default | read by | meaning |", "|---|---|---|---|---|"]
        for setting in Catalog.all {
            let flags = setting.flags.map { "`\($0)`" }.joined(separator: ", ")
            let flagCell = setting.flagReaders == setting.readers || flags.isEmpty
                ? flags : "\(flags) (\(setting.flagReaders.sorted().map(\.rawValue).joined(separator: ", ")))"
            let variables = setting.variables.map { "`\($0)`" }.joined(separator: ", ")
            let defaultCell = setting.defaultValue.map { "`\($0)`" } ?? setting.defaultHelp
            let readers = setting.readers.sorted().map(\.rawValue).joined(separator: ", ")
            rows.append("| \(flagCell) | \(variables) | \(defaultCell) | \(readers) | \(setting.help.replacingPipes) |")
        }
        return rows.joined(separator: "\n")
    }
}

extension String {
    var replacingPipes: String {
        split(separator: "|", omittingEmptySubsequences: false).joined(separator: "\\|")
    }
}
