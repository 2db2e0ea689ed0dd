import API
import ArgumentParser
import FoundationEssentials
import Glibc
import Postgres
import Schedule

struct CreateToken: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create-token",
        abstract: "Create a bearer token for a user (created if new) and print it once; only its SHA-256 is stored.")

    @Option(help: "The user's name.")
    var user: String

    @Option(help: ArgumentHelp("Lifetime: 90d, 12h, 30m, 45s, or never.", valueName: "duration"))
    var ttl: String = "30d"

    func validate() throws {
        if user.allSatisfy(\.isWhitespace) { throw ValidationError("--user must not be empty") }
        if Self.lifetime(ttl) == nil { throw ValidationError("--ttl: expected whole seconds of a duration (at most a year) such as 90d, 12h, 1.5h, 45s, or never; got '\(ttl)'") }
    }

    /// nil when invalid; `.some(nil)` for never.
    static func lifetime(_ text: String) -> Duration?? {
        if text == "never" { return .some(nil) }
        return Schedule.seconds(text).map { .some(.seconds($0)) }
    }

    func run() throws {
        let settings = loadSettings()
        let name = String(user.drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
        let lifetime = Self.lifetime(ttl)!
        runToCompletion {
            let engine = PostgresEngine(settings.postgres)
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
