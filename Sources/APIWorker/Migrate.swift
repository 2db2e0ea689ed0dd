import NotesAPI
import PreforkPostgres

/// `worker migrate`: the missing schema migrations, idempotent and safe to run from several places at once.
enum Migrate {
    static func run(_ arguments: [String]) -> Never {
        _ = toolFlags(arguments, program: .migrate,
                      usage: "USAGE: worker migrate\n\nApply the schema migrations that are missing (idempotent; safe to run from several places at once).")
        let postgres = loadPostgres()
        runToCompletion {
            let engine = PostgresEngine(postgres)
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
