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

    /// Compares bytes, not Characters: a path is ASCII on the wire, and `Substring ==` would normalize Unicode
    /// for every route tried (3% of a request's CPU).
    public init(method: HTTPMethod, path: Substring) {
        var path = path.utf8
        if path.count > 1, path.last == UInt8(ascii: "/") { path = path.dropLast() }
        if path.elementsEqual("/healthz".utf8) {
            self = method == .GET || method == .HEAD ? .healthz : .methodNotAllowed(allow: "GET, HEAD")
        } else if path.elementsEqual("/readyz".utf8) {
            self = method == .GET || method == .HEAD ? .readyz : .methodNotAllowed(allow: "GET, HEAD")
        } else if path.elementsEqual("/metrics".utf8) {
            self = method == .GET ? .metrics : .methodNotAllowed(allow: "GET")
        } else if path.elementsEqual("/v1/notes".utf8) {
            switch method {
            case .GET: self = .listNotes
            case .POST: self = .createNote
            default: self = .methodNotAllowed(allow: "GET, POST")
            }
        } else {
            let prefix = "/v1/notes/".utf8
            guard path.starts(with: prefix) else { self = .notFound; return }
            let id = path.dropFirst(prefix.count)
            guard !id.isEmpty, !id.contains(UInt8(ascii: "/")) else { self = .notFound; return }
            switch method {
            case .GET: self = .getNote(Substring(id))
            case .PATCH: self = .updateNote(Substring(id))
            case .DELETE: self = .deleteNote(Substring(id))
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
