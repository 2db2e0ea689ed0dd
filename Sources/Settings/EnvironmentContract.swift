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
        let size: Int?
        do { size = try reader.countOrAuto(Catalog.poolSize) } catch { return error.description }
        guard let size else {
            return "DB_POOL_SIZE: auto is worked out by the supervisor from the connection budget; set a number to run the \(program) alone"
        }
        let overflow = (try? reader.count(Catalog.maxOverflow)) ?? 10
        guard size + overflow >= 1 else { return "DB_POOL_SIZE + DB_MAX_OVERFLOW: must be at least 1, got 0" }
        let pgbouncer = (try? reader.isOn(Catalog.pgbouncer)) ?? false
        if pgbouncer, reader.isGiven(Catalog.statementTimeout) {
            return "DB_STATEMENT_TIMEOUT: PgBouncer refuses it as a startup option (DB_PGBOUNCER=1); set it on the role "
                + "instead: ALTER ROLE ... SET statement_timeout"
        }
        if program == .cleanup, pgbouncer, size + overflow < 2 {
            return "DB_POOL_SIZE + DB_MAX_OVERFLOW: behind PgBouncer (DB_PGBOUNCER=1) the cleanup needs 2 connections, "
                + "one to hold its lock's transaction; got \(size + overflow)"
        }
        if program == .worker, reader.isGiven(Catalog.bodyBufferLimit) {
            let body = (try? reader.size(Catalog.maxBodySize)) ?? (1 << 20)
            let buffer = (try? reader.size(Catalog.bodyBufferLimit)) ?? 0
            if buffer < body { return "BODY_BUFFER_LIMIT: must be at least MAX_BODY_SIZE (\(body)), got \(buffer)" }
        }
        return nil
    }
}
