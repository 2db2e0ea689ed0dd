import ProcessDefaults
import Glibc
import LogFormat
import Logging
import SupervisorShell
import SupervisorConfiguration
import SupervisorSystem
import Settings

/// Parse, configure, run, exit: every failure before the loop is one line on stderr and a documented code.
func fail(_ message: String, code: Int32) -> Never {
    var line = "supervisor: \(message)\n"
    line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
    exit(code)
}

var environment: [String: String] = [:]
var entry = environ
while let pointer = entry.pointee {
    let text = String(cString: pointer)
    if let equals = text.firstIndex(of: "=") {
        environment[String(text[..<equals])] = String(text[text.index(after: equals)...])
    }
    entry += 1
}

if CommandLine.arguments.count > 1, Commands.names.contains(CommandLine.arguments[1]) {
    exit(Commands.run(CommandLine.arguments[1], Array(CommandLine.arguments.dropFirst(2)), environment: environment))
}

let arguments: SupervisorArguments
do {
    arguments = try SupervisorArguments(parsing: CommandLine.arguments.dropFirst())
} catch {
    fail(error.description, code: SupervisorLoop.ExitCode.usage)
}
if !arguments.commandAfterDashes, let word = arguments.command.first, let command = Commands.meant(word) {
    fail("'\(word)' is not a command: did you mean 'supervisor \(command)'? (a worker program goes after --: "
        + "supervisor [options] -- \(word) ...)", code: SupervisorLoop.ExitCode.usage)
}
if arguments.help {
    print(helpText)
    exit(0)
}
if arguments.version {
    print(BuildInfo.line("supervisor"))
    exit(0)
}

/// The folder of the running executable, where the default `worker` is installed.
func executableDirectory() -> String {
    var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
    let length = readlink("/proc/self/exe", &buffer, buffer.count - 1)
    guard length > 0 else { return "." }
    let path = String(decoding: buffer.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    return String(path[..<(path.lastIndex(of: "/") ?? path.endIndex)])
}

let settings: SupervisorSettings
do {
    settings = try SupervisorSettings(arguments: arguments, environment: environment,
                                      defaultWorkerDirectory: executableDirectory())
} catch {
    fail(error.message, code: error.exitCode)
}

LoggingSystem.bootstrap { label in settings.logFormat.handler(label: label, level: settings.logLevel) }
let logger = Logger(label: "supervisor")
if let fileLimit = ProcessDefaults.raiseFileLimit() { logger.info("\(fileLimit)") }

let inherited: ListenSocket?
do {
    inherited = try ListenSocket.inherited(environment: environment)
} catch {
    fail(error.description, code: SupervisorLoop.ExitCode.configuration)
}

let loop: SupervisorLoop
do {
    loop = try SupervisorLoop(settings: settings, inherited: inherited, logger: logger)
} catch {
    fail("\(error)", code: SupervisorLoop.ExitCode.systemError)
}
exit(loop.run())
