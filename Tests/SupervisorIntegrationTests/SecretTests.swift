import IntegrationSupport
import Foundation
import Testing

/// Issue 15: a defective DATABASE_URL/REDIS_URL printed its password through libpq's message, at every entry point.
/// Each entry point, each defect: a clear error naming the part, a non-zero exit, and no secret in the output.
@Suite("Secrets never print", .serialized)
struct SecretTests {
    static let databaseURLs = [
        "postgresql://user:Hunter2%ZZSecret@127.0.0.1:1/db",
        "postgresql://127.0.0.1:1/db?user=u&password=Hunter2%ZZSecret",
        "postgresql://user:Hunter2@Secret@127.0.0.1:1/db",
        "postgresql://user:Hunter2Secret@[::1:1/db",
        "postgresql://user:Hunter2Secret@127.0.0.1:1x/db",
        "postgresql://user:Hunter2Secret@127.0.0.1:1/db?connect_timeout=2",  // valid, nothing listens: libpq's own message
        // Found by review: a `?` in the password; libpq reads credentials up to the `@`, and its error quotes the URI.
        "postgresql://app:12?x=Hunter2Secret@[::1/postgres",
        "postgresql://app:Hunter2Secret@[::1]x/postgres",
    ]

    static func entryPoints() throws -> [(name: String, command: String)] {
        let worker = try Binaries.path("worker")
        return [
            ("worker", "timeout 20 \(worker)"),
            ("worker migrate", "timeout 20 \(worker) migrate"),
            ("cleanup", "timeout 20 \(try Binaries.path("cleanup"))"),
            ("supervisor budget --check-db", "timeout 20 \(try Binaries.path("supervisor")) budget --check-db"),
        ]
    }

    @Test(arguments: databaseURLs)
    func aDefectiveDatabaseURLNeverPrintsItsPassword(_ url: String) throws {
        for (name, command) in try Self.entryPoints() {
            let (status, output) = runShell(command, environment: ["DATABASE_URL": url, "REDIS_URL": "redis://127.0.0.1:1",
                                                                   "PGCONNECT_TIMEOUT": "2"])
            #expect(status != 0 && status != 124, "\(name) with \(url): exit \(status)\n\(output)")
            #expect(!output.contains("Hunter2") && !output.contains("Secret"), "\(name) printed the password:\n\(output)")
            #expect(output.contains("DATABASE_URL") || output.contains("127.0.0.1"), "\(name): \(output)")
        }
    }

    @Test func aDefectiveRedisURLNeverPrintsItsPassword() throws {
        let worker = try Binaries.path("worker")
        for url in ["redis://:Hunter2%ZZSecret@127.0.0.1:1", "redis://:Hunter2Secret", "redis://u:Hunter2Secret@127.0.0.1:port/0"] {
            let (status, output) = runShell("timeout 20 \(worker)", environment: [
                "DATABASE_URL": "postgresql://127.0.0.1:1/db", "REDIS_URL": url])
            #expect(status == 78, "\(url): exit \(status)\n\(output)")
            #expect(output.contains("REDIS_URL: "), "\(output)")
            #expect(!output.contains("Hunter2") && !output.contains("Secret"), "printed the password:\n\(output)")
        }
    }
}
