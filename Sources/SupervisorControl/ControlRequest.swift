import Settings
/// The control socket's requests, written and read by one type: `supervisor status`, `scale`, `reload`, `stop` and
/// the healthcheck write them, the supervisor parses them. One line each; exactly the words each takes.
package enum ControlRequest: Sendable, Equatable {
    case ping
    case status(json: Bool)
    case scale(workers: Int)
    case reload
    /// What `supervisor reload` polls until its rolling restart has an outcome.
    case lastReload
    case stop

    /// The line sent.
    package var line: String {
        switch self {
        case .ping: "ping"
        case .status(let json): json ? "status json" : "status"
        case .scale(let workers): "scale \(workers)"
        case .reload: "reload"
        case .lastReload: "last-reload"
        case .stop: "stop"
        }
    }

    /// The request a line asks for, or the usage error to answer with.
    package static func parse(_ line: String) -> Result<ControlRequest, UsageError> {
        let words = line.split(separator: " ")
        let simple: [Substring: ControlRequest] = ["ping": .ping, "reload": .reload, "last-reload": .lastReload, "stop": .stop]
        guard let first = words.first else { return .failure(.unknown(line)) }
        if let request = simple[first] {
            return words.count == 1 ? .success(request) : .failure(UsageError(message: "usage: \(first) takes no arguments"))
        }
        switch first {
        case "status":
            if words.count == 1 { return .success(.status(json: false)) }
            if words.count == 2, words[1] == "json" { return .success(.status(json: true)) }
            return .failure(UsageError(message: "usage: status [json]"))
        case "scale":
            guard words.count == 2, let workers = ValueSyntax.count(String(words[1]), range: Int.min...Int.max) else { return .failure(UsageError(message: "usage: scale N")) }
            return .success(.scale(workers: workers))
        default:
            return .failure(.unknown(line))
        }
    }

    package struct UsageError: Error, Equatable {
        package var message: String

        static func unknown(_ line: String) -> UsageError {
            UsageError(message: "unknown command '\(line.prefix(40))' (status [json], scale N, reload, last-reload, stop)")
        }
    }
}
