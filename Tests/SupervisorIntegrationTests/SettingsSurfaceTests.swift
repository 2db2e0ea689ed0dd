import Foundation
import IntegrationSupport
import Testing

/// Issue 16: the supervisor's settings surface as operators coming from uvicorn, gunicorn and systemd use it.
@Suite("Settings surface: conventions, help, version, unix socket modes")
struct SettingsSurfaceTests {
    let worker: String
    let supervisorPath: String

    init() throws {
        worker = try Binaries.path("test-worker")
        supervisorPath = try Binaries.path("supervisor")
    }

    /// What uvicorn, gunicorn and every PaaS set; it was ignored (1 worker ran).
    @Test func webConcurrencyIsTheWorkerCountAfterAPIWorkers() throws {
        let supervisor = try SupervisorProcess(["--", worker], environment: ["WEB_CONCURRENCY": "3"])
        try supervisor.waitForLog("all 3 workers ready")
        // Not passed on: uvicorn and gunicorn read it as their own worker count (found by review).
        for pid in try supervisor.waitForWorkers(3) {
            let environ = (try? String(contentsOfFile: "/proc/\(pid)/environ", encoding: .utf8)) ?? ""
            #expect(!environ.split(separator: "\0").contains { $0.hasPrefix("WEB_CONCURRENCY=") }, "worker \(pid) got WEB_CONCURRENCY")
        }
        supervisor.signal(SIGTERM)
        #expect(try supervisor.waitForExit() == 0)
        let both = try SupervisorProcess(["--", worker], environment: ["WEB_CONCURRENCY": "3", "API_WORKERS": "2"])
        try both.waitForLog("all 2 workers ready")
        both.signal(SIGTERM)
        #expect(try both.waitForExit() == 0)
    }

    @Test(arguments: [
        (["--workers", "1025"], [:], Int32(64), "--workers: expected a whole number from 1 to 1024"),
        ([], ["API_WORKERS": "2000"], 78, "API_WORKERS: expected a whole number from 1 to 1024"),
        ([], ["WEB_CONCURRENCY": "0"], 78, "WEB_CONCURRENCY: expected a whole number from 1 to 1024"),
        (["--cleanup-timeout", "soon", "--cleanup-command", "/bin/true"], [:], 64, "--cleanup-timeout: expected a duration"),
        ([], ["BOOT_TIMEOUT": "0"], 78, "BOOT_TIMEOUT: must be more than 0"),
        ([], ["NO_NOTIFY": "perhaps"], 78, "NO_NOTIFY: expected true or false"),
        (["--ready-after", "2s"], [:], 64, "--ready-after applies only with --no-notify"),
        (["--no-notify", "--ready-after", "60"], [:], 64, "--ready-after must be shorter than --boot-timeout (default 60 s)"),
        (["--no-notify", "--boot-timeout", "1"], [:], 64, "--ready-after (default 5 s) must be shorter than --boot-timeout"),
        ([], ["NO_NOTIFY": "1", "READY_AFTER": "2 s"], 78, "READY_AFTER: expected a duration"),
        (["--log-level", "verbose"], [:], 64, "--log-level: expected trace"),
        ([], ["LOG_FORMAT": "yaml"], 78, "LOG_FORMAT: expected text or json"),
        (["--socket-mode", "999"], [:], 64, "--socket-mode: expected an octal mode"),
        (["--socket-group", "no-such-group-here"], [:], 64, "--socket-group: no group 'no-such-group-here'"),
        (["--socket-mode", "-0"], [:], 64, "--socket-mode: expected an octal mode"),
        (["--bind", "127.0.0.1:0", "--bind", "127.0.0.1:0"], [:], 64, "--bind is given twice; it takes one value"),
        ([], ["LOG_LEVEL": "info\nsupervisor: all good"], 78, #"LOG_LEVEL: expected trace, debug, info, notice, warn(ing), error or critical, got 'info\nsupervisor: all good'"#),
    ] as [([String], [String: String], Int32, String)])
    func badValuesAreOneLineWithTheirCode(flags: [String], environment: [String: String], code: Int32, message: String) throws {
        let supervisor = try SupervisorProcess(flags + ["--", worker], environment: environment)
        #expect(try supervisor.waitForExit(timeout: 5) == code)
        let lines = supervisor.log.split(separator: "\n")
        #expect(lines.count == 1 && lines[0].contains(message), "\(supervisor.log)")
    }

    /// `--cleanup-timeout 1d` was refused where `@every 1d` was taken; every duration takes every unit now.
    @Test func everyDurationFlagTakesTheWholeGrammar() throws {
        let supervisor = try SupervisorProcess(["--cleanup-command", "/bin/true", "--cleanup-timeout", "1d",
                                                "--cleanup-jitter", "1.5h", "--graceful-timeout", "2.5s", "--timeout", "1m",
                                                "--", worker], environment: ["BOOT_TIMEOUT": "90s", "HEARTBEAT_TIMEOUT": "30s"])
        try supervisor.waitForLog("all 1 workers ready")
        supervisor.signal(SIGTERM)
        #expect(try supervisor.waitForExit() == 0)
    }

    @Test func logLevelAndFormatAreTheSupervisorsToo() throws {
        let quiet = try SupervisorProcess(["--log-level", "warn", "--workers", "2", "--", worker])
        _ = try quiet.portFromStatus(workers: 2)
        quiet.signal(SIGTERM)
        #expect(try quiet.waitForExit() == 0)
        #expect(!quiet.log.contains(" info: ") && !quiet.log.contains(" notice: "), "\(quiet.log)")

        let json = try SupervisorProcess(["--log-format", "json", "--", worker])
        _ = try json.waitForLog("all 1 workers ready")
        json.signal(SIGTERM)
        #expect(try json.waitForExit() == 0)
        for line in json.log.split(separator: "\n") where line.contains("supervisor") {
            #expect((try? JSONSerialization.jsonObject(with: Data(line.utf8))) is [String: Any], "not JSON: \(line)")
        }
        // The worker's pid in its lifecycle lines, beside the supervisor's own (it was dropped: both were "pid").
        let ready = try #require(json.log.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }.first { $0["msg"] as? String == "ready" }, "\(json.log)")
        #expect(ready["pid"] as? Int == Int(json.pid) && Int(ready["child_pid"] as? String ?? "") != nil, "\(ready)")
    }

    @Test func helpForEveryCommandAndTheVersion() throws {
        func run(_ arguments: String) -> (status: Int32, output: String) { runShell("'\(supervisorPath)' \(arguments) 2>&1") }
        let help = run("help")
        #expect(help.status == 0 && help.output.contains("USAGE: supervisor [options]") && help.output.contains("WEB_CONCURRENCY"))
        for command in ["budget", "status", "scale", "reload", "stop", "healthcheck", "schedule"] {
            let viaHelp = run("help \(command)")
            let viaFlag = run("\(command) --help")
            #expect(viaHelp.status == 0 && viaHelp.output.contains("USAGE: supervisor \(command)"), "\(command): \(viaHelp.output)")
            #expect(viaFlag.output == viaHelp.output, "\(command) --help is not its own help")
        }
        #expect(run("help nothing").status == 64)
        let settings = run("help settings")
        #expect(settings.status == 0 && settings.output.contains("WORKER") && settings.output.contains("CLEANUP_RETENTION_DAYS"))
        let timeout = run("healthcheck --timeout soon")
        #expect(timeout.status == 64 && timeout.output.contains("--timeout: expected a duration"), "\(timeout.output)")
        #expect(runShell("PORT=abc '\(supervisorPath)' healthcheck 2>&1").status == 78)
        let version = run("--version")
        #expect(version.status == 0 && version.output.hasPrefix("supervisor 0.") && version.output.contains("(commit "))
    }

    @Test func buildInfoIsAMetric() throws {
        let supervisor = try SupervisorProcess(["--metrics-bind", "127.0.0.1:0", "--", worker])
        let port = try supervisor.metricsPort()
        try supervisor.waitForLog("all 1 workers ready")
        let body = try HTTPClient.get(port: port, path: "/metrics").get().body
        let version = runShell("'\(supervisorPath)' --version").output  // supervisor 0.17.1 (commit abc)
        let parts = version.split(whereSeparator: { " ()\n".contains($0) })
        #expect(parts.count == 4)
        #expect(body.contains("prefork_build_info{version=\"\(parts[1])\",commit=\"\(parts[3])\"} 1"), "\(body.prefix(400))")
        supervisor.signal(SIGTERM)
        #expect(try supervisor.waitForExit() == 0)
    }

    /// The socket was created `srwxr-xr-x`: a proxy under another uid could not connect. 0666 as uvicorn, or
    /// what `--socket-mode` / `SOCKET_MODE` says.
    @Test(arguments: [([String](), [String: String](), 0o666), (["--socket-mode", "0660"], [:], 0o660),
                      ([], ["SOCKET_MODE": "600"], 0o600)])
    func unixSocketsGetTheirMode(flags: [String], environment: [String: String], mode: Int) throws {
        let path = "/tmp/prefork-mode-\(getpid())-\(mode).sock"
        defer { unlink(path) }
        let supervisor = try SupervisorProcess(["--bind", "unix:\(path)"] + flags + ["--", worker], environment: environment,
                                               bindEphemeral: false)
        try supervisor.waitForLog("all 1 workers ready")
        var info = stat()
        #expect(stat(path, &info) == 0)
        #expect(Int(info.st_mode) & 0o777 == mode, "mode \(String(Int(info.st_mode) & 0o777, radix: 8))")
        supervisor.signal(SIGTERM)
        #expect(try supervisor.waitForExit() == 0)
    }
}
