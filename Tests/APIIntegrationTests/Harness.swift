import ConnectionURL
import Foundation
import Synchronization
import IntegrationSupport
import PreforkPostgres
import PreforkRedis

/// The services `scripts/test` started, the schema, and tokens.
enum Services {
    static func environment(_ name: String) throws -> String {
        guard let value = ProcessInfo.processInfo.environment[name], !value.isEmpty else {
            throw TestFailure("\(name) is not set: run the tests with scripts/test, which starts Postgres and Redis")
        }
        return value
    }

    /// Runs a shell command, returns its exit status and standard output (`popen`: no Foundation Process
    /// waiting inside a test task).
    static func shell(_ command: String) -> (status: Int32, output: String) {
        guard let pipe = popen(command, "r") else { return (-1, "") }
        var output = ""
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = fread(&buffer, 1, buffer.count, pipe)
            if count <= 0 { break }
            output += String(decoding: buffer[..<count], as: UTF8.self)
        }
        let status = pclose(pipe)
        return ((status >> 8) & 0xff, output)
    }

    /// `worker migrate`, once per test process (it is idempotent anyway).
    static let migrated: Result<Void, TestFailure> = {
        guard let worker = try? Binaries.path("worker") else { return .failure(TestFailure("no worker binary")) }
        let (status, output) = shell("'\(worker)' migrate 2>&1")
        return status == 0 ? .success(()) : .failure(TestFailure("worker migrate failed (\(status)): \(output)"))
    }()

    /// A token for a new user of this name, from `worker create-token`.
    static func token(user: String, ttl: String = "1h") throws -> String {
        try migrated.get()
        let (status, output) = shell("'\(try Binaries.path("worker"))' create-token --user '\(user)' --ttl \(ttl) 2>/dev/null")
        let token = output.trimmingCharacters(in: .whitespacesAndNewlines)
        guard status == 0, token.hasPrefix("nt_") else { throw TestFailure("create-token failed (\(status)): \(output)") }
        return token
    }

    static func admin() throws -> PostgresConnection {
        try PostgresConnection.connect(url: try PostgresURL(try environment("DATABASE_URL")),
                                       defaults: [("application_name", "api-test-admin")])
    }

    /// Backends with this application_name, polled until `expected` for up to 2 s (they leave
    /// `pg_stat_activity` a moment after their socket closes).
    static func backends(_ applicationName: String, settleTo expected: Int? = nil) throws -> Int {
        let admin = try admin()
        defer { admin.close() }
        let deadline = Date().addingTimeInterval(2)
        while true {
            let count = Int(try admin.execute("SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1",
                                              [applicationName]).rows[0]["n"].int ?? -1)
            if expected == nil || count == expected || Date() > deadline { return count }
            usleep(20_000)
        }
    }

    static func uniqueName(_ prefix: String) -> String {
        "\(prefix)-\(getpid())-\(UInt32.random(in: 0 ... .max))"
    }
}

/// A worker started alone on an ephemeral port, its stderr collected.
final class WorkerProcess: @unchecked Sendable {
    let process: SupervisorProcess
    let port: UInt16
    let applicationName: String

    init(environment: [String: String] = [:], waitForReady: Bool = true) throws {
        try Services.migrated.get()
        applicationName = Services.uniqueName("api-test")
        var env = ["DB_APPLICATION_NAME": applicationName, "RATE_LIMIT_PER_MINUTE": "100000"]
        env.merge(environment) { $1 }
        process = try SupervisorProcess(["--bind", "127.0.0.1:0"], environment: env, bindEphemeral: false,
                                        executable: try Binaries.path("worker"))
        guard waitForReady else { port = 0; return }
        let line = try process.waitForLog("ready on=port ").first!
        guard let range = line.range(of: #"port (\d+)"#, options: .regularExpression),
              let port = UInt16(line[range].dropFirst(5))
        else { throw TestFailure("no port in: \(line)") }
        self.port = port
    }

    func request(_ method: String, _ path: String, token: String? = nil, body: String? = nil,
                 headers: [String: String] = [:]) throws -> HTTPClient.Response {
        var headers = headers
        if let token { headers["Authorization"] = "Bearer \(token)" }
        return try HTTPClient.request(port: port, method: method, path: path, headers: headers, body: body).get()
    }

    /// `threads` threads each sending `each` GETs of `path`, one connection per request, with the bearer token
    /// `token(thread, index)` gives: the statuses counted (0 for no answer). `meanwhile` runs every 50 ms until
    /// they are done (to sample the worker's Postgres connections under the load).
    func concurrentRequests(_ path: String, threads: Int, each: Int, token: @escaping @Sendable (Int, Int) -> String,
                            meanwhile: () throws -> Void = {}) rethrows -> [Int: Int] {
        let statuses = Mutex<[Int: Int]>([:])
        let group = DispatchGroup()
        let port = port
        for thread in 0..<threads {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                for index in 0..<each {
                    let status = (try? HTTPClient.request(port: port, method: "GET", path: path,
                                                          headers: ["Authorization": "Bearer \(token(thread, index))"]).get().status) ?? 0
                    statuses.withLock { $0[Int(status), default: 0] += 1 }
                }
            }
        }
        while group.wait(timeout: .now() + .milliseconds(50)) == .timedOut { try meanwhile() }
        return statuses.withLock { $0 }
    }

    /// One sample of a Prometheus metric (the line's value), 0 when absent.
    func metric(_ line: String) throws -> Double {
        let text = try request("GET", "/metrics").body
        for row in text.split(separator: "\n") where row.hasPrefix(line + " ") {
            return Double(row.dropFirst(line.count + 1)) ?? 0
        }
        return 0
    }
}

/// A Redis of a test's own, so it can be killed without disturbing the others.
final class PrivateRedis: @unchecked Sendable {
    let port: Int
    let directory: String
    var url: String { "redis://127.0.0.1:\(port)/0" }

    init() throws {
        directory = NSTemporaryDirectory() + Services.uniqueName("redis")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let probe = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(probe, pointer, length)
                return getsockname(probe, pointer, &length)
            }
        }
        port = Int(UInt16(bigEndian: address.sin_port))
        close(probe)
        try start()
    }

    func start() throws {
        let (status, output) = Services.shell("redis-server --bind 127.0.0.1 --port \(port) --save '' --appendonly no "
            + "--daemonize yes --dir \(directory) --pidfile \(directory)/redis.pid --logfile \(directory)/redis.log 2>&1")
        guard status == 0 else { throw TestFailure("redis-server: \(output)") }
        for _ in 0..<200 {
            if let connection = try? RedisConnection.connect(RedisConfiguration(url: try RedisURL(url))), connection.ping() {
                connection.close()
                return
            }
            usleep(10_000)
        }
        throw TestFailure("redis-server on \(port) did not answer")
    }

    func kill() {
        guard let text = try? String(contentsOfFile: directory + "/redis.pid", encoding: .utf8),
              let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)) else { return }
        Glibc.kill(pid, SIGKILL)
        while ProcessTable.isAlive(pid) { usleep(5_000) }
        unlink(directory + "/redis.pid")
    }

    deinit {
        kill()
        try? FileManager.default.removeItem(atPath: directory)
    }
}

/// Extracts `"key":value` from a flat JSON object (strings unquoted), for assertions.
func jsonField(_ body: String, _ key: String) -> String? {
    guard let data = body.data(using: .utf8),
          let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
          let value = object[key] else { return nil }
    if value is NSNull { return "null" }
    return "\(value)"
}

/// A Postgres cluster of a test's own (initdb in a temp folder, its own port), migrated, so that it can be
/// stopped with SIGSTOP without disturbing the other tests. As root the server runs as the postgres user (it
/// refuses root); as anyone else, as that user.
final class PrivatePostgres: @unchecked Sendable {
    let root: String
    let port: Int
    let bin: String
    var url: String { "postgresql://postgres@127.0.0.1:\(port)/postgres" }
    private var data: String { root + "/data" }

    init() throws {
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []
        guard let version = versions.sorted(by: { $0.compare($1, options: .numeric) == .orderedAscending }).last else {
            throw TestFailure("no Postgres under /usr/lib/postgresql")
        }
        bin = "/usr/lib/postgresql/\(version)/bin"
        root = NSTemporaryDirectory() + Services.uniqueName("prefork-pg")
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        port = Int(try Loopback.freePort())
        if getuid() == 0 { _ = Services.shell("chown postgres: '\(root)'") }
        try run("'\(bin)/initdb' -D '\(data)' -U postgres --auth=trust -E UTF8 >'\(root)/initdb.log' 2>&1")
        try run("'\(bin)/pg_ctl' -D '\(data)' -l '\(root)/server.log' -w -o '-p \(port) -k \(root) "
            + "-c listen_addresses=127.0.0.1 -c fsync=off' start >/dev/null")
        let migrate = Services.shell("DATABASE_URL='\(url)' '\(try Binaries.path("worker"))' migrate 2>&1")
        guard migrate.status == 0 else { throw TestFailure("migrate: \(migrate.output)") }
    }

    /// As the postgres user when root.
    private func run(_ command: String) throws {
        let line = getuid() == 0 ? "runuser -u postgres -- sh -c \"\(command.replacingOccurrences(of: "\"", with: "\\\""))\"" : command
        let (status, output) = Services.shell(line + " 2>&1")
        guard status == 0 else { throw TestFailure("\(command): \(output)") }
    }

    /// Stops the server at once (`pg_ctl stop -m immediate`): an outage, for the rest of the test.
    func stop() throws {
        try run("'\(bin)/pg_ctl' -D '\(data)' -m immediate stop >/dev/null")
    }

    /// The postmaster, from the first line of its pid file.
    var postmaster: Int32? {
        (try? String(contentsOfFile: data + "/postmaster.pid", encoding: .utf8))?
            .split(separator: "\n").first.flatMap { Int32($0) }
    }

    /// A token for a new user of this database.
    func token() throws -> String {
        let (status, output) = Services.shell("DATABASE_URL='\(url)' '\(try Binaries.path("worker"))' create-token "
            + "--user '\(Services.uniqueName("private"))' --ttl 1h 2>/dev/null")
        let token = output.trimmingCharacters(in: .whitespacesAndNewlines)
        guard status == 0, token.hasPrefix("nt_") else { throw TestFailure("create-token: \(output)") }
        return token
    }

    deinit {
        if let postmaster { kill(postmaster, SIGCONT) }
        try? run("'\(bin)/pg_ctl' -D '\(data)' -m immediate stop >/dev/null")
        try? FileManager.default.removeItem(atPath: root)
    }
}
