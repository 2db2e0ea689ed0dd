import FoundationEssentials
import PreforkPostgres
import PreforkWorker
import PreforkRedis
import Synchronization

/// Counts visits per page: Postgres keeps the counts, Redis caches them. Under the supervisor it serves fd 3,
/// says READY=1 once both pools answered, beats from its serving thread, and on SIGTERM finishes its requests
/// and disposes both pools. Routes: POST /visits/{page} counts one, GET /visits/{page} reads, GET /readyz.
final class VisitCounter: WorkerApplication {
    let postgres: PostgresEngine
    let redis: RedisClient

    init(environment: [String: String]) throws {
        // DATABASE_URL, DB_POOL_SIZE (the supervisor sizes it with DB_POOL_SIZE=auto), REDIS_URL, REDIS_POOL_SIZE...
        postgres = PostgresEngine(try PostgresConfiguration.fromEnvironment(environment, applicationName: "visit-counter"))
        redis = RedisClient(try RedisConfiguration.fromEnvironment(environment))
    }

    func boot() async throws -> String? {
        // Several workers boot at once: one creates the table, under a transaction-scoped lock.
        try await postgres.transaction { session in
            _ = try await session.query("SELECT pg_advisory_xact_lock(20261129)")
            _ = try await session.query("CREATE TABLE IF NOT EXISTS visits (page text PRIMARY KEY, count bigint NOT NULL)")
        }
        _ = try await redis.command("PING")
        return nil
    }


    func dispose() async {
        await postgres.dispose(timeout: .seconds(1))
        await redis.close(timeout: .seconds(1))
    }

    func immediateResponse(to request: Request) -> Response? {
        guard request.method == .GET || request.method == .HEAD || request.method == .POST else {
            return .error(.methodNotAllowed, "method_not_allowed", "GET, HEAD or POST", headers: [("allow", "GET, HEAD, POST")])
        }
        return request.path == "/healthz" ? .json(.ok, #"{"status":"ok"}"#) : nil
    }

    func response(to request: Request) async -> Response {
        do {
            if request.path == "/readyz" {
                guard !Worker.isDraining else { return .json(.serviceUnavailable, #"{"status":"draining"}"#) }
                _ = try await postgres.query("SELECT 1")
                return .json(.ok, #"{"status":"ready"}"#)
            }
            let page = String(request.path.dropFirst("/visits/".count))
            guard request.path.hasPrefix("/visits/"), (1...100).contains(page.utf8.count),
                  page.utf8.allSatisfy({ $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || ($0 | 0x20) >= 0x61 && ($0 | 0x20) <= 0x7a
                      || $0 >= 0x30 && $0 <= 0x39 }) else {
                return .error(.notFound, "not_found", "try /visits/{page}, page of letters, digits, - and _")
            }
            switch request.method {
            case .POST:
                let row = try await postgres.query(
                    "INSERT INTO visits VALUES ($1, 1) ON CONFLICT (page) DO UPDATE SET count = visits.count + 1 RETURNING count",
                    [page]).rows[0]
                let count = row["count"].int ?? 0
                _ = try? await redis.command("SET", "visits:\(page)", String(count), "EX", "60")
                return .json(.ok, #"{"page":"\#(page)","count":\#(count)}"#)
            case .GET, .HEAD:
                if let cached = try? await redis.command("GET", "visits:\(page)"), let count = cached.string {
                    return .json(.ok, #"{"page":"\#(page)","count":\#(count),"cached":true}"#)
                }
                let rows = try await postgres.query("SELECT count FROM visits WHERE page = $1", [page]).rows
                return .json(.ok, #"{"page":"\#(page)","count":\#(rows.first?["count"].int ?? 0),"cached":false}"#)
            default:
                return .error(.methodNotAllowed, "method_not_allowed", "GET, HEAD or POST", headers: [("allow", "GET, HEAD, POST")])
            }
        } catch {
            return .error(.serviceUnavailable, "unavailable", "the database is unavailable", headers: [("retry-after", "1")])
        }
    }
}

Worker.run(name: "visit-counter") { _ in try VisitCounter(environment: ProcessInfo.processInfo.environment) }
