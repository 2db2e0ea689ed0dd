import TimeUnits
import Foundation
import Settings
import Testing

/// Issue 16: one settings surface. The traps came from three duration grammars, two log-level readers and
/// settings listed by hand in several places; these tests hold the declarations to one reading.
@Suite("Settings declared once")
struct SettingsTests {
    @Test(arguments: [
        ("250ms", Duration.milliseconds(250)), ("8", .seconds(8)), ("8s", .seconds(8)), ("0.5", .milliseconds(500)),
        ("2m", .seconds(120)), ("1.5h", .seconds(5400)), ("1d", .seconds(86_400)), (" 3s ", .seconds(3)), ("0", .zero),
    ])
    func oneDurationGrammar(text: String, expected: Duration) {
        #expect(DurationSyntax.parse(text) == expected)
    }

    @Test(arguments: ["", "-1", "abc", "5 minutes", "1e3", "nan", "inf", "400d", "0x10", ".", "1.2.3", "8 s", "s"])
    func durationsThatAreRefused(text: String) {
        #expect(DurationSyntax.parse(text) == nil)
    }

    /// Every duration setting takes the whole grammar: `--cleanup-timeout 1d` as `@every 1d`, `GRACEFUL_TIMEOUT=8s`
    /// in the worker as in the supervisor.
    @Test func everyDurationSettingTakesEveryUnit() {
        for setting in Catalog.all {
            guard case .duration = setting.kind else { continue }
            for text in ["8s", "1.5h", "1d", "250ms", "8"] where setting.kind.problem(text, name: "x") != nil {
                // Only a floor may refuse one: AUTH_CACHE_TTL and CLEANUP_STATEMENT_TIMEOUT take at least 1s.
                #expect(text == "250ms", "\(setting) refuses \(text)")
            }
        }
    }

    @Test(arguments: ["trace", "DEBUG", "Info", "notice", "warn", "WARN", "warning", "error", "critical", " info "])
    func logLevelsInAnyCase(text: String) {
        #expect(LogLevelSyntax.parse(text) != nil)
        #expect(EnvironmentContract.problem(of: .worker, in: Self.worker(["LOG_LEVEL": text])) == nil)
    }

    @Test(arguments: ["verbose", "warnings", "5", "fatal"])
    func unknownLogLevelsAreRefusedByEveryProgram(text: String) {
        for program in [Program.worker, .cleanup] {
            let problem = EnvironmentContract.problem(of: program, in: Self.worker(["LOG_LEVEL": text]))
            #expect(problem?.hasPrefix("LOG_LEVEL: expected trace, debug, info") == true, "\(program): \(problem ?? "nil")")
        }
    }

    static func worker(_ extra: [String: String]) -> [String: String] {
        ["DATABASE_URL": "postgresql://u@localhost/db", "REDIS_URL": "redis://localhost"].merging(extra) { $1 }
    }

    @Test func theContractNamesTheVariableAndNeverEchoesAPassword() {
        let cases: [([String: String], String)] = [
            (["DB_POOL_SIZE": "ten"], "DB_POOL_SIZE: expected auto or a whole number"),
            (["GRACEFUL_TIMEOUT": "0"], "GRACEFUL_TIMEOUT: must be more than 0"),
            (["RATE_LIMIT_PER_MINUTE": "-5"], "RATE_LIMIT_PER_MINUTE: expected a whole number"),
            (["LOG_FORMAT": "yaml"], "LOG_FORMAT: expected text or json"),
            (["ACCESS_LOG": "maybe"], "ACCESS_LOG: expected true or false"),
            (["MAX_BODY_SIZE": "2M", "BODY_BUFFER_LIMIT": "1M"], "BODY_BUFFER_LIMIT: must be at least MAX_BODY_SIZE"),
            (["DB_PGBOUNCER": "1", "DB_STATEMENT_TIMEOUT": "5s"], "DB_STATEMENT_TIMEOUT: PgBouncer refuses it"),
            // Postgres refuses a statement_timeout past 2^31 - 1 ms at every connect.
            (["DB_STATEMENT_TIMEOUT": "30d"], "DB_STATEMENT_TIMEOUT: must be at most 24d"),
            (["DB_POOL_SIZE": "0", "DB_MAX_OVERFLOW": "0"], "DB_POOL_SIZE + DB_MAX_OVERFLOW: must be at least 1"),
            (["DATABASE_URL": "postgresql://u:Hunter2%ZZ@h/db"], "DATABASE_URL: the password has invalid percent-encoding"),
            (["REDIS_URL": "redis://:Hunter2%ZZ@h"], "REDIS_URL: the password has invalid percent-encoding"),
            (["DATABASE_URL": ""], "DATABASE_URL is not set"),
        ]
        for (extra, expected) in cases {
            let problem = EnvironmentContract.problem(of: .worker, in: Self.worker(extra)) ?? "accepted"
            #expect(problem.hasPrefix(expected), "\(extra): \(problem)")
            #expect(!problem.contains("Hunter2"))
        }
        #expect(EnvironmentContract.problem(of: .worker, in: Self.worker(["GRACEFUL_TIMEOUT": "8s", "AUTH_CACHE_TTL": "1m"])) == nil)
    }

    /// A value in a message cannot start a line of its own, nor fill the screen (found by review).
    @Test func valuesAreShownEscapedAndCut() {
        #expect(ValueSyntax.shown("info\nsupervisor: ok") == #"'info\nsupervisor: ok'"#)
        #expect(ValueSyntax.shown("2\r") == #"'2\r'"#)
        #expect(ValueSyntax.shown(String(repeating: "x", count: 100_000)) == "'" + String(repeating: "x", count: 60) + "…'")
        #expect(ValueSyntax.fileMode("-0") == nil && ValueSyntax.fileMode("+66") == nil && ValueSyntax.fileMode("0660") == 0o660)
        #expect(ValueSyntax.count("+5", range: 0...10) == nil && ValueSyntax.count("-1", range: -5...5) == -1)
    }

    @Test func everyFlagHasAVariableAndEveryDefaultIsAValue() {
        for setting in Catalog.all {
            // A command's own options (`status --json`) and the worker's and the cleanup's flags are flags only.
            let onlyFlags = setting.readers.allSatisfy { $0.isCommand } || [[.worker], [.createToken], [.cleanup]].contains(setting.readers)
            #expect(!setting.variables.isEmpty || onlyFlags, "\(setting) has no environment variable")
            if let value = setting.defaultValue {
                #expect(setting.kind.problem(value, name: setting.description) == nil, "\(setting)'s default \(value)")
            }
            #expect(!setting.help.isEmpty)
        }
        let names = Catalog.all.flatMap(\.variables)
        #expect(Set(names).count == names.count, "a variable declared twice")
        for program in Program.allCases {
            let flags = Catalog.flags(of: program).flatMap(\.flags)
            #expect(Set(flags).count == flags.count, "a flag of \(program) declared twice")
        }
    }

    @Test func webConcurrencyComesAfterAPIWorkers() throws {
        let reader = { (flags: [String: String], environment: [String: String]) in
            try SettingsReader(flags: flags, environment: environment)[Catalog.workers]
        }
        #expect(try reader([:], [:]) == 1)
        #expect(try reader([:], ["WEB_CONCURRENCY": "3"]) == 3)
        #expect(try reader([:], ["WEB_CONCURRENCY": "3", "API_WORKERS": "2"]) == 2)
        #expect(try reader(["workers": "5"], ["WEB_CONCURRENCY": "3", "API_WORKERS": "2"]) == 5)
        #expect(throws: SettingError("WEB_CONCURRENCY: expected a whole number from 1 to 1024, got 'many'", fromFlag: false)) {
            try reader([:], ["WEB_CONCURRENCY": "many"])
        }
    }

    @Test func theFlagParserReadsTheDeclarations() throws {
        let parser = FlagParser(settings: Catalog.flags(of: .supervisor), stopsAtFirstArgument: true)
        let parsed = try parser.parse(["-w", "3", "--log-level=WARN", "--relay-signal", "USR1", "--relay-signal=USR2",
                                       "--no-notify", "uvicorn", "--workers", "9"], program: "supervisor")
        #expect(parsed.flags == ["workers": "3", "log-level": "WARN", "relay-signal": "USR1,USR2", "no-notify": "true"])
        #expect(parsed.arguments == ["uvicorn", "--workers", "9"])
        #expect(throws: SettingError("unknown option '--pool-size' (see supervisor --help)", fromFlag: true)) {
            try parser.parse(["--pool-size", "3"], program: "supervisor")
        }
    }

    /// `Catalog.all` is written by hand: a declaration missing from it would have no flag, no help line, no row in
    /// the table and no check of the workers' environment.
    @Test func everyDeclarationIsInTheCatalogsList() throws {
        let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Sources/Settings/Catalog.swift")
        let text = try String(contentsOf: source, encoding: .utf8)
        let declared = text.components(separatedBy: "\n").filter { $0.contains("public static let ") && $0.contains("= Setting<") }
        #expect(declared.count == Catalog.all.count, "\(declared.count) declarations, \(Catalog.all.count) in Catalog.all")
        #expect(Set(Catalog.all).count == Catalog.all.count, "a declaration listed twice")
    }

    /// The settings reference is the declarations': a setting added, renamed or given another default without the
    /// table following fails here.
    @Test func theSettingsReferenceListsEverySettingWithItsDefault() throws {
        let reference = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("docs/reference/settings.md")
        let text = try String(contentsOf: reference, encoding: .utf8)
        guard let marker = text.range(of: "<!-- settings:"),
              let start = text.range(of: "-->\n", range: marker.upperBound..<text.endIndex),
              let end = text.range(of: "\n<!-- /settings -->") else {
            Issue.record("docs/reference/settings.md has no <!-- settings: --> block")
            return
        }
        let table = String(text[start.upperBound..<end.lowerBound])
        #expect(table == SettingsHelp.markdownTable(),
                "docs/reference/settings.md is stale: replace its table with `supervisor help settings --markdown`")
        for setting in Catalog.all {
            #expect(table.contains("`\(setting.description)`"), "\(setting) is missing from the settings reference")
        }
    }
}

/// The supervisor's `--bind` and a worker's read TCP addresses with one grammar (the supervisor's own tests cover
/// its `unix:` and scheme checks on top).
@Suite("The host:port grammar")
struct HostPortSyntaxTests {
    @Test(arguments: [
        ("127.0.0.1:8080", "127.0.0.1", 8080), (":8000", "0.0.0.0", 8000), ("[::1]:9000", "::1", 9000),
        (" localhost:0 ", "localhost", 0), ("[::]:65535", "::", 65535),
    ])
    func addressesReadTheSameEverywhere(text: String, host: String, port: Int) throws {
        for bare in [false, true] {
            let address = try HostPortSyntax.parse(text, allowingBarePort: bare).get()
            #expect(address.host == host && Int(address.port) == port)
        }
    }

    @Test func aBarePortIsForTheCallerToAllow() throws {
        #expect(try HostPortSyntax.parse("8080", allowingBarePort: true).get().port == 8080)
        #expect(try HostPortSyntax.parse("8080", allowingBarePort: true).get().host == HostPortSyntax.everyIPv4Address)
        #expect(throws: HostPortSyntax.Problem.expectedHostPort) { try HostPortSyntax.parse("8080", allowingBarePort: false).get() }
    }

    @Test(arguments: [
        ("::1:80", HostPortSyntax.Problem.unbracketedIPv6), ("[::1]80", .expectedBracketedPort), ("host:+80", .badPort),
        ("host:65536", .badPort), ("host:", .badPort), ("localhost", .expectedHostPort), ("", .expectedHostPort),
        ("٨٠٨٠", .expectedHostPort), ("host:٨٠", .badPort),
    ])
    func badAddressesSayWhy(text: String, problem: HostPortSyntax.Problem) {
        #expect(throws: problem) { try HostPortSyntax.parse(text, allowingBarePort: true).get() }
    }
}
