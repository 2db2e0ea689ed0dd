import FuzzDriver
import NotesAPI
import SupervisorConfiguration
import Settings
import TimeUnits

/// The supervisor's flags and environment, and the worker's environment: every line `NAME=value` is a
/// variable, every other line an argument. A bad value must be a one-line error, never a trap.
func fuzzSettings(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    var environment: [String: String] = [:]
    var arguments: [String] = []
    for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
        if let equals = line.firstIndex(of: "="), !line.hasPrefix("-") {
            environment[String(line[..<equals])] = String(line[line.index(after: equals)...])
        } else {
            arguments.append(String(line))
        }
    }
    // A command that exists, so that settings past the command are read too.
    arguments += ["--", "/bin/true"]
    if let parsed = try? SupervisorArguments(parsing: arguments) {
        _ = try? SupervisorSettings(arguments: parsed, environment: environment, defaultWorkerDirectory: "/nonexistent")
    }
    _ = try? BudgetConfiguration.read(workers: 4, cleanup: nil, reader: SettingsReader(environment: environment))
    environment["DATABASE_URL"] = environment["DATABASE_URL"] ?? "postgres://fuzz/db"
    _ = try? APISettings.fromEnvironment(environment)
    // Every declared setting's check, on the whole input: a one-line answer or nil, never a trap.
    for setting in Catalog.all { _ = setting.kind.problem(text, name: "fuzz") }
    _ = EnvironmentContract.problem(of: .worker, in: environment)
    _ = DurationSyntax.parse(text)
    return 0
}

fuzz { fuzzSettings($0, $1) }
