/// The supervisor's brain: worker slots, generations, restarts with backoff, heartbeats, rolling restarts
/// and the stop sequence, as a plain value.
///
/// Every input is an event with the current time; every output is a list of `Action`s for the shell to run
/// in order. Nothing here reads a clock, forks or signals, so every scenario (a crash loop, a heartbeat
/// that stops, a HUP whose new worker never gets ready) is a unit test with a fake clock.
package struct Arbiter<Instant: InstantProtocol & Sendable>: Sendable where Instant.Duration == Duration {
    // The state is the arbiter's alone: the shell reads what it needs through the queries below (`slotStatuses`,
    // `servingWorkers`, `memoryTargets`, the counts) and acts only on the actions it is given. (Internal rather
    // than private: the transitions are spread over this type's files, and Swift's private is per file.)
    package internal(set) var configuration: Configuration
    var phase: Phase
    var slots: [Slot]
    var retirees: [Retiree] = []
    /// Processes of gone workers' trees, signalled and not yet reaped.
    var orphans: [Orphan] = []
    /// Orphans found and signalled since start, for `status`, the log and `/metrics`.
    package internal(set) var orphansSignalled = 0
    /// The generation new workers get; a HUP makes a new one.
    package internal(set) var generation = 1
    var reload: RollingRestart?
    /// The last rolling restart, running or ended.
    package internal(set) var lastReload: ReloadRecord?
    var recycling: Recycle?
    /// Each worker's pool ceiling as last computed (`DB_POOL_SIZE=auto` changes it with the worker count).
    package internal(set) var allotment = 0
    /// Senders of notify datagrams that are not our workers; each is reported once.
    var strangers = OncePerSender()
    /// Senders of malformed notify datagrams; each is reported once, so a buggy worker cannot flood the log.
    var malformedSenders = OncePerSender()
    /// The last workers reaped: their final datagrams (STOPPING=1, a STATUS) can be read after their exit, and
    /// they are no strangers.
    var recentlyReaped: [Int32] = []
    var upstreamStatus: String?

    /// The cleanup job, a sub-machine: its events come through the arbiter, which routes them.
    package internal(set) var cleanup: CleanupJob?
    /// The wall clock as of the last `tick`, for the cleanup job (whose schedule is wall-clock time).
    var wall: Int64 = 0
    /// How the running cleanup ended, for its run's record.
    var lastCleanupExit: ExitStatus?
    package internal(set) var lastCleanupRun: CleanupRun?
    package internal(set) var lastCleanupSuccessAt: Int64?

    package init(configuration: Configuration, now: Instant, cleanup: CleanupJob? = nil) {
        self.configuration = configuration
        self.cleanup = cleanup
        self.phase = .booting(since: now)
        self.slots = Array(repeating: Slot(), count: max(1, configuration.workers))
        self.allotment = configuration.connections?.allotment(workers: slots.count) ?? 0
    }

    // MARK: Inputs

    /// Spawns the first generation.
    package mutating func start(now: Instant) -> [Action] {
        reconcile(now: now)
    }

    /// The shell ran `.spawn(slot:generation:)` and the worker process exists.
    package mutating func spawned(slot: Int, generation: Int, pid: Int32, now: Instant) -> [Action] {
        var actions: [Action] = [.report(.spawned(slot: slot, pid: pid, generation: generation))]
        guard slot < slots.count, let role = slots[slot].pendingSpawn, !isStopping else {
            // The slot went away (TTOU, stop) while the spawn was out: the worker is not wanted.
            let connections = slot < slots.count ? slots[slot].pendingConnections : allotment
            if slot < slots.count { slots[slot].pendingSpawn = nil; slots[slot].pendingConnections = 0 }
            actions += retire(pid: pid, slot: slot, signal: .terminate, reason: "no longer wanted",
                              connections: connections, now: now)
            return actions + reconcile(now: now)
        }
        slots[slot].pendingSpawn = nil
        var worker = Worker(pid: pid, generation: generation, startedAt: now)
        worker.connections = slots[slot].pendingConnections
        slots[slot].pendingConnections = 0
        switch role {
        case .worker: slots[slot].worker = worker
        case .replacement: slots[slot].replacement = worker
        }
        if configuration.readiness == .onSpawn {
            actions += becameReady(slot: slot, role: role, now: now)
        }
        // Otherwise `tick` makes it ready once it has lived `ready-after` (or READY=1 does).
        return actions + reconcile(now: now)
    }

    /// The shell could not start the worker (fork or exec failed).
    package mutating func spawnFailed(slot: Int, generation: Int, error: String, now: Instant) -> [Action] {
        guard slot < slots.count, let role = slots[slot].pendingSpawn else { return reconcile(now: now) }
        slots[slot].pendingSpawn = nil
        slots[slot].pendingConnections = 0
        var actions: [Action] = [.report(.spawnFailed(slot: slot, error: error))]
        guard !isStopping else { return actions + reconcile(now: now) }
        switch role {
        case .worker: actions += failure(slot: slot, now: now)
        case .replacement: actions += abortReplacement(slot: slot, reason: "spawn failed: \(error)", now: now)
        }
        return actions + reconcile(now: now)
    }

    /// `waitpid` reaped `pid`. Unknown pids are orphans re-parented to us (PID 1 or subreaper duty).
    package mutating func exited(pid: Int32, status: ExitStatus, now: Instant) -> [Action] {
        if cleanup?.owns(pid) == true {
            lastCleanupExit = status
            return cleanupActions(cleanup!.exited(pid: pid, status: status.shellCode, now: wall)) + reconcile(now: now)
        }
        var actions: [Action] = []
        if locate(pid) != nil {
            if recentlyReaped.count >= 64 { recentlyReaped.removeFirst() }
            recentlyReaped.append(pid)
        }
        switch locate(pid) {
        case nil:
            // An orphan the shell found (and signalled), or a zombie that was re-parented and reaped at once.
            orphans.removeAll { $0.pid == pid }
            actions.append(.report(.orphanReaped(pid: pid, status: status)))
        case .retiree(let index):
            let retiree = retirees.remove(at: index)
            actions.append(.report(.exited(slot: retiree.slot, pid: pid, status: status, expected: true)))
        case .worker(let slot):
            let worker = slots[slot].worker!
            slots[slot].worker = nil
            actions.append(.report(.exited(slot: slot, pid: pid, status: status, expected: false)))
            // A worker that chose to end (exit 0) is replaced like any other, but it did not fail.
            if status != .exited(0) { actions.append(restarted(slot: slot, cause: .exit)) }
            if worker.isReady, worker.startedAt.duration(to: now) >= configuration.minimumUptime {
                slots[slot].failures = 0  // it served for a while: replace it at once
            } else if !worker.isReady, case .booting = phase, status == .exited(BootFailure.configurationExitCode) {
                actions.append(.report(.workerRefusedConfiguration(slot: slot, pid: pid)))
                actions += beginStop(fast: false, exitCode: BootFailure.configurationExitCode, now: now)
            } else {
                actions += failure(slot: slot, now: now)
            }
        case .replacement(let slot):
            slots[slot].replacement = nil
            actions.append(.report(.exited(slot: slot, pid: pid, status: status, expected: false)))
            actions += abortReplacement(slot: slot, reason: "new worker pid \(pid) ended (\(status)) before it was ready", now: now)
        }
        return actions + reconcile(now: now)
    }

    /// A datagram from `pid` was cut or had lines that are not `KEY=value`: reported once per sender.
    package mutating func malformedNotify(from pid: Int32) -> [Action] {
        malformedSenders.isFirst(pid) ? [.report(.malformedNotify(pid: pid))] : []
    }

    /// A datagram arrived on the notify socket from `pid` (as `SCM_CREDENTIALS` tells).
    ///
    /// - Parameter processGroup: the sender's process group. A process in a worker's group speaks for that worker,
    ///   as systemd's `NotifyAccess=all` accepts any process of the service: the server behind a shell wrapper
    ///   that did not `exec`, or a worker of a master process that sends `WATCHDOG=1` from its own event loop.
    package mutating func notified(pid: Int32, processGroup: Int32? = nil, message: NotifyMessage, now: Instant) -> [Action] {
        let role: Slot.Role
        let slot: Int
        var location = locate(pid)
        if location == nil, let processGroup, processGroup > 1, processGroup != pid {
            switch locate(processGroup) {
            case .worker?, .replacement?: location = locate(processGroup)
            case .retiree?, nil: break
            }
        }
        switch location {
        case nil:
            guard !recentlyReaped.contains(pid), strangers.isFirst(pid) else { return [] }
            return [.report(.strangerNotify(pid: pid))]
        case .retiree:
            return []
        case .worker(let index):
            (slot, role) = (index, .worker)
        case .replacement(let index):
            (slot, role) = (index, .replacement)
        }
        var actions: [Action] = []
        if let reason = message.recycle {
            let requested = requestRecycle(slot: slot, role: role, reason: RecycleReason(notified: reason))
            actions += requested
            if !requested.isEmpty, role == .worker, let worker = slots[slot].worker {
                if let readyAt = worker.readyAt, readyAt.duration(to: now) >= configuration.minimumUptime {
                    slots[slot].earlyRecycles = 0
                } else {
                    // Replaced at once, its successor would ask again as soon as it is up: a loop of boots. The
                    // restart backoff (100 ms doubling to 30 s): a `--max-requests` reached within a second under
                    // heavy load is legitimate, and is then honoured at most every 30 s per slot.
                    let why = "the worker asked to be recycled (\(reason)) within \(configuration.minimumUptime) of READY"
                    actions += deferEarlyRecycle(slot: slot, pid: pid, why: why, backoff: configuration.backoff, now: now)
                }
            }
        }
        modify(slot: slot, role: role) { worker in
            if let status = message.status { worker.status = status }
            if message.stopping { worker.draining = true }
            // The first WATCHDOG=1 arms the heartbeat timeout (from READY on, if it came before): a worker that
            // never sends one is held to its exit and its readiness, as under systemd without WatchdogSec=.
            if message.watchdog { worker.lastHeartbeat = now }
        }
        if message.ready, configuration.readiness == .notify {
            actions += becameReady(slot: slot, role: role, now: now)
        }
        if message.watchdogTrigger {
            actions += abandon(slot: slot, role: role, reason: "asked for WATCHDOG=trigger", cause: .watchdog, now: now)
        }
        return actions + reconcile(now: now)
    }

    /// A signal the supervisor received (through signalfd, never in a handler).
    package mutating func received(_ signal: ControlSignal, now: Instant) -> [Action] {
        var actions: [Action] = []
        switch signal {
        case .terminate, .interrupt:
            actions += beginStop(fast: isStopping, exitCode: 0, now: now)
        case .quit:
            actions += beginStop(fast: true, exitCode: 0, now: now)
        case .hangup:
            actions += beginReload(now: now)
        case .increase:
            guard !isStopping else { return [.report(.ignored("TTIN while stopping"))] }
            return scale(to: slots.count + 1, by: "TTIN", now: now)
        case .decrease:
            guard !isStopping else { return [.report(.ignored("TTOU while stopping"))] }
            guard slots.count > 1 else { return [.report(.ignored("TTOU: already at 1 worker, the minimum"))] }
            return scale(to: slots.count - 1, by: "TTOU", now: now)
        case .user(let user):
            return relay(user)
        }
        return actions + reconcile(now: now)
    }

    /// How far past its timeout a wait of the loop may end before it counts as a stall: a loaded machine wakes
    /// a little late all the time, a stopped or starved supervisor by far more.
    package static var stallThreshold: Duration { .milliseconds(500) }

    /// Whether a wait for at most `expected` that took `waited` was a stall of the supervisor (`resumed(afterStall:)`).
    package func isStall(waited: Duration, expected: Duration) -> Bool {
        waited - expected > Self.stallThreshold
    }

    /// The supervisor's loop did not run for `duration` (SIGSTOP and SIGCONT, a debugger, a write to a blocked
    /// log): heartbeats sent meanwhile could not be read, and were perhaps not even sent, since a full notify
    /// queue holds the senders back. The silence is the supervisor's, so no worker is judged on it: every ready
    /// worker's heartbeat deadline starts over. Without this, `kill -STOP` then `kill -CONT` of the supervisor
    /// aborted every worker.
    package mutating func resumed(afterStall duration: Duration, now: Instant) -> [Action] {
        for slot in slots.indices {
            for role in [Slot.Role.worker, .replacement] {
                modify(slot: slot, role: role) { worker in
                    if worker.isReady, worker.lastHeartbeat != nil { worker.lastHeartbeat = now }
                }
            }
        }
        return [.report(.stalled(duration))]
    }

    /// USR1/USR2: to every ready worker if the operator asked for it, else nowhere. A worker still booting may
    /// not have its handler yet and a draining one may have dropped it; for either the default action would
    /// end it, so they are spared.
    private func relay(_ signal: UserSignal) -> [Action] {
        guard configuration.relayedSignals.contains(signal) else {
            return [.report(.ignored("SIG\(signal.rawValue) is not relayed to the workers (start with --relay-signal \(signal.rawValue) to relay it)"))]
        }
        let live = slots.flatMap { [$0.worker, $0.replacement].compactMap { $0 } }
        let ready = live.filter { $0.isReady && !$0.draining }
        return ready.map { .signal(pid: $0.pid, .user(signal)) }
            + [.report(.relayed(signal, workers: ready.count, spared: live.count - ready.count + retirees.count))]
    }

    /// The operator asked for `workers` slots (`supervisor scale`, or TTIN/TTOU one at a time). More workers
    /// than the connection budget allows are refused, with a `.refused` report that says why.
    package mutating func scale(to workers: Int, by source: String = "scale", now: Instant) -> [Action] {
        if let refusal = scaleRefusal(to: workers, by: source) { return [.report(.refused(refusal))] }
        guard workers != slots.count else { return [.report(.scaled(workers: workers))] }
        let newAllotment = configuration.connections?.allotment(workers: workers) ?? allotment
        var actions: [Action] = []
        while slots.count > workers {
            let slot = slots.count - 1
            let removed = slots.removeLast()
            for worker in [removed.worker, removed.replacement].compactMap({ $0 }) {
                actions += retire(pid: worker.pid, slot: slot, signal: .terminate, reason: "scaled down",
                                  connections: worker.connections, now: now)
            }
            if recycling?.slot == slot { recycling = nil }
        }
        while slots.count < workers { slots.append(Slot()) }
        actions.append(.report(.scaled(workers: slots.count)))
        if newAllotment != allotment {
            // Smaller pools for more workers (or larger for fewer): every worker is replaced with its new
            // pool, one at a time, and the budget decides surge or retire-first for each.
            allotment = newAllotment
            actions.append(.report(.resizing(workers: slots.count, connectionsPerWorker: newAllotment)))
            actions += beginReload(now: now, resize: true)
        }
        return actions + reconcile(now: now)
    }

    /// The shell measured a worker's resident memory (`memoryTargets`, once a second): over
    /// `maxWorkerMemory` it is replaced like a worker that asked to be recycled.
    ///
    /// A worker over the limit at its first measurement says the limit is below what a fresh worker needs:
    /// replacing it at once would only start another one over it (the probes saw 44 recycles in 20 s, each
    /// warming new pools). Such recycles back off, from `recycleRetryDelay` doubling up to 5 minutes, with a
    /// warning each time; a worker measured under the limit ends the backoff.
    package mutating func measured(pid: Int32, residentBytes: Int, now: Instant) -> [Action] {
        guard let limit = configuration.maxWorkerMemory, case .worker(let slot) = locate(pid),
            let worker = slots[slot].worker, worker.isReady, worker.recycle == nil
        else { return [] }
        guard residentBytes > limit else {
            if !worker.measuredUnderLimit {
                modify(slot: slot, role: .worker) { $0.measuredUnderLimit = true }
                slots[slot].earlyRecycles = 0
            }
            return []
        }
        let reason = RecycleReason.memory(residentBytes: residentBytes, limitBytes: limit)
        var actions = requestRecycle(slot: slot, role: .worker, reason: reason)
        if !worker.measuredUnderLimit {
            let why = "a fresh worker is already over --max-worker-memory (\(RecycleReason.megabytes(residentBytes)) > "
                + "\(RecycleReason.megabytes(limit))): the limit is too low for this worker"
            // A fresh worker's memory will not shrink by replacing it: 10 s, doubling up to 5 minutes.
            let backoff = Backoff(base: configuration.recycleRetryDelay, cap: .seconds(300))
            actions += deferEarlyRecycle(slot: slot, pid: pid, why: why, backoff: backoff, now: now)
        }
        return actions + reconcile(now: now)
    }

    /// An operator's command, with what it came to: refused (and why), or accepted.
    package mutating func command(_ command: OperatorCommand, now: Instant) -> (CommandOutcome, [Action]) {
        switch command {
        case .scale(let workers):
            if let refusal = scaleRefusal(to: workers, by: "scale") { return (.refused(refusal), [.report(.refused(refusal))]) }
            let noun = workers == 1 ? "worker" : "workers"
            let what = workers == slots.count ? "already \(workers) \(noun)" : "scaling to \(workers) \(noun)"
            return (.accepted(what), scale(to: workers, by: "scale", now: now))
        case .reload:
            if let refusal = reloadRefusal { return (.refused(refusal), [.report(.ignored(refusal))]) }
            let actions = beginReload(now: now) + reconcile(now: now)
            return (.accepted("rolling restart to generation \(generation)"), actions)
        case .stop:
            // A repeated `stop` (a deploy script retrying after its --timeout) waits on the stop under way: unlike a
            // second TERM, it never turns a graceful stop into a fast one.
            if isStopping { return (.accepted("already stopping"), []) }
            return (.accepted("stopping"), received(.terminate, now: now))
        }
    }

    /// The wall clock, given before the events of a wake-up are fed in: a cleanup run's exit is stamped with it
    /// (its duration, its finish time), and the last tick can be up to the loop's whole wait old.
    package mutating func observe(wall: Int64) { self.wall = wall }

    /// Time passed: boot timeouts, missed heartbeats, kill deadlines and restart delays.
    /// - Parameter wall: the wall clock in milliseconds since the epoch, for the cleanup job's schedule; the
    ///   arbiter keeps the last one it was given for the job's other events.
    package mutating func tick(now: Instant, wall: Int64? = nil) -> [Action] {
        var actions: [Action] = []
        if let wall {
            self.wall = wall
            if cleanup != nil { actions += cleanupActions(cleanup!.tick(now: wall)) }
        }
        for slot in slots.indices {
            if let worker = slots[slot].worker {
                if !worker.isReady, now >= worker.startedAt + configuration.bootTimeout {
                    actions.append(.report(.bootTimedOut(slot: slot, pid: worker.pid)))
                    slots[slot].worker = nil
                    actions.append(restarted(slot: slot, cause: .bootTimeout))
                    actions += retire(pid: worker.pid, slot: slot, signal: .kill, reason: "boot timeout",
                                      connections: worker.connections, now: now)
                    actions += failure(slot: slot, now: now)
                } else if !worker.isReady, let readyAt = uptimeReadiness(of: worker), now >= readyAt {
                    actions += becameReady(slot: slot, role: .worker, now: now)
                } else if let silence = heartbeatSilence(of: worker, now: now) {
                    actions.append(.report(.heartbeatMissed(slot: slot, pid: worker.pid, silentFor: silence)))
                    actions += abandon(slot: slot, role: .worker, reason: "heartbeat missed", cause: .heartbeat, now: now)
                }
            }
            if let replacement = slots[slot].replacement, now >= replacement.startedAt + configuration.bootTimeout {
                actions.append(.report(.bootTimedOut(slot: slot, pid: replacement.pid)))
                slots[slot].replacement = nil
                actions += retire(pid: replacement.pid, slot: slot, signal: .kill, reason: "boot timeout",
                                  connections: replacement.connections, now: now)
                actions += abortReplacement(slot: slot, reason: "new worker pid \(replacement.pid) not ready in time", now: now)
            } else if let replacement = slots[slot].replacement, let readyAt = uptimeReadiness(of: replacement), now >= readyAt {
                actions += becameReady(slot: slot, role: .replacement, now: now)
            }
        }
        for index in retirees.indices {
            if let killAt = retirees[index].killAt, now >= killAt {
                retirees[index].killAt = nil
                actions.append(.report(.killing(pid: retirees[index].pid, reason: retirees[index].reason)))
                actions.append(.signal(pid: retirees[index].pid, .kill))
            }
        }
        actions += killOverdueOrphans(now: now)
        return actions + reconcile(now: now)
    }

    /// The earliest moment `tick` has something to do; the shell sleeps until then at most.
    package var nextDeadline: Instant? {
        var deadlines: [Instant] = retirees.compactMap(\.killAt) + orphans.compactMap(\.killAt)
        for slot in slots {
            if slot.worker == nil, slot.pendingSpawn == nil, let restartAt = slot.restartAt {
                deadlines.append(restartAt)
            }
            for worker in [slot.worker, slot.replacement].compactMap({ $0 }) {
                if !worker.isReady {
                    deadlines.append(worker.startedAt + configuration.bootTimeout)
                    if let readyAt = uptimeReadiness(of: worker) { deadlines.append(readyAt) }
                } else if let last = worker.lastHeartbeat, let timeout = heartbeatTimeout {
                    deadlines.append(last + timeout)
                }
                if let retryAt = worker.recycleNotBefore { deadlines.append(retryAt) }
            }
        }
        return deadlines.min()
    }

    /// When a worker that does not speak sd_notify counts as ready: once it has lived `ready-after`.
    func uptimeReadiness(of worker: Worker) -> Instant? {
        guard case .alive(let uptime) = configuration.readiness, !worker.isReady else { return nil }
        return worker.startedAt + uptime
    }

    /// Why `scale` to `workers` cannot be done now; nil when it can.
    func scaleRefusal(to workers: Int, by source: String) -> String? {
        if isStopping { return "\(source): the supervisor is stopping" }
        let range = configuration.workerRange
        guard range.contains(workers) else {
            return "\(source): \(workers) workers is outside \(range.lowerBound) to \(range.upperBound)"
        }
        guard workers != slots.count, let connections = configuration.connections else { return nil }
        guard let share = connections.allotment(workers: workers) else {
            return "\(source): \(connections.refusal(workers: workers, cleanup: cleanup != nil))"
        }
        if connections.perWorker == nil, case .booting = phase, share != allotment {
            return "\(source): pools are sized for the worker count (DB_POOL_SIZE=auto); scale once the first generation is ready"
        }
        return nil
    }

    /// Why a rolling restart cannot start now; nil when it can.
    var reloadRefusal: String? {
        switch phase {
        case .booting: "HUP while the first generation is booting"
        case .stopping, .stopped: "HUP while stopping"
        case .running: nil
        }
    }

    // MARK: Queries

    /// Every child the arbiter is waiting for, slots and retirees alike.
    package var childCount: Int {
        retirees.count + slots.reduce(0) { $0 + ($1.worker == nil ? 0 : 1) + ($1.replacement == nil ? 0 : 1) }
    }

    /// Every child the arbiter tracks: serving, booting and retiring workers.
    package var workerPIDs: [Int32] {
        slots.flatMap { [$0.worker?.pid, $0.replacement?.pid].compactMap { $0 } } + retirees.map(\.pid)
    }

    package var readyCount: Int { slots.filter { $0.worker?.isReady == true }.count }

    /// The generations of the ready workers, lowest first: what serves, which is not the newest generation
    /// when a rolling restart is under way or was aborted.
    package var servingGenerations: [Int] {
        Set(slots.compactMap { $0.worker?.isReady == true ? $0.worker?.generation : nil }).sorted()
    }

    package var slotCount: Int { slots.count }

    /// Workers told to go and not yet reaped.
    package var retiringCount: Int { retirees.count }

    /// The ready worker of each slot, for the admin endpoint's scrape.
    package var servingWorkers: [(slot: Int, pid: Int32)] {
        slots.indices.compactMap { index in
            guard let worker = slots[index].worker, worker.isReady else { return nil }
            return (index, worker.pid)
        }
    }

    /// The workers whose memory the shell should measure (`measured(pid:residentBytes:now:)`): ready ones not
    /// already being recycled, and none without a limit.
    package var memoryTargets: [Int32] {
        guard configuration.maxWorkerMemory != nil else { return [] }
        return slots.compactMap { slot in
            guard let worker = slot.worker, worker.isReady, worker.recycle == nil else { return nil }
            return worker.pid
        }
    }

    /// What `supervisor status` shows of a slot, decided here rather than pieced together by the shell.
    package struct SlotStatus: Sendable, Equatable {
        package enum State: String, Sendable {
            case spawning, booting, ready, draining, replacing, recycling, restarting, waiting
            /// The supervisor is stopping and the slot's worker was told to go (it drains, or is gone).
            case stopping
        }
        package var slot: Int
        package var state: State
        package var pid: Int32?
        package var generation: Int?
        package var uptime: Duration?
        package var restarts: Int
        package var heartbeatAge: Duration?
        package var connections: Int
        package var status: String?

        package init(slot: Int, state: State, pid: Int32?, generation: Int?, uptime: Duration?, restarts: Int,
                     heartbeatAge: Duration?, connections: Int, status: String?) {
            (self.slot, self.state, self.pid, self.generation, self.uptime) = (slot, state, pid, generation, uptime)
            (self.restarts, self.heartbeatAge, self.connections, self.status) = (restarts, heartbeatAge, connections, status)
        }
    }

    package func slotStatuses(now: Instant) -> [SlotStatus] {
        slots.indices.map { index in
            let slot = slots[index]
            if isStopping {
                // A stop moved every worker to the retirees: the slot shows the one still draining, if any.
                let retiree = retirees.first { $0.slot == index }
                return SlotStatus(slot: index, state: .stopping, pid: retiree?.pid, generation: nil, uptime: nil,
                                  restarts: slot.restarts, heartbeatAge: nil, connections: retiree?.connections ?? 0,
                                  status: retiree == nil ? "stopped" : "draining")
            }
            let worker = slot.worker ?? slot.replacement
            let state: SlotStatus.State
            if let worker {
                if recycling?.slot == index { state = .recycling }
                else if slot.replacement != nil, slot.worker != nil { state = .replacing }
                else if worker.draining { state = .draining }
                else { state = worker.isReady ? .ready : .booting }
            } else if slot.pendingSpawn != nil {
                state = .spawning
            } else if slot.restartAt != nil {
                state = .restarting
            } else {
                state = .waiting
            }
            return SlotStatus(slot: index, state: state, pid: worker?.pid, generation: worker?.generation,
                              uptime: worker.map { $0.startedAt.duration(to: now) }, restarts: slot.restarts,
                              heartbeatAge: worker?.lastHeartbeat.map { $0.duration(to: now) },
                              connections: worker?.connections ?? 0, status: worker?.status)
        }
    }

    /// Connections every live worker may hold: serving, booting, spawning and draining.
    package var connectionsHeld: Int {
        retirees.reduce(0) { $0 + $1.connections } + slots.reduce(0) { total, slot in
            total + (slot.worker?.connections ?? 0) + (slot.replacement?.connections ?? 0)
                + (slot.pendingSpawn == nil ? 0 : slot.pendingConnections)
        }
    }

    /// A one-line summary for humans and for systemd's `STATUS=`.
    package var statusLine: String {
        switch phase {
        case .booting: return "booting: \(readyCount)/\(slots.count) workers ready"
        case .stopping:
            return "stopping: \(childCount) worker\(childCount == 1 ? "" : "s") left"
                + (orphans.isEmpty ? "" : ", \(orphans.count) orphan\(orphans.count == 1 ? "" : "s")")
        case .stopped: return "stopped"
        case .running:
            if let reload {
                if reload.resize {
                    return "resizing pools for \(slots.count) workers: \(reload.slot)/\(slots.count) slots replaced"
                }
                return "reloading to generation \(reload.generation): \(reload.slot)/\(slots.count) slots replaced"
            }
            let serving = servingGenerations
            let generations = serving.isEmpty ? "\(generation)" : serving.map(String.init).joined(separator: " and ")
            var line = "\(readyCount)/\(slots.count) workers ready, generation \(generations)"
            if case .aborted? = lastReload?.outcome, let failed = lastReload?.generation, !serving.contains(failed) {
                line += " (the rolling restart to generation \(failed) was aborted)"
            }
            return line
        }
    }

    /// True from the first stop signal (or a failed boot) on: no worker will be started again.
    package var isStopping: Bool {
        switch phase {
        case .stopping, .stopped: true
        case .booting, .running: false
        }
    }
}
