import Foundation
import IntegrationSupport
import Testing

/// Errors that repeat once per request are logged at once, then counted and summarised, never one line per
/// request and never not at all (issue 25: 9,746 lines in 3 s with Postgres down and uncached tokens; 22,819
/// answers of 503 and no line with cached ones). And a boot that waits on a database that never answers says so.
@Suite("Outage logs", .serialized)
struct OutageLogTests {
    @Test func aDatabaseOutageLeavesAFewLinesAndASummaryNotOnePerRequest() throws {
        let postgres = try PrivatePostgres()
        let cached = try postgres.token()
        let uncached = try postgres.token()
        let worker = try WorkerProcess(environment: ["DATABASE_URL": postgres.url])
        #expect(try worker.request("GET", "/v1/notes", token: cached).status == 200)  // cached from now on
        try postgres.stop()
        var statuses: [Int: Int] = [:]
        for index in 0..<400 {
            let status = (try? worker.request("GET", "/v1/notes", token: index % 2 == 0 ? cached : uncached).status) ?? -1
            statuses[status, default: 0] += 1
        }
        #expect(statuses[503, default: 0] >= 390, "\(statuses)")
        let lines = worker.process.log.split(separator: "\n").filter { $0.contains("database unavailable") }
        #expect(!lines.isEmpty, "not one line for \(statuses[503] ?? 0) answers of 503")
        #expect(lines.count <= 3, "\(lines.count) lines for 400 requests:\n\(lines.prefix(10).joined(separator: "\n"))")
        let summary = try worker.process.waitForLog("database unavailable: answering 503: ", timeout: 15)
        #expect(summary.first?.contains(" more in ") == true, "\(summary)")
    }

    /// A Postgres that accepts connections and never answers: the boot says what it waits for, without the
    /// password, instead of nothing until the supervisor's boot timeout.
    @Test func aBootThatWaitsOnASilentDatabaseSaysSo() throws {
        // A listening socket nobody accepts on: the kernel completes the handshake, nothing ever answers.
        let (listener, port) = try Loopback.listener()
        defer { close(listener) }
        let worker = try WorkerProcess(environment: ["DATABASE_URL": "postgresql://app:s3cret-pw@127.0.0.1:\(port)/db"],
                                       waitForReady: false)
        let line = try #require(try worker.process.waitForLog("boot: waiting for Postgres at", timeout: 9).first)
        #expect(line.contains("127.0.0.1:\(port)") && line.contains("no answer after 5 s"), "\(line)")
        #expect(!worker.process.log.contains("s3cret-pw"))
    }

    /// The API worker ignores SIGPIPE itself, whoever started it: a log reader that went away killed every worker
    /// at its next log line (and a graceful stop under load reset 16 requests).
    @Test func theWorkerIgnoresSIGPIPE() throws {
        let worker = try WorkerProcess()
        let status = try String(contentsOfFile: "/proc/\(worker.process.pid)/status", encoding: .utf8)
        let line = status.split(separator: "\n").first { $0.hasPrefix("SigIgn:") } ?? ""
        let mask = UInt64(line.split(separator: "\t").last ?? "", radix: 16) ?? 0
        #expect(mask & (1 << (UInt64(SIGPIPE) - 1)) != 0, "\(line)")
    }
}
