import PreforkPostgres

/// The schema, as numbered migrations. Each one's statements run in one transaction with the bookkeeping,
/// so a migration is applied entirely or not at all.
public struct Migration: Sendable {
    public var version: Int
    public var name: String
    public var statements: [String]
}

public enum Migrations {
    public static let all: [Migration] = [
        Migration(version: 1, name: "users, tokens and notes", statements: [
            """
            CREATE TABLE users (
                id bigserial PRIMARY KEY,
                name text NOT NULL UNIQUE,
                created_at timestamptz NOT NULL DEFAULT now()
            )
            """,
            """
            CREATE TABLE api_tokens (
                id bigserial PRIMARY KEY,
                user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
                token_hash text NOT NULL UNIQUE,
                created_at timestamptz NOT NULL DEFAULT now(),
                expires_at timestamptz
            )
            """,
            "CREATE INDEX api_tokens_expires_at ON api_tokens (expires_at) WHERE expires_at IS NOT NULL",
            """
            CREATE TABLE notes (
                id bigserial PRIMARY KEY,
                user_id bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
                title text NOT NULL,
                body text NOT NULL DEFAULT '',
                created_at timestamptz NOT NULL DEFAULT now(),
                updated_at timestamptz NOT NULL DEFAULT now(),
                deleted_at timestamptz
            )
            """,
            "CREATE INDEX notes_user_id_id ON notes (user_id, id) WHERE deleted_at IS NULL",
            "CREATE INDEX notes_deleted_at ON notes (deleted_at) WHERE deleted_at IS NOT NULL",
        ]),
        Migration(version: 2, name: "job runs", statements: [
            """
            CREATE TABLE job_runs (
                id bigserial PRIMARY KEY,
                job text NOT NULL,
                started_at timestamptz NOT NULL DEFAULT now(),
                finished_at timestamptz,
                outcome text NOT NULL DEFAULT 'running'
                    CHECK (outcome IN ('running', 'succeeded', 'failed', 'interrupted')),
                notes_deleted bigint NOT NULL DEFAULT 0,
                tokens_deleted bigint NOT NULL DEFAULT 0,
                error text
            )
            """,
            "CREATE INDEX job_runs_succeeded ON job_runs (job, finished_at DESC) WHERE outcome = 'succeeded'",
        ]),
    ]

    /// The key of the advisory lock that serialises migrations across workers, replicas and deploys.
    static let lockKey: Int64 = 0x6e6f_7465_736d_6967  // "notesmig"

    /// Applies what is missing, in order, and returns the versions applied (empty when up to date).
    ///
    /// Everything runs in one transaction holding a transaction-level advisory lock: two `migrate` runs at
    /// once apply each migration once (the second waits, then finds nothing to do), a failure leaves the
    /// schema as it was, and nothing depends on session state, so it also works behind PgBouncer in
    /// transaction mode.
    public static func apply(_ engine: PostgresEngine, migrations: [Migration] = all) async throws -> [Int] {
        try await engine.transaction { session in
            _ = try await session.query("SELECT pg_advisory_xact_lock($1)", [lockKey])
            _ = try await session.query("""
                CREATE TABLE IF NOT EXISTS schema_migrations (
                    version integer PRIMARY KEY,
                    name text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now()
                )
                """)
            let applied = Set(try await session.query("SELECT version FROM schema_migrations").rows.compactMap { $0["version"].int })
            var done: [Int] = []
            for migration in migrations.sorted(by: { $0.version < $1.version }) where !applied.contains(Int64(migration.version)) {
                for statement in migration.statements {
                    _ = try await session.query(statement)
                }
                _ = try await session.query("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                                            [migration.version, migration.name])
                done.append(migration.version)
            }
            return done
        }
    }

    /// Creates the user if needed and a token for it; returns the token (shown once, only its hash is kept).
    /// - Parameter ttl: nil for a token that never expires.
    public static func createToken(_ engine: PostgresEngine, user: String, ttl: Duration?) async throws -> (token: String, userID: Int64) {
        let token = Token.generate()
        let userID: Int64 = try await engine.transaction { session in
            let row = try await session.query("""
                INSERT INTO users (name) VALUES ($1) ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING id
                """, [user]).rows[0]
            let id = row["id"].int ?? 0
            _ = try await session.query("""
                INSERT INTO api_tokens (user_id, token_hash, expires_at)
                VALUES ($1, $2, CASE WHEN $3::bigint IS NULL THEN NULL ELSE now() + make_interval(secs => $3::bigint) END)
                """, [id, Token.hash(token), ttl.map { $0.components.seconds }])
            return id
        }
        return (token, userID)
    }
}
