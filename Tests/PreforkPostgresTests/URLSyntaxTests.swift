import ConnectionURL
import Testing

/// Issue 15: libpq quoted a defective URL's password back (`invalid percent-encoded token: "Hunter2%ZZSecret"`).
/// The URL is now read first, and each defect is named without its value.
@Suite("DATABASE_URL syntax")
struct URLSyntaxTests {
    @Test(arguments: [
        ("postgresql://user:Hunter2%ZZSecret@db/app", "the password has invalid percent-encoding"),
        ("postgresql://user:Hunter2%2Secret@db/app", "the password has invalid percent-encoding"),
        ("postgresql://user:Hunter2Secret%@db/app", "the password has invalid percent-encoding"),
        ("postgresql://user:Hunter2%00Secret@db/app", "the password has invalid percent-encoding"),
        ("postgres://db/app?user=u&password=Hunter2%ZZSecret", "the value of query parameter 'password' has invalid percent-encoding"),
        ("postgres://db/app?sslpassword=Hunter2%ZZSecret", "the value of query parameter 'sslpassword' has invalid percent-encoding"),
        ("postgresql://user:Hunter2@Secret@db/app", "the user or password contains a raw '@'"),
        ("postgresql://user:Hunter2Secret@[::1/app", "the host has '[' without a matching ']'"),
        ("postgresql://user:Hunter2Secret@db:5432x/app", "the port of the host is not a number"),
        ("postgresql://user:Hunter2Secret@a:1,b:99999/app", "the port of host 2 is not a number"),
        ("postgres://db/app?password", "a query parameter is not key=value"),
        ("postgres://db/app?password=Hunter2=Secret", "contains a raw '='"),
        ("mysql://user:Hunter2Secret@db/app", "must start with postgres:// or postgresql://"),
        ("postgresql://us%ZZer:Hunter2Secret@db/app", "the user name has invalid percent-encoding"),
        ("postgresql://user:Hunter2Secret@db/ap%p", "the database name has invalid percent-encoding"),
        ("postgresql://app:12?x=Hunter2Secret@[::1/postgres", "the host has '[' without a matching ']'"),
        ("postgresql://u:pa/ssHunter2Secret@db/app", "a '/' in the password must be written %2F"),
    ])
    func defectsAreNamedWithoutTheirValue(_ url: String, _ message: String) {
        do {
            _ = try PostgresURLSyntax(url)
            Issue.record("\(url) was accepted")
        } catch {
            #expect(error.description.contains(message), "\(error.description)")
            #expect(!error.description.contains("Hunter2") && !error.description.contains("Secret"), "\(error.description)")
        }
    }

    @Test(arguments: [
        "postgresql://user:p%25ss%40word@db:5432/app?sslmode=require&application_name=api",
        "postgres://db/app", "postgresql://", "postgresql:///app?host=/run/postgresql",
        "postgresql://u:p@[::1]:5432,db2:6432/app", "postgresql://u@db", "postgresql://db?password=Hunter2Secret",
    ])
    func validURLsPass(_ url: String) throws {
        _ = try PostgresURLSyntax(url)
    }

    @Test func libpqMessagesLoseEveryFormOfThePassword() {
        let url = "postgresql://user:Hunt%65r2Secret@db/app?password=Other%2FSecret"
        let message = #"invalid URI "postgresql://user:Hunt%65r2Secret@db/app", "Hunter2Secret", "Other%2FSecret", "Other/Secret""#
        let redacted = PostgresURLSyntax.redact(message, url: url)
        #expect(!redacted.contains("Secret"), "\(redacted)")
        // A URL that does not even parse still has its password candidates removed.
        let broken = "postgresql://user:Hunter2%ZZSecret@db@x/app"
        #expect(!PostgresURLSyntax.redact(#"invalid percent-encoded token: "Hunter2%ZZSecret@db""#, url: broken).contains("Secret"))
    }

    /// The ports `supervisor status` counts a worker's open connections by, as libpq reads the URL.
    @Test(arguments: [
        ("postgresql://u@db/app", [5432]), ("postgresql://u@db:6432/app", [6432]),
        ("postgresql://u@a:5433,b/app", [5433, 5432]), ("postgresql://u@[::1]:7000/app", [7000]),
        ("postgresql://u@db/app?port=6000", [6000]), ("postgresql:///app", []),
        ("postgresql://%2Fvar%2Frun%2Fpostgresql/app", []), ("postgresql:///app?host=localhost&port=5444", [5444]),
        ("postgresql:///app?host=/tmp", []),
    ])
    func theTCPPortsAreLibpqs(url: String, ports: [Int]) throws {
        #expect(try PostgresURLSyntax(url).tcpPorts == Set(ports))
    }

    /// A uvicorn app's DATABASE_URL is SQLAlchemy's: status counts its ports the same, and budget --check-db,
    /// which needs libpq's form, says what to give it.
    @Test func sqlalchemysDriverFormReadsAsLibpqs() throws {
        #expect(PostgresURLSyntax.withoutDriver("postgresql+asyncpg://app:pw@db:6432/app") == "postgresql://app:pw@db:6432/app")
        #expect(PostgresURLSyntax.withoutDriver("postgres+psycopg://db/app") == "postgres://db/app")
        #expect(PostgresURLSyntax.withoutDriver("postgresql://db/app") == "postgresql://db/app")
        #expect(PostgresURLSyntax.withoutDriver("postgresql+://db/app") == "postgresql+://db/app")
        #expect(PostgresURLSyntax.withoutDriver("mysql+pymysql://db/app") == "mysql+pymysql://db/app")
        #expect(try PostgresURLSyntax(PostgresURLSyntax.withoutDriver("postgresql+asyncpg://a@h1:6432,h2/app")).tcpPorts == [6432, 5432])
        #expect(throws: PostgresURLSyntax.Defect.self) { try PostgresURLSyntax("postgresql+asyncpg://db/app") }
        do { _ = try PostgresURLSyntax("postgresql+asyncpg://db/app") } catch {
            #expect(error.description.contains("SQLAlchemy's form"))
        }
    }
}
