import LogFormat
import PreforkPostgres

/// The notes table, for one user at a time: every statement is scoped by `user_id`, and soft-deleted notes
/// are invisible. Notes are rendered to JSON straight from the row (timestamps formatted by Postgres).
struct NoteStore: Sendable {
    let engine: PostgresEngine

    private static let columns = """
        id, title, body, \
        to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS created_at, \
        to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS updated_at
        """

    func create(user: Int64, title: String, body: String) async throws -> String {
        let result = try await engine.query(
            "INSERT INTO notes (user_id, title, body) VALUES ($1, $2, $3) RETURNING \(Self.columns)", [user, title, body])
        return Self.json(result.rows[0])
    }

    func get(user: Int64, id: Int64) async throws -> String? {
        let result = try await engine.query(
            "SELECT \(Self.columns) FROM notes WHERE id = $1 AND user_id = $2 AND deleted_at IS NULL", [id, user])
        return result.rows.first.map(Self.json)
    }

    /// Newest first; `before` is the cursor (the last id of the previous page). One row more than asked
    /// says whether there is a next page.
    func list(user: Int64, before: Int64?, limit: Int) async throws -> (items: [String], nextCursor: Int64?) {
        let result = try await engine.query("""
            SELECT \(Self.columns) FROM notes
            WHERE user_id = $1 AND deleted_at IS NULL AND ($2::bigint IS NULL OR id < $2)
            ORDER BY id DESC LIMIT $3
            """, [user, before, limit + 1])
        let rows = result.rows.prefix(limit)
        let next = result.rows.count > limit ? rows.last?["id"].int : nil
        return (rows.map(Self.json), next)
    }

    func update(user: Int64, id: Int64, title: String?, body: String?) async throws -> String? {
        let result = try await engine.query("""
            UPDATE notes SET title = coalesce($3, title), body = coalesce($4, body), updated_at = now()
            WHERE id = $1 AND user_id = $2 AND deleted_at IS NULL RETURNING \(Self.columns)
            """, [id, user, title, body])
        return result.rows.first.map(Self.json)
    }

    /// Soft delete: sets `deleted_at`; the nightly cleanup removes the row after the retention period.
    func delete(user: Int64, id: Int64) async throws -> Bool {
        let result = try await engine.query(
            "UPDATE notes SET deleted_at = now() WHERE id = $1 AND user_id = $2 AND deleted_at IS NULL", [id, user])
        return result.affectedRows == 1
    }

    static func json(_ row: PostgresRow) -> String {
        var out = "{\"id\":\(row["id"].int ?? 0),\"title\":\""
        JSONText.appendEscaped(row["title"].string ?? "", to: &out)
        out += "\",\"body\":\""
        JSONText.appendEscaped(row["body"].string ?? "", to: &out)
        out += "\",\"created_at\":\"\(row["created_at"].string ?? "")\",\"updated_at\":\"\(row["updated_at"].string ?? "")\"}"
        return out
    }
}
