import NotesAPI
import Dispatch
import FoundationEssentials
import Glibc
import PreforkPostgres
import PreforkWorker
import Settings

/// The API worker. `worker` (or `worker serve`) serves, through `Worker.run` as any worker built on the library
/// does; `worker migrate` and `worker create-token` are the operator's tools for the same database. Exit codes:
/// 0, 1 (could not start or failed), 64 (usage), 78 (a setting is missing or invalid).
var arguments = Array(CommandLine.arguments.dropFirst())
switch arguments.first {
case "migrate":
    Migrate.run(Array(arguments.dropFirst()))
case "create-token":
    CreateToken.run(Array(arguments.dropFirst()))
case "-h", "--help", "help":
    print("""
        The notes API worker.

        USAGE: worker [serve] [options]     serve the API (the default)
               worker migrate               apply the schema migrations that are missing (idempotent)
               worker create-token --user NAME [--ttl DURATION]
                                            create a bearer token and print it once; only its SHA-256 is stored

        """ + Worker.help("worker serve"))
    exit(0)
default:
    if arguments.first == "serve" { arguments.removeFirst() }
    Worker.run(name: "worker", arguments: arguments) { configuration in
        Application(settings: try APISettings.fromEnvironment(ProcessInfo.processInfo.environment),
                    logger: configuration.logger(label: "worker"))
    }
}

/// A tool's own flags (`--help`, and those declared for it); a bad one is one line and exit 64.
func toolFlags(_ arguments: [String], program: Program, usage: String) -> [String: String] {
    let parser = FlagParser(settings: Catalog.flags(of: program), switches: ["--help": "help", "-h": "help"],
                            stopsAtFirstArgument: false)
    let parsed: FlagParser.Parsed
    do { parsed = try parser.parse(arguments, program: "worker \(program.rawValue)") } catch { failure(error.description, code: EX_USAGE) }
    if parsed.switches.contains("help") {
        let options = SettingsHelp.options(of: program)
        print(usage + (options.isEmpty ? "" : "\n\nOPTIONS:\n" + options))
        exit(0)
    }
    if let argument = parsed.arguments.first { failure("unexpected argument \(ValueSyntax.shown(argument))", code: EX_USAGE) }
    return parsed.flags
}

/// The Postgres settings of `migrate` and `create-token`: they touch no Redis (so REDIS_URL may be unset, as in
/// a `docker run ... worker migrate` with only DATABASE_URL) and hold one connection, whatever the pool variables
/// say (`DB_POOL_SIZE=auto` is the supervisor's to work out). A bad setting is one line and exit 78.
func loadPostgres() -> PostgresConfiguration {
    var environment = ProcessInfo.processInfo.environment
    environment[Catalog.poolSize.variables[0]] = "1"
    environment[Catalog.maxOverflow.variables[0]] = "0"
    do {
        return try PostgresConfiguration.fromEnvironment(environment, applicationName: "api-worker")
    } catch {
        failure(error.message, code: EX_CONFIG)
    }
}

func failure(_ message: String, code: Int32) -> Never {
    var line = "worker: \(message)\n"
    line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
    exit(code)
}

/// Runs async work from a synchronous command and exits with its code.
func runToCompletion(_ body: @escaping @Sendable () async -> Int32) -> Never {
    Task {
        exit(await body())
    }
    dispatchMain()
}
