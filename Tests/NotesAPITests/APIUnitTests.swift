import Foundation
import LogFormat
import NIOCore
import NIOHTTP1
import Testing
@testable import NotesAPI
import PreforkWorker

@Suite("Routes")
struct RouteTests {
    @Test func pathsThenMethods() {
        #expect(Route(method: .GET, path: "/healthz") == .healthz)
        #expect(Route(method: .HEAD, path: "/healthz") == .healthz)
        #expect(Route(method: .GET, path: "/readyz") == .readyz)
        #expect(Route(method: .GET, path: "/metrics") == .metrics)
        #expect(Route(method: .GET, path: "/v1/notes") == .listNotes)
        #expect(Route(method: .GET, path: "/v1/notes/") == .listNotes)
        #expect(Route(method: .POST, path: "/v1/notes") == .createNote)
        #expect(Route(method: .GET, path: "/v1/notes/42") == .getNote("42"))
        #expect(Route(method: .PATCH, path: "/v1/notes/42") == .updateNote("42"))
        #expect(Route(method: .DELETE, path: "/v1/notes/42") == .deleteNote("42"))
        #expect(Route(method: .PUT, path: "/v1/notes/42") == .methodNotAllowed(allow: "GET, PATCH, DELETE"))
        #expect(Route(method: .DELETE, path: "/v1/notes") == .methodNotAllowed(allow: "GET, POST"))
        #expect(Route(method: .POST, path: "/healthz") == .methodNotAllowed(allow: "GET, HEAD"))
        #expect(Route(method: .GET, path: "/v1/notes/1/2") == .notFound)
        #expect(Route(method: .GET, path: "/") == .notFound)
        #expect(Route(method: .GET, path: "/v2/notes") == .notFound)
    }

    /// The byte-wise matcher against the Character-wise one it replaced, over paths built from route fragments,
    /// slashes, and non-ASCII text (where the two kinds of comparison could differ).
    @Test func sameRoutesAsTheCharacterWiseMatcher() {
        func reference(_ method: HTTPMethod, _ path: Substring) -> Route {
            var path = path
            if path.count > 1, path.hasSuffix("/") { path = path.dropLast() }
            switch path {
            case "/healthz": return method == .GET || method == .HEAD ? .healthz : .methodNotAllowed(allow: "GET, HEAD")
            case "/readyz": return method == .GET || method == .HEAD ? .readyz : .methodNotAllowed(allow: "GET, HEAD")
            case "/metrics": return method == .GET ? .metrics : .methodNotAllowed(allow: "GET")
            case "/v1/notes":
                switch method {
                case .GET: return .listNotes
                case .POST: return .createNote
                default: return .methodNotAllowed(allow: "GET, POST")
                }
            default:
                guard path.hasPrefix("/v1/notes/") else { return .notFound }
                let id = path.dropFirst("/v1/notes/".count)
                guard !id.isEmpty, !id.contains("/") else { return .notFound }
                switch method {
                case .GET: return .getNote(id)
                case .PATCH: return .updateNote(id)
                case .DELETE: return .deleteNote(id)
                default: return .methodNotAllowed(allow: "GET, PATCH, DELETE")
                }
            }
        }
        let fragments = ["", "/", "//", "/healthz", "/readyz", "/metrics", "/v1", "/notes", "/v1/notes", "42", "é",
                         "e\u{301}", "%2F", "?", " "]
        var checked = 0
        for first in fragments {
            for second in fragments {
                for third in ["", "/", "7", "/x"] {
                    let path = Substring(first + second + third)
                    for method in [HTTPMethod.GET, .HEAD, .POST, .PATCH, .DELETE, .PUT] {
                        #expect(Route(method: method, path: path) == reference(method, path), "\(method) \(path)")
                        checked += 1
                    }
                }
            }
        }
        #expect(checked == 15 * 15 * 4 * 6)
    }

    @Test func labelsAreTemplates() {
        #expect(Route(method: .GET, path: "/v1/notes/7").label == "/v1/notes/{id}")
        #expect(Route(method: .GET, path: "/v1/notes/8").label == Route(method: .DELETE, path: "/v1/notes/9").label)
    }
}

@Suite("Requests")
struct RequestTests {
    func request(_ uri: String, headers: [(String, String)] = []) -> Request {
        Request(head: HTTPRequestHead(version: .http1_1, method: .GET, uri: uri, headers: HTTPHeaders(headers)), body: nil)
    }

    @Test func queryValues() {
        let parsed = request("/v1/notes?limit=5&cursor=a%20b+c&empty=&flag")
        #expect(parsed.path == "/v1/notes")
        #expect(parsed.queryValue("limit") == "5")
        #expect(parsed.queryValue("cursor") == "a b c")
        #expect(parsed.queryValue("empty") == "")
        #expect(parsed.queryValue("flag") == "")
        #expect(parsed.queryValue("missing") == nil)
    }

    /// RFC 9112, 3.2.2: a server must accept an absolute-form target; it routes by its path.
    @Test func absoluteFormTargetsRouteByTheirPath() {
        let cases: [(String, String, String?)] = [
            ("http://example.com/v1/notes?limit=5", "/v1/notes", "limit=5"),
            ("HTTPS://example.com:8443/healthz", "/healthz", nil),
            ("http://example.com", "/", nil),
            ("http://example.com?x=1", "/", "x=1"),
            ("http://user@example.com/v1/notes/7/", "/v1/notes/7/", nil),
            ("/v1/notes?a=b", "/v1/notes", "a=b"),
            ("*", "*", nil),
            ("http://x#/v1/notes/1", "/#/v1/notes/1", nil),
        ]
        for (target, path, query) in cases {
            let parsed = request(target)
            #expect(parsed.path == path && parsed.query == query.map { Substring($0) }, "\(target)")
        }
        #expect(Route(method: .GET, path: request("http://h/v1/notes/7").path) == .getNote("7"))
        #expect(Route(method: .GET, path: request("http://h#/v1/notes/7").path) == .notFound, "a fragment is not a path")
    }

    @Test func bearerTokens() {
        #expect(request("/", headers: [("Authorization", "Bearer abc")]).bearerToken == "abc")
        #expect(request("/", headers: [("authorization", "bearer   abc ")]).bearerToken == "abc")
        #expect(request("/", headers: [("Authorization", "Basic abc")]).bearerToken == nil)
        #expect(request("/", headers: [("Authorization", "Bearer")]).bearerToken == nil)
        #expect(request("/").bearerToken == nil)
        #expect(request("/", headers: [("Authorization", "BeArEr \t abc\t")]).bearerToken == "abc")
        #expect(request("/", headers: [("Authorization", "Bearer a b")]).bearerToken == "a b")
        #expect(request("/", headers: [("Authorization", "Bearer \t ")]).bearerToken == nil)
        #expect(request("/", headers: [("Authorization", "Bearer\tabc")]).bearerToken == nil)
        #expect(request("/", headers: [("Authorization", "Bearerx abc")]).bearerToken == nil)
        #expect(request("/", headers: [("Authorization", "B\u{e9}arer abc")]).bearerToken == nil)
        #expect(request("/", headers: [("Authorization", "Bearer t\u{f6}ken")]).bearerToken == "t\u{f6}ken")
    }
}

@Suite("Tokens and the rate-limit window")
struct TokenTests {
    @Test func hashIsSHA256Hex() {
        // echo -n abc | sha256sum
        #expect(Token.hash("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    @Test func tokensAreLongRandomAndURLSafe() {
        let tokens = (0..<100).map { _ in Token.generate() }
        #expect(Set(tokens).count == 100)
        for token in tokens {
            #expect(token.hasPrefix("nt_") && token.count == 3 + 43)
            #expect(token.dropFirst(3).allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" })
        }
        #expect(Token.base64URL([0xfb, 0xff]) == "-_8")
    }

    @Test func fixedWindow() {
        let window = RateLimitWindow(now: 1_700_000_042)
        #expect(window.start == 1_700_000_040)
        #expect(window.key(tokenHash: String(repeating: "a", count: 64)) == "rl:\(String(repeating: "a", count: 32)):28333334")
        #expect(window.retryAfter(now: 1_700_000_042) == 58)
        #expect(window.retryAfter(now: 1_700_000_099) == 1)
        #expect(RateLimitWindow(now: 1_700_000_099) == window)
        #expect(RateLimitWindow(now: 1_700_000_100) != window)
        #expect(!RateLimitWindow.exceeds(count: 1000, limit: 1000))
        #expect(RateLimitWindow.exceeds(count: 1001, limit: 1000))
        #expect(!RateLimitWindow.exceeds(count: 1_000_000, limit: 0), "0 turns the limit off")
    }
}

@Suite("Note input validation")
struct NoteInputTests {
    func parse(_ text: String?, creating: Bool = true) -> Result<NoteInput, NoteInput.Failure> {
        NoteInput.parse(text.map { ByteBuffer(string: $0) }, creating: creating)
    }

    @Test func valid() throws {
        #expect(try parse(#"{"title":"  hi  ","body":"b","extra":1}"#).get() == NoteInput(title: "hi", body: "b"))
        #expect(try parse(#"{"body":"only"}"#, creating: false).get() == NoteInput(title: nil, body: "only"))
    }

    @Test func invalid() {
        #expect(parse(nil) == .failure(.invalid(field: "body", message: "expected a JSON object")))
        #expect(parse("{nope") == .failure(.invalidJSON))
        #expect(parse("[1]") == .failure(.invalid(field: "body", message: "expected a JSON object")))
        #expect(parse(#"{"body":"x"}"#) == .failure(.invalid(field: "title", message: "is required")))
        #expect(parse(#"{"title":5}"#) == .failure(.invalid(field: "title", message: "must be a string")))
        #expect(parse(#"{"title":null}"#) == .failure(.invalid(field: "title", message: "must be a string")))
        #expect(parse(#"{"title":"   "}"#) == .failure(.invalid(field: "title", message: "must not be empty")))
        #expect(parse("{\"title\":\"\(String(repeating: "x", count: 201))\"}")
            == .failure(.invalid(field: "title", message: "must be at most 200 Unicode scalars (code points)")))
        #expect(parse(#"{"title":"t","body":[]}"#) == .failure(.invalid(field: "body", message: "must be a string")))
        #expect(parse("{}", creating: false) == .failure(.invalid(field: "title", message: "nothing to update: give title or body")))
    }

    /// Issue 15: a NUL was cut by libpq (an empty title passed "must not be empty"); a grapheme cluster has no
    /// size bound, so limits count scalars.
    @Test func nulIsRefusedAndLimitsCountScalars() throws {
        let nul = "must not contain the NUL character (\\u0000): Postgres text cannot store it"
        #expect(parse(#"{"title":"\u0000hidden"}"#) == .failure(.invalid(field: "title", message: nul)))
        #expect(parse(#"{"title":"t","body":"x\u0000"}"#) == .failure(.invalid(field: "body", message: nul)))
        #expect(parse(#"{"title":"\u0000"}"#, creating: false) == .failure(.invalid(field: "title", message: nul)))
        let oneCharacter = "a" + String(repeating: "\u{0301}", count: 200)
        #expect(oneCharacter.count == 1)
        #expect(parse("{\"title\":\"\(oneCharacter)\"}")
            == .failure(.invalid(field: "title", message: "must be at most 200 Unicode scalars (code points)")))
        #expect(try parse("{\"title\":\"\(String(repeating: "😀", count: 200))\"}").get().title?.utf8.count == 800)
    }
}

@Suite("Worker settings")
struct SettingsTests {
    let base = ["DATABASE_URL": "postgresql://u@h/db", "REDIS_URL": "redis://h:6379/0"]

    @Test func defaults() throws {
        let settings = try APISettings.fromEnvironment(base)
        #expect(settings.rateLimitPerMinute == 1000 && settings.authCacheTTL == 60)
        #expect(settings.postgres.pool.size == 10 && settings.postgres.pool.maxOverflow == 10)
        #expect(settings.redis.pool.size == 5)
        #expect(!settings.accessLog)
    }

    @Test(arguments: [
        ("DATABASE_URL", ""), ("REDIS_URL", ""), ("REDIS_URL", "http://x"), ("RATE_LIMIT_PER_MINUTE", "-1"),
        ("AUTH_CACHE_TTL", "0"), ("MAX_BODY_SIZE", "big"), ("HEADER_TIMEOUT", "0"), ("GRACEFUL_TIMEOUT", "x"),
        ("WORKER_THREADS", "0"), ("LOG_FORMAT", "xml"), ("LOG_LEVEL", "loud"), ("ACCESS_LOG", "maybe"),
        ("DB_POOL_SIZE", "-3"), ("REDIS_POOL_SIZE", "0"),
    ])
    func invalidValuesNameTheirVariable(_ name: String, _ value: String) {
        var environment = base
        environment[name] = value
        do {
            _ = try APISettings.fromEnvironment(environment)
            Issue.record("\(name)=\(value) was accepted")
        } catch {
            #expect(error.description.hasPrefix(name), "\(error.description)")
            #expect(!error.description.contains("\n"))
        }
    }
}

@Suite("JSON text")
struct JSONTextTests {
    @Test func escaping() {
        #expect(JSONText.quoted("plain") == "\"plain\"")
        #expect(JSONText.quoted("a\"b\\c\nd\te\u{01}") == #""a\"b\\c\nd\te\u0001""#)
        #expect(JSONText.quoted("ünïcødé ✓") == "\"ünïcødé ✓\"")
    }

    /// Foundation's JSON parser, an independent reference, reads back every string we quote: all control
    /// characters, quotes, backslashes, and non-ASCII text, in random mixtures.
    @Test func foundationReadsBackWhatWeQuote() throws {
        let alphabet: [Character] = (0..<0x20).map { Character(Unicode.Scalar(UInt8($0))) }
            + ["\"", "\\", "/", "a", "Z", " ", "é", "✓", "😀", "\u{7f}", "\u{2028}"]
        var generator = SystemRandomNumberGenerator()
        for length in [0, 1, 2, 15, 16, 200] {
            for _ in 0..<50 {
                let text = String((0..<length).map { _ in alphabet.randomElement(using: &generator)! })
                let decoded = try JSONDecoder().decode(String.self, from: Data(JSONText.quoted(text).utf8))
                #expect(decoded == text, "\(Array(text.unicodeScalars))")
            }
        }
    }
}
