import SupervisorControl
import SupervisorConfiguration
import SupervisorSystem
import TimeUnits
import Arbiter
import Budget
import Glibc
import Logging
import LogFormat

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
        let now = clock.now
        // Exactly the words each command takes: `stop extra` is a mistake to point out, not a stop.
        switch ControlRequest.parse(line) {
        case .failure(let usage):
            return ("error: \(usage.message)\n", [])
        case .success(.ping):
            return ("ok\npong\n", [])
        case .success(.status(let json)):
            let report = statusReport()
            return ("ok\n" + (json ? report.json : report.text), [])
        case .success(.scale(let workers)):
            return respond(to: .scale(workers: workers), now: now)
        case .success(.reload):
            return respond(to: .reload, now: now)
        case .success(.lastReload):
            return ("ok\n" + (lastReload(now: now)?.line ?? "none") + "\n", [])
        case .success(.stop):
            return respond(to: .stop, now: now)
        }
    }

    /// The arbiter decides; the answer is its outcome, word for word.
    private func respond(to command: OperatorCommand, now: ContinuousClock.Instant) -> (String, [Machine.Action]) {
        let (outcome, actions) = arbiter.command(command, now: now)
        switch outcome {
        case .refused(let why):
            return ("refused: \(why)\n", actions)
        case .accepted(let what):
            logger.notice("\(what), as asked over the control socket")
            return ("ok\n\(what)\n", actions)
        }
    }

    /// The workers' open database connections, measured at most once a second: `status` may be polled in a loop
    /// (a healthcheck, a deploy script), and the measurement reads every process's descriptors and the connection
    /// table on the supervisor's one thread.
    func openConnections(_ trees: [(root: Int32, also: [Int32])], in snapshot: ProcessTree.Snapshot,
                         now: ContinuousClock.Instant) -> [Int32: Int] {
        if let cached = openConnectionsCache, now < cached.at + .seconds(1) { return cached.counts }
        let counts = ProcessTree.openConnections(ofTrees: trees, ports: settings.databasePorts, in: snapshot)
        openConnectionsCache = (now, counts)
        return counts
    }

    func lastReload(now: ContinuousClock.Instant) -> StatusReport.LastReload? {
        guard let record = arbiter.lastReload else { return nil }
        let ago = record.endedAt.map { $0.duration(to: now).inSeconds }
        switch record.outcome {
        case .rolling: return .init(generation: record.generation, outcome: "rolling", endedSecondsAgo: nil, reason: nil)
        case .finished: return .init(generation: record.generation, outcome: "finished", endedSecondsAgo: ago, reason: nil)
        case .aborted(let why): return .init(generation: record.generation, outcome: "aborted", endedSecondsAgo: ago, reason: why)
        }
    }

    func statusReport() -> StatusReport {
        let now = clock.now
        let processes = procIsOurs ? ProcessTree.Snapshot() : nil
        let slots = arbiter.slotStatuses(now: now)
        let trees = slots.compactMap(\.pid).map { (root: $0, also: cgroups?.members(ofTree: $0) ?? []) }
        let open = processes.map { openConnections(trees, in: $0, now: now) } ?? [:]
        let rows = slots.map { slot in
            let also = slot.pid.map { cgroups?.members(ofTree: $0) ?? [] } ?? []
            return StatusReport.SlotRow(slot, rssBytes: slot.pid.flatMap { processes?.residentBytes(ofTree: $0, also: also) },
                                        openConnections: slot.pid.flatMap { open[$0] })
        }
        var job: StatusReport.Job?
        if let configuration = settings.cleanup, let cleanup = arbiter.cleanup {
            let last = arbiter.lastCleanupRun
            job = StatusReport.Job(
                schedule: configuration.scheduleText, zone: configuration.zone.name, nextRun: cleanup.nextRun.map(CleanupJob.format),
                runningPID: cleanup.runningPID, lastResult: last?.result, lastExitCode: last?.exitCode,
                lastDurationSeconds: last.map { Double($0.durationMilliseconds) / 1000 },
                lastFinished: last.map { CleanupJob.format($0.finishedAt) })
        }
        var report = StatusReport(
            supervisorPID: getpid(), summary: arbiter.statusLine, workers: arbiter.slotCount, ready: arbiter.readyCount,
            generation: arbiter.generation, retiring: arbiter.retiringCount, slots: rows, cleanup: job,
            budget: budgetLine, connectionsHeld: arbiter.connectionsHeld,
            connectionsPeak: arbiter.configuration.connections?.peak, listenerStop: listenerStop)
        report.listening = self.socket.description
        report.servingGenerations = arbiter.servingGenerations
        report.lastReload = lastReload(now: now)
        report.logLinesDropped = LogSink.shared.dropped
        report.orphansSignalled = arbiter.orphansSignalled
        report.orphansRunning = arbiter.orphanCount
        report.trees = cgroups.map { "cgroup per worker under \($0.base)" } ?? "process group per worker"
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
        let workers = arbiter.slotCount
        let steady = workers * arbiter.allotment
        // The arbiter's own decision for the next replacement, not a formula of this line's.
        let next = switch arbiter.surgeDecision {
        case .surge: "surge fits: new worker first"
        case .wait: "surge waits for a draining worker's connections"
        case .retireFirst: "surge does not fit: retire-first"
        }
        return "\(steady) of \(limits.steady) connections for the workers (\(workers) × \(arbiter.allotment)), "
            + "\(arbiter.connectionsHeld) allotted now, peak limit \(limits.peak) of \(budget.budget.maxConnections)"
            + (budget.budget.replicas > 1 ? " over \(budget.budget.replicas) replicas" : "")
            + "; " + next
    }

    /// `--max-worker-memory`: once a second, each ready worker's RSS (its whole tree's) against the limit.
    func checkMemory() {
        guard let due = nextMemoryCheck, clock.now >= due else { return }
        nextMemoryCheck = clock.now + .seconds(1)
        let targets = arbiter.memoryTargets
        guard !targets.isEmpty, procIsOurs else { return }
        // One read of /proc for all of them: a worker's memory is its whole tree's.
        let processes = ProcessTree.Snapshot()
        for pid in targets {
            guard let rss = processes.residentBytes(ofTree: pid, also: cgroups?.members(ofTree: pid) ?? []) else { continue }
            perform(arbiter.measured(pid: pid, residentBytes: rss, now: clock.now))
        }
    }

    /// Counts what the admin endpoint reports.
    func count(_ report: Machine.Report) {
        guard admin != nil else { return }
        switch report {
        case .restarted(_, let cause):
            metrics.restarts[cause.rawValue, default: 0] += 1
        case .heartbeatMissed:
            metrics.heartbeatKills += 1
        case .recycling(_, _, let reason, _):
            metrics.recycles[reason.kind, default: 0] += 1
        case .reloadStarted:
            metrics.reloads += 1
        case .reloadAborted:
            metrics.reloadsAborted += 1
        case .orphanSignalled:
            metrics.orphansSignalled += 1
        default:
            break
        }
    }

    /// Hands the admin endpoint's thread the current counters and the serving workers' sockets.
    func publishMetrics() {
        guard let admin else { return }
        metrics.workers = arbiter.slotCount
        metrics.ready = arbiter.readyCount
        metrics.retiring = arbiter.retiringCount
        metrics.generation = arbiter.generation
        metrics.connectionsHeld = arbiter.connectionsHeld
        metrics.orphansRunning = arbiter.orphanCount
        metrics.logLinesDropped = LogSink.shared.dropped
        metrics.connectionsSteadyLimit = arbiter.configuration.connections?.steady
        metrics.connectionsPeakLimit = arbiter.configuration.connections?.peak
        metrics.connectionsPerWorker = arbiter.allotment
        if let cleanup = arbiter.cleanup {
            metrics.cleanupRunning = cleanup.runningPID != nil
            metrics.cleanupLastSuccess = arbiter.lastCleanupSuccessAt.map { Double($0) / 1000 }
            metrics.cleanupLastDuration = arbiter.lastCleanupRun.map { Double($0.durationMilliseconds) / 1000 }
            metrics.cleanupLastExitCode = arbiter.lastCleanupRun?.exitCode
        }
        var endpoints: [(slot: Int, path: String)] = []
        for (slot, pid) in arbiter.servingWorkers {
            if let socket = metricsSockets[pid] { endpoints.append((slot, socket.path)) }
        }
        admin.publish(AdminEndpoint.Snapshot(metrics: metrics, endpoints: endpoints))
    }
}
