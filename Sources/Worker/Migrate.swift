import API
import ArgumentParser
import FoundationEssentials
import Glibc
import Postgres

struct Migrate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply the schema migrations that are missing (idempotent; safe to run from several places at once).")

    func run() throws {
        let settings = loadSettings()
        runToCompletion {
            let engine = PostgresEngine(settings.postgres)
            do {
                let applied = try await Migrations.apply(engine)
                print(applied.isEmpty ? "schema up to date (version \(Migrations.all.last?.version ?? 0))"
                                      : "applied migrations \(applied.map(String.init).joined(separator: ", "))")
                await engine.dispose()
                return 0
            } catch {
                await engine.dispose()
                failure("migrate failed: \(error)", code: 1)
            }
        }
    }
}
