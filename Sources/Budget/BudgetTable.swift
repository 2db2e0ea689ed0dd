/// The budget in the seed's own table (setting, value, per worker, total), so that an operator reads the
/// refusal the way the seed's authors wrote their reasoning down, then the verdict in plain lines.
extension ConnectionBudget {
    public func table(poolIsAuto: Bool = false) -> String {
        let plural = workers == 1 ? "worker" : "workers"
        let scope = replicas > 1 ? "\(replicas) replicas × \(workers) \(plural)" : "\(workers) \(plural)"
        var rows: [[String]] = [["Setting", "Value", "Per worker", "Total (\(scope))"]]
        rows.append(["Workers", "\(workers)", "—", "\(replicas * workers) process\(replicas * workers == 1 ? "" : "es")"])
        if replicas > 1 { rows.append(["Replicas", "\(replicas)", "—", "\(replicas) supervisors"]) }
        rows.append(["DB_POOL_SIZE", poolIsAuto ? "auto (\(pool.size))" : "\(pool.size)", "\(pool.size) persistent",
                     "\(replicas * workers * pool.size) persistent"])
        rows.append(["DB_MAX_OVERFLOW", "\(pool.overflow)", "\(pool.overflow) overflow",
                     "\(replicas * workers * pool.overflow) overflow"])
        if let pgbouncer {
            rows.append(["**Max client connections**", "—", "\(perWorker)", "**\(workerConnections)**"])
            if let cleanup {
                rows.append(["Cleanup pool", "\(cleanup)", "—", "\(cleanupConnections) (client connections)"])
            }
            let instances = pgbouncer.instances > 1 ? " × \(pgbouncer.instances)" : ""
            rows.append(["PgBouncer max_client_conn", "\(pgbouncer.maxClientConnections)\(instances)", "—", "\(pgbouncer.clientSlots)"])
            rows.append(["PgBouncer default_pool_size", "\(pgbouncer.poolSize)\(instances)", "—",
                         "**\(pgbouncer.serverConnections)** (what Postgres sees)"])
            rows.append(["**Reserved**", "\(reserved)", "—", "**\(reserved)**"])
            rows.append(["max_connections", "\(maxConnections)", "—", "\(maxConnections)"])
            return Self.render(rows) + "\n" + verdict.joined(separator: "\n")
        }
        rows.append(["**Max DB connections**", "—", "\(perWorker)", "**\(workerConnections)**"])
        if let cleanup {
            rows.append(["Cleanup pool", "\(cleanup)", "—", "\(cleanupConnections) (from the reserve)"])
        }
        rows.append(["**Reserved**", "\(reserved)", "—", "**\(reserved)**"])
        rows.append(["max_connections", "\(maxConnections)", "—", "\(maxConnections)"])
        return Self.render(rows) + "\n" + verdict.joined(separator: "\n")
    }

    /// The lines under the table: fits or not, the cleanup, the surge.
    public var verdict: [String] {
        var lines: [String] = []
        if fits, let pgbouncer {
            lines.append("fits: \(formula) = \(workerConnections) + \(cleanupConnections) for the cleanup = "
                + "\(workerConnections + cleanupConnections) of PgBouncer's \(pgbouncer.clientSlots) client slots; Postgres sees at "
                + "most \(pgbouncer.serverConnections) of the \(maxConnections - reserved) it allows (\(maxConnections) − \(reserved) reserved)")
            lines.append(surgeLine)
        } else if fits {
            lines.append("fits: \(formula) = \(workerConnections) of the \(workerLimit) connections the workers may "
                + "use; the cleanup's \(cleanupConnections) come out of the \(reserved) reserved")
            lines.append(surgeLine)
        } else {
            lines += problems.map { "does not fit: \($0)" }
            lines.append("ways out:")
            lines += waysOut.map { "  - \($0)" }
        }
        return lines
    }

    /// A markdown table with its columns aligned, readable in a terminal and pasteable into a document.
    static func render(_ rows: [[String]]) -> String {
        let widths = rows[0].indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
        func line(_ cells: [String]) -> String {
            "| " + zip(cells, widths).map { $0 + String(repeating: " ", count: $1 - $0.count) }.joined(separator: " | ") + " |"
        }
        let rule = "|" + widths.map { String(repeating: "-", count: $0 + 2) }.joined(separator: "|") + "|"
        return ([line(rows[0]), rule] + rows.dropFirst().map(line)).joined(separator: "\n")
    }
}
