import ProcessDefaults
import API
import ArgumentParser
import Dispatch
import Glibc
import LogFormat
import LogOptions
import Logging
import NIOCore
import NIOPosix
import PreforkWorker
import Settings
import WorkerRuntime

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the API (the default). Uses the socket on fd 3 when LISTEN_FDS says so, else --bind or PORT.")

    @Option(name: .long, help: ArgumentHelp("Address to listen on when run alone (default 0.0.0.0:$PORT, PORT=8080).",
                                            valueName: "host:port"))
    var bind: String?

    @OptionGroup var log: LogOptions

    func validate() throws {
        if let bind, Self.parse(bind) == nil {
            throw ValidationError("--bind: expected host:port, :port or port, got '\(bind)'")
        }
    }

    static func parse(_ text: String) -> (host: String, port: Int)? {
        let host: Substring
        let portText: Substring
        if let colon = text.lastIndex(of: ":") {
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        } else {
            host = ""
            portText = Substring(text)
        }
        guard let port = Int(portText), (0...65535).contains(port) else { return nil }
        let name = host.trimmingPrefix("[")
        return (name.isEmpty ? "0.0.0.0" : String(name.hasSuffix("]") ? name.dropLast() : name), port)
    }

    func run() throws {
        let fileLimit = ProcessDefaults.apply()
        let settings = loadSettings()
        let environment = processEnvironment()
        LoggingSystem.bootstrap { label in settings.logFormat.handler(label: label, level: settings.logLevel) }
        var configuration: WorkerConfiguration
        do { configuration = try WorkerConfiguration(environment: environment) } catch { failure("\(error)", code: 78) }
        if case .address = configuration.listen, let bind, let address = Self.parse(bind) {
            configuration.listen = .address(host: address.host, port: address.port)
        }
        var logger = Logger(label: "worker")
        if let slot = configuration.slot { logger[metadataKey: "slot"] = "\(slot)" }
        if let generation = configuration.generation { logger[metadataKey: "generation"] = "\(generation)" }
        if let fileLimit { logger.info("\(fileLimit)") }

        // Swift Concurrency's jobs run on the event loop(s): a request's task resumes on the thread that
        // writes its response, with no hop through a second pool. Blocking libpq and hiredis calls still run
        // on the pools' own threads.
        NIOSingletons.groupLoopCountSuggestion = settings.threads
        NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()

        let application = Application(settings: settings, logger: logger)
        Worker.serve(application, configuration: configuration, logger: logger)
    }
}
