import NotesAPI
import FoundationEssentials
import Glibc
import PreforkPostgres
import Schedule
import Settings

/// `worker create-token --user NAME [--ttl DURATION]`: a bearer token for a user (created if new), printed once;
/// only its SHA-256 is stored.
enum CreateToken {
    /// nil when invalid; `.some(nil)` for never.
    static func lifetime(_ text: String) -> Duration?? {
        if text == "never" { return .some(nil) }
        return Schedule.seconds(text).map { .some(.seconds($0)) }
    }

    static func run(_ arguments: [String]) -> Never {
        let flags = toolFlags(arguments, program: .createToken, usage: """
            USAGE: worker create-token --user NAME [--ttl DURATION]

            Create a bearer token for a user (created if new) and print it once; only its SHA-256 is stored.
            """)
        let reader = SettingsReader(flags: flags, environment: [:])
        let user: String
        let ttl: String
        do {
            guard let given = try reader[Catalog.tokenUser] else { failure("--user is required", code: EX_USAGE) }
            user = given
            ttl = try reader[Catalog.tokenTTL]
        } catch {
            failure(error.description, code: EX_USAGE)
        }
        if user.allSatisfy(\.isWhitespace) { failure("--user must not be empty", code: EX_USAGE) }
        guard let lifetime = Self.lifetime(ttl) else {
            failure("--ttl: expected whole seconds of a duration (at most 366d) such as 90d, 12h, 1.5h, 45s, or never; got '\(ttl)'", code: EX_USAGE)
        }
        let postgres = loadPostgres()
        let name = String(user.drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
        runToCompletion {
            let engine = PostgresEngine(postgres)
            do {
                let (token, userID) = try await Migrations.createToken(engine, user: name, ttl: lifetime)
                print(token)
                let expiry = lifetime.map { "expires in \($0.components.seconds) s" } ?? "never expires"
                operatorNote("token for user '\(name)' (id \(userID)), \(expiry); it is shown only this once")
                await engine.dispose()
                return 0
            } catch {
                await engine.dispose()
                failure("create-token failed: \(error)", code: 1)
            }
        }
    }
}

/// A note for the operator on stderr, so stdout carries only the token.
func operatorNote(_ message: String) {
    var line = "worker: \(message)\n"
    line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}
