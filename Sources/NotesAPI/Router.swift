import NIOHTTP1

/// The API's routes. Matching is by path first, then method, so a known path with the wrong method is 405
/// (with `Allow`), and an unknown path is 404.
public enum Route: Sendable, Equatable {
    case healthz
    case readyz
    case metrics
    case listNotes
    case createNote
    case getNote(Substring)
    case updateNote(Substring)
    case deleteNote(Substring)
    case notFound
    case methodNotAllowed(allow: String)

    public init(method: HTTPMethod, path: Substring) {
        var path = path
        if path.count > 1, path.hasSuffix("/") { path = path.dropLast() }
        switch path {
        case "/healthz": self = method == .GET || method == .HEAD ? .healthz : .methodNotAllowed(allow: "GET, HEAD")
        case "/readyz": self = method == .GET || method == .HEAD ? .readyz : .methodNotAllowed(allow: "GET, HEAD")
        case "/metrics": self = method == .GET ? .metrics : .methodNotAllowed(allow: "GET")
        case "/v1/notes":
            switch method {
            case .GET: self = .listNotes
            case .POST: self = .createNote
            default: self = .methodNotAllowed(allow: "GET, POST")
            }
        default:
            let prefix = "/v1/notes/"
            guard path.hasPrefix(prefix) else { self = .notFound; return }
            let id = path.dropFirst(prefix.count)
            guard !id.isEmpty, !id.contains("/") else { self = .notFound; return }
            switch method {
            case .GET: self = .getNote(id)
            case .PATCH: self = .updateNote(id)
            case .DELETE: self = .deleteNote(id)
            default: self = .methodNotAllowed(allow: "GET, PATCH, DELETE")
            }
        }
    }

    /// The route's name in metrics and logs: a template, so ids do not explode the label set.
    public var label: String {
        switch self {
        case .healthz: "/healthz"
        case .readyz: "/readyz"
        case .metrics: "/metrics"
        case .listNotes, .createNote: "/v1/notes"
        case .getNote, .updateNote, .deleteNote: "/v1/notes/{id}"
        case .notFound: "unmatched"
        case .methodNotAllowed: "method_not_allowed"
        }
    }
}
