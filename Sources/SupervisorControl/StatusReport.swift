import TimeUnits
import SupervisorSystem
import Arbiter
import LogFormat

/// What `supervisor status` shows: every slot, the cleanup job and the budget, as a table for people or JSON
/// for machines. A plain value built by the loop from the arbiter and /proc, rendered here.
package struct StatusReport: Sendable, Equatable {
    /// A slot as the arbiter decided it (`SlotStatus`: state, pid, generation, restarts, its allotment), and what
    /// the shell measured of its worker's tree in /proc.
    package struct SlotRow: Sendable, Equatable {
        package var slot: Arbiter<ContinuousClock.Instant>.SlotStatus
        package var rssBytes: Int?
        /// TCP connections the worker's tree holds open to the database's ports; nil when unknown.
        package var openConnections: Int?

        package init(_ slot: Arbiter<ContinuousClock.Instant>.SlotStatus, rssBytes: Int?, openConnections: Int?) {
            (self.slot, self.rssBytes, self.openConnections) = (slot, rssBytes, openConnections)
        }

        /// `1/20`: open of the allotment; `1` when nothing is allotted, `-/20` when it cannot be measured.
        var connectionsCell: String {
            let allotted = slot.connections > 0 ? "/\(slot.connections)" : ""
            if openConnections == nil && allotted.isEmpty { return "-" }
            return (openConnections.map(String.init) ?? "-") + allotted
        }
    }

    package struct Job: Sendable, Equatable {
        package var schedule: String
        package var zone: String
        package var nextRun: String?
        package var runningPID: Int32?
        package var lastResult: String?
        package var lastExitCode: Int32?
        package var lastDurationSeconds: Double?
        package var lastFinished: String?

        package init(schedule: String, zone: String, nextRun: String?, runningPID: Int32?, lastResult: String?,
                    lastExitCode: Int32?, lastDurationSeconds: Double?, lastFinished: String?) {
            (self.schedule, self.zone, self.nextRun, self.runningPID) = (schedule, zone, nextRun, runningPID)
            (self.lastResult, self.lastExitCode) = (lastResult, lastExitCode)
            (self.lastDurationSeconds, self.lastFinished) = (lastDurationSeconds, lastFinished)
        }
    }

    package var supervisorPID: Int32
    package var summary: String
    package var workers: Int
    package var ready: Int
    package var generation: Int
    /// Workers told to go and not yet reaped.
    package var retiring: Int
    package var slots: [SlotRow]
    package var cleanup: Job?
    /// One line: connections held against the budget, and whether a surge fits.
    package var budget: String?
    package var connectionsHeld: Int
    package var connectionsPeak: Int?
    /// How a stop keeps new connections out (`ListenSocket.StopMechanism`).
    package var listenerStop: ListenSocket.StopMechanism
    /// Where it listens (`127.0.0.1:8080`, `unix:/run/api.sock`): with `--log-level warn` no log line says so.
    package var listening = ""
    /// Processes of gone workers' trees found re-parented to the supervisor and signalled since start, and those
    /// of them still running.
    package var orphansSignalled = 0
    package var orphansRunning = 0
    /// The generations the ready workers run (`generation` is the newest one started).
    package var servingGenerations: [Int] = []
    /// The last rolling restart: `2 aborted 3.0s ago: why`.
    package var lastReload: LastReload?
    /// Log lines the supervisor dropped because stderr was not read fast enough.
    package var logLinesDropped = 0
    /// How the supervisor owns each worker's tree: `cgroup` (one per worker, `cgroup.kill`) or `process group`.
    package var trees = "process group"

    package init(supervisorPID: Int32, summary: String, workers: Int, ready: Int, generation: Int, retiring: Int,
                slots: [SlotRow], cleanup: Job?, budget: String?, connectionsHeld: Int, connectionsPeak: Int?,
                listenerStop: ListenSocket.StopMechanism) {
        (self.supervisorPID, self.summary, self.workers, self.ready) = (supervisorPID, summary, workers, ready)
        (self.generation, self.retiring, self.slots, self.cleanup) = (generation, retiring, slots, cleanup)
        (self.budget, self.connectionsHeld, self.connectionsPeak) = (budget, connectionsHeld, connectionsPeak)
        self.listenerStop = listenerStop
    }

    package var text: String {
        var lines = ["supervisor pid \(supervisorPID): \(summary)"]
        var rows: [[String]] = [["SLOT", "PID", "GEN", "STATE", "UPTIME", "RESTARTS", "HEARTBEAT", "RSS", "CONNS", "STATUS"]]
        for row in slots {
            let slot = row.slot
            rows.append([
                "\(slot.slot)", slot.pid.map { "\($0)" } ?? "-", slot.generation.map { "\($0)" } ?? "-", slot.state.rawValue,
                slot.uptime.map { Self.duration($0.inSeconds) } ?? "-", "\(slot.restarts)",
                slot.heartbeatAge.map { Self.duration($0.inSeconds) + " ago" } ?? "-",
                row.rssBytes.map(Self.megabytes) ?? "-", row.connectionsCell, Self.printable(slot.status ?? ""),
            ])
        }
        lines.append(Self.columns(rows))
        if retiring > 0 { lines.append("retiring: \(retiring) worker\(retiring == 1 ? "" : "s") draining") }
        if let cleanup {
            var line = "cleanup: \(cleanup.schedule) (\(cleanup.zone))"
            if let pid = cleanup.runningPID { line += ", running (pid \(pid))" }
            line += ", next \(cleanup.nextRun ?? "never")"
            if let result = cleanup.lastResult {
                line += "; last run \(cleanup.lastFinished ?? "?"): \(result)"
                if let seconds = cleanup.lastDurationSeconds { line += " after \(Self.duration(seconds))" }
            } else {
                line += "; no run yet"
            }
            lines.append(line)
        } else {
            lines.append("cleanup: none scheduled")
        }
        lines.append("budget: \(budget ?? "not counted (no DATABASE_URL, or --budget off)")")
        lines.append("listening on \(listening); at a stop: \(listenerStop.explanation)")
        lines.append("worker trees: \(trees); orphans signalled: \(orphansSignalled)"
            + (orphansRunning > 0 ? ", \(orphansRunning) still running" : ""))
        if let lastReload { lines.append("last reload: generation \(Self.printable(lastReload.line))") }
        if logLinesDropped > 0 { lines.append("log lines dropped: \(logLinesDropped) (stderr was not read fast enough, or was closed)") }
        return lines.joined(separator: "\n") + "\n"
    }

    /// A worker's words (`STATUS=`, a failed reload's reason) as the operator's terminal shows them: control
    /// characters, escape sequences among them, become `?`, so a worker cannot move the cursor or retitle the window.
    static func printable(_ text: String) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.map { scalar in
            scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) ? "?" : scalar
        }))
    }

    package var json: String {
        func number(_ value: Double?) -> String {
            guard let value else { return "null" }
            return String((value * 1000).rounded() / 1000)
        }
        func optional<T>(_ value: T?) -> String { value.map { "\($0)" } ?? "null" }
        func string(_ value: String?) -> String { value.map(JSONText.quoted) ?? "null" }
        let rows = slots.map { row in
            let slot = row.slot
            return "{\"slot\":\(slot.slot),\"pid\":\(optional(slot.pid)),\"generation\":\(optional(slot.generation)),"
                + "\"state\":\(JSONText.quoted(slot.state.rawValue)),\"uptime_seconds\":\(number(slot.uptime?.inSeconds)),"
                + "\"restarts\":\(slot.restarts),\"heartbeat_age_seconds\":\(number(slot.heartbeatAge?.inSeconds)),"
                + "\"rss_bytes\":\(optional(row.rssBytes)),\"connections\":\(slot.connections),"
                + "\"open_connections\":\(optional(row.openConnections)),\"status\":\(string(slot.status))}"
        }
        var job = "null"
        if let cleanup {
            job = "{\"schedule\":\(JSONText.quoted(cleanup.schedule)),\"zone\":\(JSONText.quoted(cleanup.zone)),"
                + "\"next_run\":\(string(cleanup.nextRun)),\"running_pid\":\(optional(cleanup.runningPID)),"
                + "\"last_result\":\(string(cleanup.lastResult)),\"last_exit_code\":\(optional(cleanup.lastExitCode)),"
                + "\"last_duration_seconds\":\(number(cleanup.lastDurationSeconds)),\"last_finished\":\(string(cleanup.lastFinished))}"
        }
        return "{\"pid\":\(supervisorPID),\"summary\":\(JSONText.quoted(summary)),\"listening\":\(JSONText.quoted(listening)),\"workers\":\(workers),"
            + "\"ready\":\(ready),\"generation\":\(generation),\"retiring\":\(retiring),"
            + "\"slots\":[\(rows.joined(separator: ","))],\"cleanup\":\(job),\"budget\":\(string(budget)),"
            + "\"connections_held\":\(connectionsHeld),\"connections_peak\":\(optional(connectionsPeak)),"
            + "\"listener_stop\":\(JSONText.quoted(listenerStop.rawValue)),\"worker_trees\":\(JSONText.quoted(trees)),"
            + "\"orphans_signalled\":\(orphansSignalled),\"orphans_running\":\(orphansRunning),"
            + "\"serving_generations\":[\(servingGenerations.map(String.init).joined(separator: ","))],"
            + "\"last_reload\":\(lastReload?.json ?? "null"),\"log_lines_dropped\":\(logLinesDropped)}\n"
    }

    /// The last rolling restart: what `status` shows and `supervisor reload` polls (`last-reload`).
    package struct LastReload: Sendable, Equatable {
        package var generation: Int
        /// `rolling`, `finished` or `aborted`.
        package var outcome: String
        package var endedSecondsAgo: Double?
        package var reason: String?

        package init(generation: Int, outcome: String, endedSecondsAgo: Double?, reason: String?) {
            (self.generation, self.outcome, self.endedSecondsAgo, self.reason) = (generation, outcome, endedSecondsAgo, reason)
        }

        /// `2 aborted 3.0s ago: why`: the generation first, so that a client tells its own reload from a newer one.
        package var line: String {
            "\(generation) \(outcome)" + (endedSecondsAgo.map { " \(StatusReport.duration($0)) ago" } ?? "")
                + (reason.map { ": \($0)" } ?? "")
        }

        var json: String {
            "{\"generation\":\(generation),\"outcome\":\(JSONText.quoted(outcome)),"
                + "\"ended_seconds_ago\":\(endedSecondsAgo.map { "\(($0 * 1000).rounded() / 1000)" } ?? "null"),"
                + "\"reason\":\(reason.map(JSONText.quoted) ?? "null")}"
        }
    }

    static func duration(_ seconds: Double) -> String {
        if seconds < 10 { return String((seconds * 10).rounded() / 10) + "s" }
        if seconds < 120 { return "\(Int(seconds))s" }
        if seconds < 7200 { return "\(Int(seconds / 60))m" }
        if seconds < 172_800 { return "\(Int(seconds / 3600))h" }
        return "\(Int(seconds / 86400))d"
    }

    static func megabytes(_ bytes: Int) -> String { RecycleReason.megabytes(bytes) }

    /// Left-aligned columns two spaces apart; the last column is not padded.
    static func columns(_ rows: [[String]]) -> String {
        let widths = rows[0].indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { cells in
            cells.enumerated().map { index, cell in
                index == cells.count - 1 ? cell : cell + String(repeating: " ", count: widths[index] - cell.count)
            }.joined(separator: "  ").trimmingSpaces.description
        }.joined(separator: "\n")
    }
}
