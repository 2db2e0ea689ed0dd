import TimeUnits
import Settings
@testable import SupervisorConfiguration
@testable import SupervisorSystem
import Testing

@Suite("Bind addresses, durations, counts")
struct ParsingTests {
    @Test(arguments: [
        ("0.0.0.0:8080", BindAddress.tcp(host: "0.0.0.0", port: 8080)),
        ("localhost:0", .tcp(host: "localhost", port: 0)),
        ("[::1]:9000", .tcp(host: "::1", port: 9000)),
        ("[::]:80", .tcp(host: "::", port: 80)),
        ("unix:/run/api.sock", .unix(path: "/run/api.sock")),
        // gunicorn's and Cloud Run's idiom, and a value from an env file with spaces around it.
        (":8000", .tcp(host: "0.0.0.0", port: 8000)),
        (" 127.0.0.1:0 ", .tcp(host: "127.0.0.1", port: 0)),
    ])
    func validAddresses(text: String, expected: BindAddress) throws {
        #expect(try BindAddress(parsing: text) == expected)
    }

    @Test(arguments: [
        ("8080", "expected host:port, [IPv6]:port or unix:/path"),
        ("tcp://0.0.0.0:80", "without a scheme"),
        ("host:+80", "port must be a number from 0 to 65535"),
        ("host:http", "port must be a number from 0 to 65535"),
        ("host:65536", "port must be a number from 0 to 65535"),
        ("::1:80", "put an IPv6 address in brackets"),
        ("[::1]80", "expected [IPv6]:port"),
        ("unix:", "unix: needs a path"),
    ])
    func invalidAddressesSayWhatWasExpected(text: String, fragment: String) {
        #expect {
            try BindAddress(parsing: text)
        } throws: { error in
            "\(error)".contains(fragment) && "\(error)".contains(text)
        }
    }

    @Test func unixPathLongerThanSockaddrIsRefused() {
        #expect(throws: ConfigurationError.self) {
            try BindAddress(parsing: "unix:/" + String(repeating: "a", count: 120))
        }
    }

    @Test(arguments: [
        ("8", Duration.seconds(8)), ("0.5", .milliseconds(500)), ("250ms", .milliseconds(250)),
        ("2m", .seconds(120)), ("1h", .seconds(3600)), ("0", .zero), (" 3s ", .seconds(3)),
    ])
    func durations(text: String, expected: Duration) throws {
        #expect(DurationSyntax.parse(text) == expected)
    }

    @Test(arguments: ["", "-1", "abc", "5 minutes", "1e400", "nan", "400d", "inf", "0x10", ".", "1.2.3"])
    func badDurationsNameTheSetting(text: String) {
        #expect(DurationSyntax.parse(text) == nil)
        let problem = Catalog.gracefulTimeout.kind.problem(text, name: "GRACEFUL_TIMEOUT")
        #expect(problem?.hasPrefix("GRACEFUL_TIMEOUT: expected a duration such as 8, 0.5, 250ms") == true, "\(problem ?? "nil")")
    }

    @Test func countsAreRangeChecked() throws {
        #expect(ValueSyntax.count("4", range: 1...1024) == 4)
        #expect(AnySetting.Kind.count(1...1024).problem("0", name: "API_WORKERS")
            == "API_WORKERS: expected a whole number from 1 to 1024, got '0'")
    }
}

@Suite("The command line")
struct ArgumentTests {
    @Test func optionsThenCommandAfterDoubleDash() throws {
        let arguments = try SupervisorArguments(parsing: [
            "--workers", "4", "--bind=127.0.0.1:0", "--no-notify", "-t", "0", "--", "uvicorn", "app:app", "--fd", "3",
        ])
        #expect(arguments.flags["workers"] == "4")
        #expect(arguments.flags["bind"] == "127.0.0.1:0")
        #expect(arguments.flags["no-notify"] == "true")
        #expect(arguments.flags["timeout"] == "0")
        #expect(arguments.command == ["uvicorn", "app:app", "--fd", "3"])
    }

    @Test func theFirstNonOptionStartsTheCommand() throws {
        let arguments = try SupervisorArguments(parsing: ["-w", "2", "python3", "-m", "http.server"])
        #expect(arguments.command == ["python3", "-m", "http.server"])
    }

    @Test func unknownOptionsAndMissingValuesAreOneLine() {
        #expect(throws: ConfigurationError("unknown option '--wrokers' (see supervisor --help)")) {
            try SupervisorArguments(parsing: ["--wrokers", "4"])
        }
        #expect(throws: ConfigurationError("--workers needs a value")) {
            try SupervisorArguments(parsing: ["--workers"])
        }
        #expect(throws: ConfigurationError("--no-notify takes no value")) {
            try SupervisorArguments(parsing: ["--no-notify=yes"])
        }
    }
}

@Suite("Settings from flags and environment")
struct SettingsTests {
    func settings(_ flags: [String], _ environment: [String: String] = [:]) throws(StartupError) -> SupervisorSettings {
        let arguments: SupervisorArguments
        do { arguments = try SupervisorArguments(parsing: flags + ["--", "/bin/true"]) } catch {
            throw .usage(error.description)
        }
        return try SupervisorSettings(arguments: arguments, environment: environment, defaultWorkerDirectory: "/nonexistent")
    }

    @Test func defaultsFollowTheSeedAndDockerStop() throws {
        let defaults = try settings([])
        #expect(defaults.arbiter.workers == 1)
        #expect(defaults.bind == .tcp(host: "0.0.0.0", port: 8080))
        #expect(defaults.backlog == 2048)
        #expect(defaults.arbiter.gracefulTimeout == .seconds(8))  // inside docker stop's 10 s
        #expect(defaults.arbiter.heartbeatTimeout == .seconds(30))
        #expect(defaults.arbiter.readiness == .notify)
    }

    @Test func environmentFillsWhatFlagsLeaveOut() throws {
        let fromEnvironment = try settings([], ["API_WORKERS": "4", "PORT": "9000", "GRACEFUL_TIMEOUT": "5"])
        #expect(fromEnvironment.arbiter.workers == 4)
        #expect(fromEnvironment.bind == .tcp(host: "0.0.0.0", port: 9000))
        #expect(fromEnvironment.arbiter.gracefulTimeout == .seconds(5))
        let bind = try settings([], ["BIND": "unix:/tmp/x.sock", "PORT": "9000"])
        #expect(bind.bind == .unix(path: "/tmp/x.sock"))
    }

    @Test func aFlagWinsOverItsVariable() throws {
        #expect(try settings(["--workers", "2"], ["API_WORKERS": "8"]).arbiter.workers == 2)
        // The flag wins even over a broken variable: the variable is never read.
        #expect(try settings(["--workers", "2"], ["API_WORKERS": "lots"]).arbiter.workers == 2)
    }

    @Test func badFlagIsUsageAndBadVariableIsConfiguration() {
        #expect(throws: StartupError.usage("--workers: expected a whole number from 1 to 1024, got 'x'")) {
            try settings(["--workers", "x"])
        }
        #expect(throws: StartupError.configuration("API_WORKERS: expected a whole number from 1 to 1024, got '0'")) {
            try settings([], ["API_WORKERS": "0"])
        }
        #expect(throws: StartupError.usage("--boot-timeout: must be more than 0, got '0'")) {
            try settings(["--boot-timeout", "0"])
        }
        #expect(StartupError.usage("").exitCode == 64)
        #expect(StartupError.configuration("").exitCode == 78)
        #expect(StartupError.commandNotFound("").exitCode == 127)
    }

    /// Issue 16: `--timeout`, `--backlog`, `--boot-timeout` and `--no-notify` had no variable.
    @Test func everyFlagHasAVariable() throws {
        let settings = try settings([], ["BACKLOG": "100", "HEARTBEAT_TIMEOUT": "5s", "BOOT_TIMEOUT": "2m", "NO_NOTIFY": "yes",
                                         "SOCKET_MODE": "0660", "LOG_LEVEL": "Warn", "LOG_FORMAT": "JSON"])
        #expect(settings.backlog == 100)
        #expect(settings.arbiter.bootTimeout == .seconds(120))
        #expect(settings.arbiter.readiness == .alive(for: .seconds(5)) && settings.arbiter.heartbeatTimeout == nil)
        #expect(settings.socketMode == 0o660)
        #expect(settings.logLevel == .warning && settings.logFormat == .json)
        // Variables reach the workers as they are; flags are passed on as their variables.
        #expect(settings.workerVariables.isEmpty)
        let flagged = try self.settings(["--log-level", "debug", "--log-format", "json"])
        #expect(flagged.workerVariables == ["LOG_LEVEL": "debug", "LOG_FORMAT": "json"])
        #expect(try self.settings([], ["HEARTBEAT_TIMEOUT": "5s"]).arbiter.heartbeatTimeout == .seconds(5))
    }

    @Test func noNotifyMeansReadyAfterAnUptimeAndNoHeartbeat() throws {
        let settings = try settings(["--no-notify", "--timeout", "5"])
        #expect(settings.arbiter.readiness == .alive(for: .seconds(5)))
        #expect(settings.arbiter.heartbeatTimeout == nil)
        #expect(try self.settings(["--no-notify", "--ready-after", "0"]).arbiter.readiness == .onSpawn)
        #expect(try self.settings([], ["NO_NOTIFY": "1", "READY_AFTER": "500ms"]).arbiter.readiness == .alive(for: .milliseconds(500)))
    }

    /// Issue 18: `--ready-after` means nothing to a worker that says READY=1, and one at or above the boot
    /// timeout would make every boot fail; both are refused in one line instead.
    @Test func readyAfterIsRefusedWhereItCannotWork() throws {
        #expect(throws: (any Error).self) { try self.settings(["--ready-after", "3s"]) }
        #expect(throws: (any Error).self) { try self.settings([], ["READY_AFTER": "3s"]) }
        #expect(throws: (any Error).self) { try self.settings(["--no-notify", "--ready-after", "1m", "--boot-timeout", "1m"]) }
        #expect(throws: (any Error).self) { try self.settings(["--no-notify", "--ready-after", "soon"]) }
    }

    @Test func zeroTimeoutDisablesTheHeartbeat() throws {
        #expect(try settings(["--timeout", "0"]).arbiter.heartbeatTimeout == nil)
    }

    @Test func missingCommandIsExit127() throws {
        let arguments = try SupervisorArguments(parsing: ["--", "surely-not-a-command-xyz"])
        #expect(throws: StartupError.commandNotFound("command not found or not executable: surely-not-a-command-xyz")) {
            try SupervisorSettings(arguments: arguments, environment: ["PATH": "/usr/bin:/bin"],
                                   defaultWorkerDirectory: "/nonexistent")
        }
        #expect(throws: StartupError.commandNotFound("no command given and no worker executable at /nonexistent/worker")) {
            try SupervisorSettings(arguments: SupervisorArguments(), environment: [:], defaultWorkerDirectory: "/nonexistent")
        }
    }

    @Test func commandsAreFoundInPath() throws {
        let arguments = try SupervisorArguments(parsing: ["--", "sh", "-c", "true"])
        let settings = try SupervisorSettings(arguments: arguments, environment: ["PATH": "/nonexistent:/bin:/usr/bin"],
                                              defaultWorkerDirectory: "/nonexistent")
        #expect(settings.command.path == "/bin/sh")
        #expect(settings.command.arguments == ["sh", "-c", "true"])
    }
}
