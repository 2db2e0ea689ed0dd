import TimeUnits
/// What a program refuses in its environment: every declared variable it reads, checked against its kind,
/// and the rules between variables. The worker and the cleanup check themselves with it at start; the
/// supervisor checks its workers' environment with it before the first spawn, so a value the worker would
/// refuse stops the supervisor at once (exit 78, one line) instead of five failed boots and exit 3.
public enum EnvironmentContract {
    /// The first problem, one line naming the variable; nil if the program would start.
    public static func problem(of program: Program, in environment: [String: String]) -> String? {
        let reader = SettingsReader(environment: environment)
        for setting in Catalog.read(by: program) {
            guard let found = reader.found(setting) else { continue }
            if let problem = setting.kind.problem(found.text, name: found.source) { return problem }
        }
        return rules(of: program, reader)
    }

    static func rules(of program: Program, _ reader: SettingsReader) -> String? {
        guard program == .worker || program == .cleanup else { return nil }
        if !reader.isGiven(Catalog.databaseURL) { return "DATABASE_URL is not set" }
        if program == .worker, !reader.isGiven(Catalog.redisURL) { return "REDIS_URL is not set" }
        do throws(SettingError) {
            if let problem = try poolProblem(of: program, reader) { return problem }
            if program == .worker { _ = try bodyBufferLimit(reader) }
        } catch {
            return error.description
        }
        return nil
    }

    /// `BODY_BUFFER_LIMIT` as the worker uses it: as given, which must hold one body of `MAX_BODY_SIZE` at least,
    /// or, unset, `bodyBufferLimit(maxBodySize:)`. The one place of that rule, for the worker and the supervisor's
    /// check of it.
    public static func bodyBufferLimit(_ reader: SettingsReader) throws(SettingError) -> Int {
        let body = try reader[Catalog.maxBodySize]
        guard let given = try reader[Catalog.bodyBufferLimit] else { return bodyBufferLimit(maxBodySize: body) }
        guard given >= body else {
            throw SettingError("BODY_BUFFER_LIMIT: must be at least MAX_BODY_SIZE (\(body)), got \(given)")
        }
        return given
    }

    /// `BODY_BUFFER_LIMIT` when unset, as its declaration says: 32 MiB, or four of the largest bodies if more.
    public static func bodyBufferLimit(maxBodySize: Int) -> Int { max(32 << 20, 4 * maxBodySize) }

    /// The rules between the pool variables, shared with the Postgres engine's own reading of them.
    public static func poolProblem(of program: Program?, _ reader: SettingsReader) throws(SettingError) -> String? {
        guard let size = try reader[Catalog.poolSize].count else {
            return "DB_POOL_SIZE: auto is worked out by the supervisor from the connection budget; set a number to run \(program.map { "the \($0) " } ?? "")alone"
        }
        let overflow = try reader[Catalog.maxOverflow]
        guard size + overflow >= 1 else { return "DB_POOL_SIZE + DB_MAX_OVERFLOW: must be at least 1, got 0" }
        let pgbouncer = try reader[Catalog.pgbouncer]
        if pgbouncer, reader.isGiven(Catalog.statementTimeout) {
            return "DB_STATEMENT_TIMEOUT: PgBouncer refuses it as a startup option (DB_PGBOUNCER=1); set it on the role "
                + "instead: ALTER ROLE ... SET statement_timeout"
        }
        if program == .cleanup, pgbouncer, size + overflow < 2 {
            return "DB_POOL_SIZE + DB_MAX_OVERFLOW: behind PgBouncer (DB_PGBOUNCER=1) the cleanup needs 2 connections, "
                + "one to hold its lock's transaction; got \(size + overflow)"
        }
        return nil
    }
}
