extension Arbiter {
    enum Location: Equatable {
        case worker(Int)
        case replacement(Int)
        case retiree(Int)
    }

    /// Linear on purpose: tens of workers at most, and no second index to keep in step.
    func locate(_ pid: Int32) -> Location? {
        for (index, slot) in slots.enumerated() {
            if slot.worker?.pid == pid { return .worker(index) }
            if slot.replacement?.pid == pid { return .replacement(index) }
        }
        return retirees.firstIndex { $0.pid == pid }.map(Location.retiree)
    }

    mutating func modify(slot: Int, role: Slot.Role, _ body: (inout Worker) -> Void) {
        switch role {
        case .worker: if var worker = slots[slot].worker { body(&worker); slots[slot].worker = worker }
        case .replacement: if var worker = slots[slot].replacement { body(&worker); slots[slot].replacement = worker }
        }
    }

    var heartbeatTimeout: Duration? {
        configuration.readiness == .notify ? configuration.heartbeatTimeout : nil
    }

    /// How long a ready worker whose heartbeat is armed has been silent, once that reaches the timeout.
    func heartbeatSilence(of worker: Worker, now: Instant) -> Duration? {
        guard worker.isReady, let timeout = heartbeatTimeout, let last = worker.lastHeartbeat else { return nil }
        let silence = last.duration(to: now)
        return silence >= timeout ? silence : nil
    }

    mutating func becameReady(slot: Int, role: Slot.Role, now: Instant) -> [Action] {
        var worker: Worker
        switch role {
        case .worker: worker = slots[slot].worker!
        case .replacement: worker = slots[slot].replacement!
        }
        guard !worker.isReady else { return [] }
        worker.readyAt = now
        // The heartbeat is judged from READY on when it is armed (a WATCHDOG=1 came during the boot) or required
        // (`--require-heartbeat`, systemd's WatchdogSec=); otherwise the first WATCHDOG=1 arms it.
        if worker.lastHeartbeat != nil || configuration.requireHeartbeat { worker.lastHeartbeat = now }
        slots[slot].restartAt = nil
        var actions: [Action] = [.report(.ready(slot: slot, pid: worker.pid, after: worker.startedAt.duration(to: now)))]
        if role == .replacement {
            // The successor moves into the slot whether or not its predecessor is still there: one that crashed
            // (or was killed) while the successor booted is already reaped, and left in `replacement` the new
            // worker was counted twice, signalled twice at the stop, and the stop never ended.
            slots[slot].replacement = nil
            if let old = slots[slot].worker {
                // Capacity never drops: the old worker drains only now that its successor accepts connections.
                let reason = "replaced by generation \(worker.generation)"
                actions += retire(pid: old.pid, slot: slot, signal: .terminate, reason: reason, connections: old.connections, now: now)
            }
        }
        slots[slot].worker = worker
        return actions
    }

    /// Counts a restart of `slot`'s worker, where `status` and `/metrics` both read it.
    mutating func restarted(slot: Int, cause: RestartCause) -> Action {
        slots[slot].restarts += 1
        return .report(.restarted(slot: slot, cause: cause))
    }

    /// Gives up on a live worker that stopped answering: ABRT (so it can dump where it hung), KILL shortly after.
    /// Its slot is refilled at once; a hang is not a boot failure.
    mutating func abandon(slot: Int, role: Slot.Role, reason: String, cause: RestartCause, now: Instant) -> [Action] {
        let worker: Worker?
        switch role {
        case .worker:
            worker = slots[slot].worker
            slots[slot].worker = nil
        case .replacement:
            worker = slots[slot].replacement
            slots[slot].replacement = nil
        }
        guard let worker else { return [] }
        var actions = retire(pid: worker.pid, slot: slot, signal: .abort, reason: reason, connections: worker.connections, now: now)
        switch role {
        case .worker: actions.append(restarted(slot: slot, cause: cause))
        case .replacement: actions += abortReplacement(slot: slot, reason: reason, now: now)
        }
        return actions
    }

    /// Tells a worker to go and tracks it until it is reaped. TERM gets the graceful timeout, ABRT the
    /// abort grace, and KILL needs no deadline.
    mutating func retire(pid: Int32, slot: Int, signal: WorkerSignal, reason: String, connections: Int = 0,
                         now: Instant) -> [Action] {
        let killAt: Instant?
        switch signal {
        case .terminate:
            if case .stopping(let deadline, _, _) = phase {
                killAt = deadline
            } else {
                killAt = now + configuration.gracefulTimeout
            }
        case .abort: killAt = now + configuration.abortGrace
        case .kill: killAt = nil
        case .user: preconditionFailure("a relayed USR signal does not retire a worker")
        }
        retirees.append(Retiree(pid: pid, slot: slot, killAt: killAt, reason: reason, connections: connections))
        return [.signal(pid: pid, signal)]
    }

    /// A worker of `slot` ended before READY.
    mutating func failure(slot: Int, now: Instant) -> [Action] {
        slots[slot].failures += 1
        let failures = slots[slot].failures
        if case .booting = phase, failures >= configuration.bootAttempts {
            return [.report(.bootFailed(slot: slot, attempts: failures))] + beginStop(fast: false, exitCode: BootFailure.exitCode, now: now)
        }
        let delay = configuration.backoff.delay(afterFailures: failures)
        slots[slot].restartAt = now + delay
        var actions: [Action] = [.report(.restartScheduled(slot: slot, after: delay, failures: failures))]
        if reload?.slot == slot {
            // A retire-first restart's new worker failed: the old one is gone already, so this slot retries
            // with backoff, and the other slots keep their old workers rather than meet the same fate.
            actions += abortReload(slot: slot, reason: "the new worker of slot \(slot) failed before it was ready", now: now)
        }
        return actions
    }

    mutating func beginStop(fast: Bool, exitCode: Int32, now: Instant) -> [Action] {
        if case .stopping(_, let wasFast, let code) = phase {
            // A second TERM/INT, or QUIT during a graceful stop: no more waiting.
            guard fast, !wasFast else { return [.report(.ignored("already stopping"))] }
            phase = .stopping(deadline: now, fast: true, exitCode: code)
            var actions = stopCleanup(fast: true) + [.report(.stopping(fast: true, workers: childCount))]
            for index in retirees.indices where retirees[index].killAt != nil {
                retirees[index].killAt = nil
                actions.append(.signal(pid: retirees[index].pid, .kill))
            }
            return actions + bringOrphans(toDeadline: now, fast: true)
        }
        guard phase != .stopped else { return [] }
        let deadline = fast ? now : now + configuration.gracefulTimeout
        phase = .stopping(deadline: deadline, fast: fast, exitCode: exitCode)
        if reload != nil { endReload(.aborted("the supervisor is stopping"), now: now) }
        reload = nil
        recycling = nil
        // The one stop rule: the listener closes before any worker hears of it (from then on the kernel queues
        // nothing new for a draining worker to reset), and the cleanup job stops with the workers.
        var actions: [Action] = [.stopAccepting] + stopCleanup(fast: fast) + [
            .report(.stopping(fast: fast, workers: childCount)),
            .notifyUpstream("STOPPING=1"),
        ]
        for slot in slots.indices {
            for worker in [slots[slot].worker, slots[slot].replacement].compactMap({ $0 }) {
                let reason = fast ? "fast stop" : "graceful timeout expired"
                actions += retire(pid: worker.pid, slot: slot, signal: fast ? .kill : .terminate, reason: reason,
                                  connections: worker.connections, now: now)
            }
            slots[slot].worker = nil
            slots[slot].replacement = nil
            slots[slot].restartAt = nil
        }
        for index in retirees.indices {
            if fast, retirees[index].killAt != nil {
                retirees[index].killAt = nil
                actions.append(.signal(pid: retirees[index].pid, .kill))
            } else if let killAt = retirees[index].killAt, killAt > deadline {
                retirees[index].killAt = deadline
            }
        }
        return actions + bringOrphans(toDeadline: deadline, fast: fast)
    }

    mutating func beginReload(now: Instant, resize: Bool = false) -> [Action] {
        if let refusal = reloadRefusal { return [.report(.ignored(refusal))] }
        var actions: [Action] = []
        if let reload {
            // A newer deploy while one rolls: start over with the newest code; booting replacements are dropped.
            for slot in slots.indices {
                if let replacement = slots[slot].replacement {
                    slots[slot].replacement = nil
                    actions += retire(pid: replacement.pid, slot: slot, signal: .terminate, reason: "superseded",
                                      connections: replacement.connections, now: now)
                }
            }
            actions.append(.report(.reloadAborted(slot: reload.slot, reason: "superseded by a newer HUP")))
            endReload(.aborted("superseded by generation \(generation + 1)"), now: now)
        }
        if let recycling {
            // The reload replaces every worker, this one too.
            self.recycling = nil
            if let replacement = slots[recycling.slot].replacement {
                slots[recycling.slot].replacement = nil
                actions += retire(pid: replacement.pid, slot: recycling.slot, signal: .terminate, reason: "superseded",
                                  connections: replacement.connections, now: now)
            }
        }
        generation += 1
        reload = RollingRestart(generation: generation, slot: 0, startedAt: now, resize: resize)
        lastReload = ReloadRecord(generation: generation, startedAt: now, outcome: .rolling)
        actions.append(.report(.reloadStarted(generation: generation)))
        actions.append(.notifyUpstream("RELOADING=1"))
        return actions
    }

    /// Records how the running reload ended.
    mutating func endReload(_ outcome: ReloadRecord.Outcome, now: Instant) {
        guard lastReload?.outcome == .rolling else { return }
        lastReload?.outcome = outcome
        lastReload?.endedAt = now
    }

    mutating func abortReload(slot: Int, reason: String, now: Instant) -> [Action] {
        guard reload != nil else { return [] }
        reload = nil
        endReload(.aborted(reason), now: now)
        return [.report(.reloadAborted(slot: slot, reason: reason)), .notifyUpstream("READY=1")]
    }

    /// A surge's new worker failed: the reload stops, or the recycle is tried again later; the old worker
    /// keeps serving either way.
    mutating func abortReplacement(slot: Int, reason: String, now: Instant) -> [Action] {
        if let recycling, recycling.slot == slot {
            self.recycling = nil
            let retryAt = now + configuration.recycleRetryDelay
            modify(slot: slot, role: .worker) { $0.recycleNotBefore = retryAt }
            return [.report(.recycleAborted(slot: slot, reason: reason))]
        }
        return abortReload(slot: slot, reason: reason, now: now)
    }

    /// A recycle that was due as soon as the worker was up waits, the wait doubling for each such worker of the
    /// slot in a row: replacing it at once would start a successor due just as soon, in a loop of boots (44
    /// memory recycles in 20 s, each warming new pools). `backoff` says from what to what.
    mutating func deferEarlyRecycle(slot: Int, pid: Int32, why: String, backoff: Backoff, now: Instant) -> [Action] {
        slots[slot].earlyRecycles += 1
        let delay = backoff.delay(afterFailures: slots[slot].earlyRecycles)
        modify(slot: slot, role: .worker) { $0.recycleNotBefore = now + delay }
        return [.report(.recycleDeferred(slot: slot, pid: pid, why: why, retryAfter: delay))]
    }

    /// Marks a worker for replacement; the first reason is kept and reported once.
    mutating func requestRecycle(slot: Int, role: Slot.Role, reason: RecycleReason) -> [Action] {
        var report: Action?
        modify(slot: slot, role: role) { worker in
            guard worker.recycle == nil else { return }
            worker.recycle = reason
            report = .report(.recycleRequested(slot: slot, pid: worker.pid, reason: reason))
        }
        return report.map { [$0] } ?? []
    }

    /// Whether one more worker with `connections` fits under the peak, counting everything alive.
    func canAfford(_ connections: Int) -> Bool {
        guard let limits = configuration.connections else { return true }
        return connectionsHeld + connections <= limits.peak
    }

    /// Brings the slots to what the phase wants: spawns where a slot is empty and its backoff is over,
    /// moves a rolling restart forward, and notices when the first generation is up or the last child gone.
    mutating func reconcile(now: Instant) -> [Action] {
        var actions: [Action] = []
        switch phase {
        case .stopped:
            return []
        case .stopping(_, _, let exitCode):
            // Nothing the supervisor started may outlive it: orphans are waited for like workers.
            // A spawn still out counts too: a stop that began while the shell ran a list of spawns (the first
            // failed the boot) is answered for the rest, and the worker each one started is stopped in turn.
            // And the cleanup job: a second stop signal meanwhile is a fast stop for it.
            if childCount == 0, orphans.isEmpty, slots.allSatisfy({ $0.pendingSpawn == nil }), cleanup?.isIdle ?? true {
                phase = .stopped
                return [.exit(code: exitCode)]
            }
        case .booting(let since):
            actions += fillSlots(now: now)
            if slots.allSatisfy({ $0.worker?.isReady == true }) {
                phase = .running
                actions.append(.report(.allReady(workers: slots.count, after: since.duration(to: now))))
                actions.append(.notifyUpstream("READY=1"))
            }
        case .running:
            actions += fillSlots(now: now)
            actions += advanceReload(now: now)
            actions += advanceRecycle(now: now)
        }
        // The supervisor's manager sees the job too.
        let status = statusLine + (cleanupStatus.map { "; " + $0 } ?? "")
        if status != upstreamStatus {
            upstreamStatus = status
            actions.append(.notifyUpstream("STATUS=\(status)"))
        }
        return actions
    }

    private mutating func fillSlots(now: Instant) -> [Action] {
        var actions: [Action] = []
        // A slot whose replacement is booting is filled by it.
        for slot in slots.indices
        where slots[slot].worker == nil && slots[slot].pendingSpawn == nil && slots[slot].replacement == nil {
            if let restartAt = slots[slot].restartAt, restartAt > now { continue }
            guard canAfford(allotment) else {
                // A draining or hung worker still holds its connections; the exit that frees them comes back here.
                if !slots[slot].waitingForConnections {
                    slots[slot].waitingForConnections = true
                    actions.append(.report(.waitingForConnections(
                        slot: slot, needed: allotment, held: connectionsHeld, peak: configuration.connections?.peak ?? 0)))
                }
                continue
            }
            slots[slot].waitingForConnections = false
            slots[slot].restartAt = nil
            slots[slot].pendingSpawn = .worker
            slots[slot].pendingConnections = allotment
            actions.append(.spawn(slot: slot, generation: generation, connections: allotment))
        }
        return actions
    }

    private mutating func advanceReload(now: Instant) -> [Action] {
        guard var reload else { return [] }
        var actions: [Action] = []
        while reload.slot < slots.count {
            let slot = slots[reload.slot]
            guard let worker = slot.worker else { break }  // restarting; it comes back in the new generation
            if worker.generation >= reload.generation {
                if worker.isReady { reload.slot += 1; continue }
                break
            }
            if slot.replacement == nil, slot.pendingSpawn == nil, surgeDecision != .wait {
                actions += replace(worker, slot: reload.slot, generation: reload.generation,
                                   reason: reload.resize ? "resized" : "replaced by generation \(reload.generation)", now: now)
            }
            break
        }
        if reload.slot >= slots.count {
            self.reload = nil
            endReload(.finished, now: now)
            actions.append(.report(.reloadFinished(generation: reload.generation)))
            actions.append(.notifyUpstream("READY=1"))
        } else {
            self.reload = reload
        }
        return actions
    }
}

extension Arbiter {
    /// Starts one recycle when none is running and no reload is rolling (a reload replaces every worker
    /// anyway), and notices when the slot's new worker is ready.
    mutating func advanceRecycle(now: Instant) -> [Action] {
        var actions: [Action] = []
        if let recycling {
            if recycling.slot < slots.count {
                guard let worker = slots[recycling.slot].worker, worker.pid != recycling.pid, worker.isReady else { return [] }
                actions.append(.report(.recycled(slot: recycling.slot, pid: worker.pid,
                                                 after: recycling.startedAt.duration(to: now))))
            }
            self.recycling = nil
        }
        guard reload == nil else { return actions }
        let candidate = slots.indices.first { index in
            let slot = slots[index]
            guard let worker = slot.worker, worker.isReady, worker.recycle != nil, !worker.draining,
                slot.replacement == nil, slot.pendingSpawn == nil
            else { return false }
            return worker.recycleNotBefore.map { $0 <= now } ?? true
        }
        guard let index = candidate, let worker = slots[index].worker, let reason = worker.recycle,
            surgeDecision != .wait
        else { return actions }
        let surge = surgeDecision == .surge
        recycling = Recycle(slot: index, pid: worker.pid, reason: reason, surge: surge, startedAt: now)
        return actions + [.report(.recycling(slot: index, pid: worker.pid, reason: reason, surge: surge))]
            + replace(worker, slot: index, generation: generation, reason: "recycled: \(reason)", now: now)
    }

    /// How the next replacement (a reload's, a recycle's) starts: `status` shows this, the decision itself.
    package enum SurgeDecision: Sendable {
        /// Its new worker first: the budget affords both at once.
        case surge
        /// Not yet: only workers still draining stand in the way; a surge follows once they are gone.
        case wait
        /// The old worker first, its successor once its connections are released.
        case retireFirst
    }

    /// Whether the next replacement may start its new worker first. When only workers still draining stand in
    /// the way, it waits for them: they are gone within the graceful timeout, and a surge then keeps every slot
    /// serving, where retiring first now would give up a slot for nothing.
    package var surgeDecision: SurgeDecision {
        if canAfford(allotment) { return .surge }
        guard let limits = configuration.connections else { return .surge }
        let draining = retirees.reduce(0) { $0 + $1.connections }
        return connectionsHeld - draining + allotment <= limits.peak ? .wait : .retireFirst
    }

    /// Replaces a serving worker: its successor first when the connection budget affords both at once (capacity
    /// never dips), otherwise the old one first, and the slot is refilled once its connections are released.
    mutating func replace(_ worker: Worker, slot: Int, generation: Int, reason: String, now: Instant) -> [Action] {
        if canAfford(allotment) {
            slots[slot].pendingSpawn = .replacement
            slots[slot].pendingConnections = allotment
            return [.spawn(slot: slot, generation: generation, connections: allotment)]
        }
        let report = Report.retireFirst(slot: slot, pid: worker.pid, needed: allotment, held: connectionsHeld,
                                        peak: configuration.connections?.peak ?? 0)
        slots[slot].worker = nil
        return [.report(report)]
            + retire(pid: worker.pid, slot: slot, signal: .terminate, reason: reason, connections: worker.connections, now: now)
    }
}

extension InstantProtocol {
    /// `advanced(by:)` as the operator the rest of the arbiter reads more easily.
    static func + (instant: Self, duration: Duration) -> Self {
        instant.advanced(by: duration)
    }
}
