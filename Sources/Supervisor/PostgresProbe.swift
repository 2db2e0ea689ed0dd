import ConnectionURL
import Glibc

/// `supervisor budget --check-db`: one connection to `DATABASE_URL`, two numbers, closed at once.
///
/// libpq is loaded with dlopen only here, not linked: the supervisor runs for weeks beside its workers, and
/// linking libpq (with the TLS and Kerberos libraries it pulls in) would cost every supervisor resident
/// memory for a command an operator runs now and then.
struct PostgresProbe {
    struct ServerFacts {
        var maxConnections: Int
        var superuserReserved: Int
        /// PostgreSQL 16's `reserved_connections` (for roles with pg_use_reserved_connections); 0 before 16.
        var roleReserved: Int
        /// Client backends connected now, on every database.
        var inUse: Int
        var version: String
    }

    enum ProbeError: Error, CustomStringConvertible {
        case noLibpq(String)
        case failed(String)
        /// DATABASE_URL itself is defective (exit 78, not 69).
        case badURL(String)
        var description: String {
            switch self {
            case .noLibpq(let why): "cannot load libpq (apt install libpq5): \(why)"
            case .failed(let why), .badURL(let why): why
            }
        }
    }

    private typealias Connect = @convention(c) (UnsafePointer<CChar>?) -> OpaquePointer?
    private typealias Status = @convention(c) (OpaquePointer?) -> Int32
    private typealias Message = @convention(c) (OpaquePointer?) -> UnsafeMutablePointer<CChar>?
    private typealias Finish = @convention(c) (OpaquePointer?) -> Void
    private typealias Execute = @convention(c) (OpaquePointer?, UnsafePointer<CChar>?) -> OpaquePointer?
    private typealias ResultStatus = @convention(c) (OpaquePointer?) -> Int32
    private typealias GetValue = @convention(c) (OpaquePointer?, Int32, Int32) -> UnsafeMutablePointer<CChar>?
    private typealias Count = @convention(c) (OpaquePointer?) -> Int32

    static let query = """
        SELECT current_setting('max_connections'), current_setting('superuser_reserved_connections'),
               coalesce(current_setting('reserved_connections', true), '0'),
               (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')::text,
               current_setting('server_version')
        """

    static func facts(url: String) -> Result<ServerFacts, ProbeError> {
        guard let library = dlopen("libpq.so.5", RTLD_NOW | RTLD_LOCAL) else {
            return .failure(.noLibpq(dlerror().map { String(cString: $0) } ?? "dlopen failed"))
        }
        defer { dlclose(library) }
        func symbol<T>(_ name: String, as type: T.Type) -> T? {
            dlsym(library, name).map { unsafeBitCast($0, to: type) }
        }
        guard let connect = symbol("PQconnectdb", as: Connect.self), let status = symbol("PQstatus", as: Status.self),
            let message = symbol("PQerrorMessage", as: Message.self), let finish = symbol("PQfinish", as: Finish.self),
            let execute = symbol("PQexec", as: Execute.self), let resultStatus = symbol("PQresultStatus", as: ResultStatus.self),
            let value = symbol("PQgetvalue", as: GetValue.self), let rows = symbol("PQntuples", as: Count.self),
            let clear = symbol("PQclear", as: Finish.self)
        else { return .failure(.noLibpq("a libpq function is missing")) }

        // libpq quotes a defective URL's tokens, password included: refuse it first, naming the part only.
        do { _ = try PostgresURLSyntax(url) } catch { return .failure(.badURL(error.description)) }
        // A server that does not answer must not hang the command.
        if getenv("PGCONNECT_TIMEOUT") == nil { setenv("PGCONNECT_TIMEOUT", "5", 1) }
        let connection = connect(url)
        defer { finish(connection) }
        func lastError() -> String {
            let text = message(connection).map { String(cString: $0) }?.split(separator: "\n").first.map(String.init)
            return PostgresURLSyntax.redact(text ?? "unknown error", url: url)
        }
        guard status(connection) == 0 else { return .failure(.failed("cannot connect to DATABASE_URL: \(lastError())")) }
        guard let result = execute(connection, query) else { return .failure(.failed(lastError())) }
        defer { clear(result) }
        // PGRES_TUPLES_OK is 2.
        guard resultStatus(result) == 2, rows(result) == 1 else { return .failure(.failed("query failed: \(lastError())")) }
        func field(_ column: Int32) -> String { value(result, 0, column).map { String(cString: $0) } ?? "" }
        guard let max = Int(field(0)), let superuser = Int(field(1)), let role = Int(field(2)), let inUse = Int(field(3)) else {
            return .failure(.failed("unexpected answer from the server"))
        }
        return .success(ServerFacts(maxConnections: max, superuserReserved: superuser, roleReserved: role, inUse: inUse,
                                    version: field(4)))
    }
}
