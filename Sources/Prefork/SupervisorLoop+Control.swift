import TimeUnits
import Arbiter
import Budget
import Glibc
import Logging

/// The loop's operator side: the control socket's commands, `supervisor status`, the memory limit, the admin
/// endpoint's counters, and the budget at start.
extension SupervisorLoop {
    /// The budget table once at start (a warning with `--budget warn` when it does not fit), so the log of
    /// every deploy says what the worst case is and whether a surge fits.
    func announceBudget() {
        guard let budget = settings.budget, budget.mode != .off || budget.poolIsAuto else { return }
        if let warning = settings.budgetWarning {
            logger.warning("\(warning)\n\(budget.table)")
        } else {
            logger.info("connection budget\n\(budget.table)")
        }
        if budget.poolIsAuto {
            logger.notice("DB_POOL_SIZE=auto: \(budget.budget.pool) connections per worker for \(settings.arbiter.workers) workers")
        }
    }

    func handleControl(_ control: ControlServer, fd: Int32, writable: Bool) {
        if writable, !control.flush(fd) { return }
        guard let line = control.readable(fd) else { return }
        let (response, actions) = answer(line)
        if control.respond(fd, response) { try? watch(fd, writable: true, modify: true) }
        perform(actions)
    }

    /// The response to one request line, and what the arbiter must then do.
    func answer(_ line: String) -> (String, [Machine.Action]) {
        let words = line.split(separator: " ")
        let now = clock.now
        switch words.first {
        case "ping":
            return ("ok\npong\n", [])
        case "status":
            let report = statusReport()
            return ("ok\n" + (words.dropFirst().first == "json" ? report.json : report.text), [])
        case "scale":
            guard words.count == 2, let workers = Int(words[1]) else { return ("error: usage: scale N\n", []) }
            let actions = arbiter.scale(to: workers, by: "scale", now: now)
            if let refusal = Self.refusal(in: actions) { return ("refused: \(refusal)\n", actions) }
            logger.notice("scale requested over the control socket", metadata: ["workers": "\(workers)"])
            return ("ok\nscaling to \(workers) workers\n", actions)
        case "reload":
            let actions = arbiter.received(.hangup, now: now)
            if let refusal = Self.refusal(in: actions) { return ("refused: \(refusal)\n", actions) }
            logger.notice("reload requested over the control socket")
            return ("ok\nrolling restart to generation \(arbiter.generation)\n", actions)
        case "stop":
            logger.notice("stop requested over the control socket")
            return ("ok\nstopping\n", arbiter.received(.terminate, now: now))
        default:
            return ("error: unknown command '\(line.prefix(40))' (status [json], scale N, reload, stop)\n", [])
        }
    }

    static func refusal(in actions: [Machine.Action]) -> String? {
        for action in actions {
            if case .report(.refused(let why)) = action { return why }
            if case .report(.ignored(let why)) = action { return why }
        }
        return nil
    }

    func statusReport() -> StatusReport {
        let now = clock.now
        func seconds(_ duration: Duration) -> Double {
            duration.inSeconds
        }
        var rows: [StatusReport.SlotRow] = []
        for (index, slot) in arbiter.slots.enumerated() {
            let worker = slot.worker ?? slot.replacement
            var state: String
            if let worker {
                state = worker.readyAt == nil ? "booting" : "ready"
                if worker.draining { state = "draining" }
                if slot.replacement != nil, slot.worker != nil { state = "replacing" }
                if arbiter.recycling?.slot == index { state = "recycling" }
            } else if slot.pendingSpawn != nil {
                state = "spawning"
            } else if slot.restartAt != nil {
                state = "restarting"
            } else {
                state = "waiting"
            }
            rows.append(StatusReport.SlotRow(
                slot: index, pid: worker?.pid, generation: worker?.generation, state: state,
                uptimeSeconds: worker.map { seconds($0.startedAt.duration(to: now)) }, restarts: slot.restarts,
                heartbeatAgeSeconds: worker?.lastHeartbeat.map { seconds($0.duration(to: now)) },
                rssBytes: worker.flatMap { ProcessMemory.residentBytes(of: $0.pid) },
                connections: worker?.connections ?? 0, status: worker?.status))
        }
        var job: StatusReport.Job?
        if let jobs {
            job = StatusReport.Job(
                schedule: jobs.scheduleText, zone: jobs.zoneName, nextRun: jobs.nextRun.map(JobRunner.format),
                runningPID: jobs.runningPID, lastResult: jobs.lastRun?.result, lastExitCode: jobs.lastRun?.exitCode,
                lastDurationSeconds: jobs.lastRun.map { Double($0.durationMilliseconds) / 1000 },
                lastFinished: jobs.lastRun.map { JobRunner.format($0.finishedAt) })
        }
        var report = StatusReport(
            supervisorPID: getpid(), summary: arbiter.statusLine, workers: arbiter.slots.count, ready: arbiter.readyCount,
            generation: arbiter.generation, retiring: arbiter.retirees.count, slots: rows, cleanup: job,
            budget: budgetLine, connectionsHeld: arbiter.connectionsHeld,
            connectionsPeak: arbiter.configuration.connections?.peak, listenerStop: listenerStop)
        report.listening = self.socket.description
        return report
    }

    /// `80 of 80 connections (4 × 20), peak 98 of 100; surge does not fit: retire-first`.
    var budgetLine: String? {
        guard let budget = settings.budget, let limits = arbiter.configuration.connections else {
            if let budget = settings.budget, budget.mode == .warn {
                return "not enforced (--budget warn): \(budget.budget.workerConnections) of \(budget.budget.workerLimit)"
            }
            return nil
        }
        let workers = arbiter.slots.count
        let steady = workers * arbiter.allotment
        let surge = steady + arbiter.allotment <= limits.peak
        return "\(steady) of \(limits.steady) connections for the workers (\(workers) × \(arbiter.allotment)), "
            + "\(arbiter.connectionsHeld) allotted now, peak limit \(limits.peak) of \(budget.budget.maxConnections)"
            + (budget.budget.replicas > 1 ? " over \(budget.budget.replicas) replicas" : "")
            + "; " + (surge ? "surge fits: new worker first" : "surge does not fit: retire-first")
    }

    /// `--max-worker-memory`: once a second, each ready worker's RSS against the limit.
    func checkMemory() {
        guard let limit = settings.maxWorkerMemory, let due = nextMemoryCheck, clock.now >= due else { return }
        nextMemoryCheck = clock.now + .seconds(1)
        for slot in arbiter.slots {
            guard let worker = slot.worker, worker.readyAt != nil, worker.recycle == nil,
                let rss = ProcessMemory.residentBytes(of: worker.pid), rss > limit
            else { continue }
            let reason = "memory: \(StatusReport.megabytes(rss)) > \(StatusReport.megabytes(limit))"
            perform(arbiter.recycleRequested(pid: worker.pid, reason: reason, now: clock.now))
        }
    }

    /// Counts what the admin endpoint reports.
    func count(_ report: Machine.Report) {
        guard admin != nil else { return }
        switch report {
        case .exited(_, _, let status, let expected) where !expected && status != .exited(0):
            metrics.restarts["exit", default: 0] += 1
        case .bootTimedOut:
            metrics.restarts["boot_timeout", default: 0] += 1
        case .heartbeatMissed:
            metrics.restarts["heartbeat", default: 0] += 1
            metrics.heartbeatKills += 1
        case .recycling(_, _, let reason, _):
            let kind = reason.prefix { $0 != ":" && $0 != " " }
            metrics.recycles[String(kind), default: 0] += 1
        case .reloadStarted:
            metrics.reloads += 1
        default:
            break
        }
    }

    /// Hands the admin endpoint's thread the current counters and the serving workers' sockets.
    func publishMetrics() {
        guard let admin else { return }
        metrics.workers = arbiter.slots.count
        metrics.ready = arbiter.readyCount
        metrics.retiring = arbiter.retirees.count
        metrics.generation = arbiter.generation
        metrics.connectionsHeld = arbiter.connectionsHeld
        metrics.connectionsSteadyLimit = arbiter.configuration.connections?.steady
        metrics.connectionsPeakLimit = arbiter.configuration.connections?.peak
        metrics.connectionsPerWorker = arbiter.allotment
        if let jobs {
            metrics.cleanupRunning = jobs.runningPID != nil
            metrics.cleanupLastSuccess = jobs.lastSuccessAt.map { Double($0) / 1000 }
            metrics.cleanupLastDuration = jobs.lastRun.map { Double($0.durationMilliseconds) / 1000 }
            metrics.cleanupLastExitCode = jobs.lastRun?.exitCode
        }
        var endpoints: [(slot: Int, path: String)] = []
        for (index, slot) in arbiter.slots.enumerated() {
            if let worker = slot.worker, worker.readyAt != nil, let socket = metricsSockets[worker.pid] {
                endpoints.append((index, socket.path))
            }
        }
        admin.publish(AdminEndpoint.Snapshot(metrics: metrics, endpoints: endpoints))
    }
}
