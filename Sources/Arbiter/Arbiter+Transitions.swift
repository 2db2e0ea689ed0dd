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

    func heartbeatSilence(of worker: Worker, now: Instant) -> Duration? {
        guard let timeout = heartbeatTimeout, let last = worker.lastHeartbeat else { return nil }
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
        worker.lastHeartbeat = now
        slots[slot].restartAt = nil
        var actions: [Action] = [.report(.ready(slot: slot, pid: worker.pid, after: worker.startedAt.duration(to: now)))]
        if role == .replacement, let old = slots[slot].worker {
            // Capacity never drops: the old worker drains only now that its successor accepts connections.
            let reason = "replaced by generation \(worker.generation)"
            actions += retire(pid: old.pid, slot: slot, signal: .terminate, reason: reason, now: now)
            slots[slot].replacement = nil
        }
        slots[slot].worker = worker
        return actions
    }

    /// Gives up on a live worker that stopped answering: ABRT (so it can dump where it hung), KILL shortly after.
    /// Its slot is refilled at once; a hang is not a boot failure.
    mutating func abandon(slot: Int, role: Slot.Role, reason: String, now: Instant) -> [Action] {
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
        var actions = retire(pid: worker.pid, slot: slot, signal: .abort, reason: reason, now: now)
        if role == .replacement { actions += abortReload(slot: slot, reason: reason) }
        return actions
    }

    /// Tells a worker to go and tracks it until it is reaped. TERM gets the graceful timeout, ABRT the
    /// abort grace, and KILL needs no deadline.
    mutating func retire(pid: Int32, slot: Int, signal: WorkerSignal, reason: String, now: Instant) -> [Action] {
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
        }
        retirees.append(Retiree(pid: pid, slot: slot, killAt: killAt, reason: reason))
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
        return [.report(.restartScheduled(slot: slot, after: delay, failures: failures))]
    }

    mutating func beginStop(fast: Bool, exitCode: Int32, now: Instant) -> [Action] {
        if case .stopping(_, let wasFast, let code) = phase {
            // A second TERM/INT, or QUIT during a graceful stop: no more waiting.
            guard fast, !wasFast else { return [.report(.ignored("already stopping"))] }
            phase = .stopping(deadline: now, fast: true, exitCode: code)
            var actions: [Action] = [.report(.stopping(fast: true, workers: childCount))]
            for index in retirees.indices where retirees[index].killAt != nil {
                retirees[index].killAt = nil
                actions.append(.signal(pid: retirees[index].pid, .kill))
            }
            return actions
        }
        guard phase != .stopped else { return [] }
        let deadline = fast ? now : now + configuration.gracefulTimeout
        phase = .stopping(deadline: deadline, fast: fast, exitCode: exitCode)
        reload = nil
        var actions: [Action] = [
            .report(.stopping(fast: fast, workers: childCount)),
            .notifyUpstream("STOPPING=1"),
        ]
        for slot in slots.indices {
            for worker in [slots[slot].worker, slots[slot].replacement].compactMap({ $0 }) {
                let reason = fast ? "fast stop" : "graceful timeout expired"
                actions += retire(pid: worker.pid, slot: slot, signal: fast ? .kill : .terminate, reason: reason, now: now)
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
        return actions
    }

    mutating func beginReload(now: Instant) -> [Action] {
        switch phase {
        case .booting: return [.report(.ignored("HUP while the first generation is booting"))]
        case .stopping, .stopped: return [.report(.ignored("HUP while stopping"))]
        case .running: break
        }
        var actions: [Action] = []
        if let reload {
            // A newer deploy while one rolls: start over with the newest code; booting replacements are dropped.
            for slot in slots.indices {
                if let replacement = slots[slot].replacement {
                    slots[slot].replacement = nil
                    actions += retire(pid: replacement.pid, slot: slot, signal: .terminate, reason: "superseded", now: now)
                }
            }
            actions.append(.report(.reloadAborted(slot: reload.slot, reason: "superseded by a newer HUP")))
        }
        generation += 1
        reload = RollingRestart(generation: generation, slot: 0, startedAt: now)
        actions.append(.report(.reloadStarted(generation: generation)))
        actions.append(.notifyUpstream("RELOADING=1"))
        return actions
    }

    mutating func abortReload(slot: Int, reason: String) -> [Action] {
        guard reload != nil else { return [] }
        reload = nil
        return [.report(.reloadAborted(slot: slot, reason: reason)), .notifyUpstream("READY=1")]
    }

    /// Brings the slots to what the phase wants: spawns where a slot is empty and its backoff is over,
    /// moves a rolling restart forward, and notices when the first generation is up or the last child gone.
    mutating func reconcile(now: Instant) -> [Action] {
        var actions: [Action] = []
        switch phase {
        case .stopped:
            return []
        case .stopping(_, _, let exitCode):
            if childCount == 0 {
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
            actions += advanceReload()
        }
        let status = statusLine
        if status != upstreamStatus {
            upstreamStatus = status
            actions.append(.notifyUpstream("STATUS=\(status)"))
        }
        return actions
    }

    private mutating func fillSlots(now: Instant) -> [Action] {
        var actions: [Action] = []
        for slot in slots.indices where slots[slot].worker == nil && slots[slot].pendingSpawn == nil {
            if let restartAt = slots[slot].restartAt, restartAt > now { continue }
            slots[slot].restartAt = nil
            slots[slot].pendingSpawn = .worker
            actions.append(.spawn(slot: slot, generation: generation))
        }
        return actions
    }

    private mutating func advanceReload() -> [Action] {
        guard var reload else { return [] }
        var actions: [Action] = []
        while reload.slot < slots.count {
            let slot = slots[reload.slot]
            guard let worker = slot.worker else { break }  // restarting; it comes back in the new generation
            if worker.generation >= reload.generation {
                if worker.isReady { reload.slot += 1; continue }
                break
            }
            if slot.replacement == nil, slot.pendingSpawn == nil {
                slots[reload.slot].pendingSpawn = .replacement
                actions.append(.spawn(slot: reload.slot, generation: reload.generation))
            }
            break
        }
        if reload.slot >= slots.count {
            self.reload = nil
            actions.append(.report(.reloadFinished(generation: reload.generation)))
            actions.append(.notifyUpstream("READY=1"))
        } else {
            self.reload = reload
        }
        return actions
    }
}

extension InstantProtocol {
    /// `advanced(by:)` as the operator the rest of the arbiter reads more easily.
    static func + (instant: Self, duration: Duration) -> Self {
        instant.advanced(by: duration)
    }
}
