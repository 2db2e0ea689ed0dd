import Settings
import SupervisorControl
import SupervisorConfiguration
import SupervisorSystem
import Arbiter
import TimeUnits
import CShims
import Glibc
import Logging

/// The supervisor's one thread: wait on signals, notify datagrams and the arbiter's next deadline, feed what
/// happened to the arbiter, do what it says. It reads top to bottom like tini's `main`, and all decisions live
/// in the arbiter; here is only I/O.
package final class SupervisorLoop {
    package typealias Machine = Arbiter<ContinuousClock.Instant>

    /// Exit codes (sysexits.h where one fits); the table in docs/signals.md.
    package typealias ExitCode = SupervisorExitCode

    let settings: SupervisorSettings
    let logger: Logger
    private let log: LifecycleLog
    let clock = ContinuousClock()
    /// The arbiter and the runner of its actions; `self` is the world they act on.
    var runner: ActionRunner
    var arbiter: Machine {
        get { runner.arbiter }
        set { runner.arbiter = newValue }
    }
    private let signals: SignalChannel
    let socket: ListenSocket
    private let notify: NotifyServer?
    private let upstream: Upstream
    let spawner: Spawner
    private let epoll: Int32
    private var nextUpstreamWatchdog: ContinuousClock.Instant?
    private var exitCode: Int32? { runner.exitCode }
    private var listenerOpen = true
    /// Found at start; `status` shows it.
    let listenerStop: ListenSocket.StopMechanism
    /// The scheduled cleanup job, when there is one.
    /// `supervisor status|scale|reload|stop` talk to it; nil with `--control-socket none`, or when it could not be bound.
    private var control: ControlServer?
    /// `--metrics-bind`, and the private folder where each worker serves its metrics.
    var admin: AdminEndpoint?
    private var metricsDirectory: String?
    /// The serving workers' private metrics sockets, by pid.
    var metricsSockets: [Int32: (slot: Int, path: String)] = [:]
    private var spawnSerial = 0
    var metrics = SupervisorMetrics()
    var nextMemoryCheck: ContinuousClock.Instant?
    /// `status`'s last measurement of the workers' open database connections (`openConnections`).
    var openConnectionsCache: (at: ContinuousClock.Instant, counts: [Int32: Int])?
    /// One cgroup per worker and cleanup run, when the supervisor may make them; else process groups alone.
    let cgroups: WorkerCgroups?
    /// The next look for orphans among the supervisor's children (besides the one after every reap).
    var nextOrphanSweep: ContinuousClock.Instant?
    /// /proc shows this PID namespace (`ProcessTree.procIsOurs`): without it no process tree can be read.
    let procIsOurs: Bool
    /// Children the supervisor had before it started anything (`sidecar & exec supervisor`): not ours to stop.
    var inheritedChildren: Set<Int32> = []
    /// Processes that were below a worker or orphan when it got TERM, with that tree's KILL deadline, until they
    /// are gone: re-parented later, they inherit it (`Arbiter.adopted(pid:deadline:now:)`).
    var treeDeadlines: [ProcessTree.Identity: ContinuousClock.Instant] = [:]
    /// Workers and orphans sent TERM or ABRT by the actions being run, whose trees `rememberSignalledTrees` records.
    var signalledTrees: [Int32] = []
    /// Says when a worker that died of a trap may have hit the limit on threads.
    var taskLimit = TaskLimit()
    /// When to look at the pids limit's refusals next (nil: no pids controller to read).
    var nextTaskLimitCheck: ContinuousClock.Instant?

    /// Sets up everything that can fail before the first worker exists, so a bad port or a missing directory
    /// is one line and an exit code, never a half-started pool.
    ///
    /// - Parameter inherited: the socket systemd passed (`ListenSocket.inherited`), used instead of binding.
    package init(settings: SupervisorSettings, inherited: ListenSocket?, logger: Logger) throws(SystemError) {
        self.settings = settings
        self.logger = logger
        self.log = LifecycleLog(logger: logger, notifyReadiness: settings.arbiter.readiness == .notify)
        if getpid() != 1 {
            // Orphans of our workers become our children: we signal them, and reap them as PID 1 would.
            _ = prefork_set_child_subreaper()
        }
        procIsOurs = ProcessTree.procIsOurs
        let trees = procIsOurs ? WorkerCgroups.detect() : nil
        cgroups = trees
        if procIsOurs { inheritedChildren = Set(ProcessTree.children()) }
        signals = try SignalChannel()
        if let inherited {
            socket = inherited
        } else {
            socket = try ListenSocket.bind(settings.bind, backlog: settings.backlog, mode: settings.socketMode,
                                           group: settings.socketGroup)
        }
        listenerStop = inherited == nil ? socket.stopMechanism : .kept
        let notifyServer = settings.arbiter.readiness == .notify ? try NotifyServer(environment: settings.environment) : nil
        notify = notifyServer
        upstream = Upstream(environment: settings.environment, logger: logger)
        let watchdog = settings.arbiter.heartbeatTimeout.map { timeout in
            UInt64(timeout.inMicroseconds)
        }
        spawner = Spawner(
            command: settings.command,
            listenFD: socket.fd,
            backlog: settings.backlog,
            notifySocket: notify?.socketPath,
            watchdogMicroseconds: watchdog,
            environment: settings.workerEnvironment
        )
        epoll = epoll_create1(Int32(EPOLL_CLOEXEC))
        // A start that fails from here on (exit 71) leaves no private folder behind.
        var metricsFolder: String?
        do throws(SystemError) {
            guard epoll >= 0 else { throw SystemError("epoll_create1") }
            if let address = settings.metricsBind {
                do { admin = try AdminEndpoint(address: address) } catch {
                    throw SystemError("--metrics-bind: \(error.call)", errno: error.errno)
                }
                metricsFolder = try RuntimeDirectory.makePrivate("supervisor-metrics", environment: settings.environment)
            }
            if let path = settings.controlSocket {
                do {
                    control = try ControlServer(path: path)
                } catch {
                    if settings.controlSocketIsExplicit {
                        throw SystemError("control socket \(path) (--control-socket): \(error.call)", errno: error.errno)
                    }
                    // The default path is not fatal: the workers serve the same either way; signals still control it.
                    logger.warning("no control socket (supervisor status/scale/reload/stop will not reach this one; pass --control-socket): \(error)")
                }
            }
        } catch {
            notifyServer?.close()
            if let metricsFolder { rmdir(metricsFolder) }
            throw error
        }
        metricsDirectory = metricsFolder
        let budget = settings.budget
        let cleanup = settings.cleanup?.job(wall: Self.wallNow())
        runner = ActionRunner(arbiter: Machine(configuration: settings.arbiter, now: clock.now, cleanup: cleanup)) { connections in
            budget?.poolEnvironment(connections: connections) ?? []
        }
        try watch(signals.fd)
        if let notify { try watch(notify.fd) }
        if let control { try watch(control.fd) }
    }

    func watch(_ fd: Int32, writable: Bool = false, modify: Bool = false) throws(SystemError) {
        var event = epoll_event()
        event.events = EPOLLIN.rawValue | (writable ? EPOLLOUT.rawValue : 0)
        event.data.fd = fd
        guard epoll_ctl(epoll, modify ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &event) == 0 else { throw SystemError("epoll_ctl") }
    }

    /// Runs until every child is gone; returns the exit code.
    package func run() -> Int32 {
        logger.notice("listening on \(socket.description)", metadata: [
            "workers": "\(settings.arbiter.workers)",
            "command": "\(settings.command.arguments.joined(separator: " "))",
            "notify": "\(notify != nil)",
            "stop": "\(listenerStop.rawValue)",
            "trees": "\(cgroups.map { "cgroup \($0.base)" } ?? "process group")",
        ])
        if settings.maxRequests != nil, settings.arbiter.readiness != .notify {
            // A worker asks for its recycle over sd_notify (X_PREFORK_RECYCLE); without it the count goes nowhere.
            let message = "--max-requests has no effect with --no-notify: a worker asks to be recycled over sd_notify "
                + "(uvicorn: use its --limit-max-requests; --max-worker-memory works for any worker)"
            logger.warning("\(message)")
        }
        if !procIsOurs {
            let message = "/proc is not this PID namespace's (mount one, as unshare --mount-proc does): "
                + "orphans of workers are reaped but not stopped, and memory is not measured"
            logger.warning("\(message)")
        }
        if !inheritedChildren.isEmpty {
            logger.notice("children started before the supervisor are left alone", metadata: [
                "pids": "\(inheritedChildren.sorted().map(String.init).joined(separator: ","))"])
        }
        for leftover in cgroups?.leftoverCgroups ?? [] {
            logger.warning("killed what a supervisor that was killed left running in \(leftover)")
        }
        if listenerStop == .backlog {
            logger.notice("at a stop, \(listenerStop.explanation); grant CAP_NET_ADMIN for a stop that resets no connection")
        }
        if let interval = upstream.watchdogInterval { nextUpstreamWatchdog = clock.now + interval }
        announceBudget()
        if let control { logger.info("control socket \(control.path)") }
        if let admin {
            admin.start()
            logger.notice("metrics of the supervisor and every worker on http://\(admin.description)/metrics")
        }
        if settings.arbiter.maxWorkerMemory != nil { nextMemoryCheck = clock.now + .seconds(1) }
        if taskLimit.isWatchable { nextTaskLimitCheck = clock.now + .seconds(1) }
        nextOrphanSweep = procIsOurs ? clock.now + .seconds(1) : nil
        announceCleanup()
        perform(arbiter.start(now: clock.now))

        var events = [epoll_event](repeating: epoll_event(), count: 8)
        // Until the workers and the orphans are gone, and a cleanup still running has finished too.
        // Until the arbiter says every child is gone (the workers, their orphans, a running cleanup), and the
        // orphans found since are gone too.
        while exitCode == nil || arbiter.orphanCount > 0 {
            let timeout = waitMilliseconds()
            let waitStarted = clock.now
            let ready = epoll_wait(epoll, &events, Int32(events.count), timeout)
            if ready < 0, errno != EINTR {
                logger.critical("epoll_wait: \(String(cString: strerror(errno)))")
                return ExitCode.systemError
            }
            // Woken far past the timeout: the process was stopped or starved. Read what queued up (heartbeats
            // first), then tell the arbiter before it judges anyone's silence.
            let waited = waitStarted.duration(to: clock.now)
            if timeout >= 0, exitCode == nil, arbiter.isStall(waited: waited, expected: .milliseconds(timeout)) {
                if let notify { handleNotify(notify) }
                // The whole wait, not the part past its timeout: when the stall began within it is unknown.
                perform(arbiter.resumed(afterStall: waited, now: clock.now))
            }
            // An interrupted wait (SIGCONT ends it with EINTR) has no events: wait again before any tick.
            if ready < 0 { continue }
            arbiter.observe(wall: Self.wallNow())
            for event in events.prefix(Int(max(ready, 0))) {
                let fd = event.data.fd
                if fd == signals.fd { handleSignals() }
                if let notify, fd == notify.fd { handleNotify(notify) }
                if let control {
                    if fd == control.fd {
                        for connection in control.accept(now: clock.now) { try? watch(connection) }
                    } else if control.owns(fd) {
                        handleControl(control, fd: fd, writable: event.events & EPOLLOUT.rawValue != 0)
                    }
                }
                if exitCode != nil { break }
            }
            if exitCode == nil { perform(arbiter.tick(now: clock.now, wall: Self.wallNow())) }
            control?.expire(now: clock.now)
            checkMemory()
            checkTaskLimit()
            if let due = nextOrphanSweep, clock.now >= due {
                nextOrphanSweep = procIsOurs ? clock.now + .seconds(1) : nil
                sweepOrphans()
                forgetGoneTrees()
                cgroups?.removeEmpty()
            }
            feedUpstreamWatchdog()
            publishMetrics()
        }
        shutdown()
        return exitCode ?? 0
    }

    private func handleSignals() {
        for received in signals.drain() {
            switch received {
            case .control(let signal):
                if signal == .hangup { restoreControlSocket() }
                perform(arbiter.received(signal, now: clock.now))
            case .childExited:
                let reaped = SignalChannel.reap()
                for (pid, _) in reaped { cgroups?.reaped(pid) }
                // Before the exits reach the arbiter: a gone worker's children were re-parented to us before its
                // SIGCHLD was sent, and the last worker's exit must not end the supervisor while they run.
                sweepOrphans(reaped: Set(reaped.map(\.pid)))
                for (pid, status) in reaped {
                    if inheritedChildren.remove(pid) != nil {
                        logger.info("reaped a child started before the supervisor (\(status))", metadata: ["pid": "\(pid)"])
                        continue
                    }
                    if let socket = metricsSockets.removeValue(forKey: pid) { unlink(socket.path) }
                    perform(arbiter.exited(pid: pid, status: status, now: clock.now))
                }
            case .dropped(let signal):
                logger.info("ignored: signal \(signal) (\(String(cString: strsignal(signal)))) means nothing to the supervisor")
            }
        }
    }

    /// HUP brings back a control socket whose file was removed: without it `supervisor status|reload|stop`
    /// could not reach this supervisor until its restart.
    private func restoreControlSocket() {
        guard let old = control, old.isUnreachable else { return }
        do {
            let fresh = try ControlServer(path: old.path)
            old.close()
            control = fresh
            try watch(fresh.fd)
            logger.notice("control socket \(fresh.path) was gone: bound it again")
        } catch {
            logger.warning("control socket \(old.path) is gone and could not be bound again: \(error)")
        }
    }

    private func handleNotify(_ notify: NotifyServer) {
        notify.drain { sender, message, truncated in
            if truncated || message.malformedLines > 0 { perform(arbiter.malformedNotify(from: sender)) }
            guard sender > 0 else { return }
            let group = getpgid(sender)
            perform(arbiter.notified(pid: sender, processGroup: group > 0 ? group : nil, message: message, now: clock.now))
        }
    }

    /// Runs the arbiter's actions in order; the decisions are all in them.
    func perform(_ actions: [Machine.Action]) {
        runner.perform(actions, now: clock.now, on: self)
        // After the runner is done with the arbiter: the deadlines the signals were sent with are its to say.
        rememberSignalledTrees()
    }

    /// Once stopping, nobody will accept again: when the workers have closed their copies too, the kernel
    /// refuses new connections at once (a load balancer retries elsewhere) instead of queueing them in a
    /// backlog that is reset at exit.
    ///
    /// Closing its own copy is not enough: the workers still hold the socket while they drain, and a
    /// connection the kernel queues after the last worker's final accept is reset when that worker closes.
    /// So first a socket filter that drops every incoming segment goes on the listener, shared by every
    /// process: new SYNs are dropped (the client retries in a second and is then refused), the queue stops
    /// growing, and the workers accept everything already queued before they close. Where the kernel refuses
    /// the filter, the backlog shrinks to its minimum instead (`ListenSocket.StopMechanism.backlog`).
    func closeListener() {
        guard listenerOpen else { return }
        listenerOpen = false
        if listenerStop == .kept {
            close(socket.fd)
            return
        }
        switch socket.refuseNewConnections() {
        case .filter, .kept: break
        case .backlog:
            if listenerStop == .filter { logger.notice("stop: \(ListenSocket.StopMechanism.backlog.explanation)") }
        case nil:
            logger.warning("could not stop new connections on the listener: \(String(cString: strerror(errno)))")
        }
        close(socket.fd)
        if let path = socket.unixPath { unlink(path) }
    }

    /// Milliseconds until the earliest deadline, rounded up so the tick never comes a little early and spins.
    private func waitMilliseconds() -> Int32 {
        let deadlines = [arbiter.nextDeadline, nextUpstreamWatchdog, control?.nextDeadline, nextMemoryCheck,
                         nextTaskLimitCheck,
                         exitCode == nil ? nextOrphanSweep : nil].compactMap { $0 }
        // The cleanup's deadlines are wall-clock time.
        let job = arbiter.cleanup?.nextDeadline.map { Int32(clamping: min(max(0, $0 - Self.wallNow()), 60_000)) }
        guard let next = deadlines.min() else { return job ?? -1 }
        let milliseconds = clock.now.duration(to: next).inMillisecondsRoundedUp
        if milliseconds == 0 { return 0 }
        return min(Int32(clamping: min(milliseconds, 60_000)), job ?? .max)
    }

    /// Says so within a second when the pids limit refuses a thread, for the workers that hang on it rather than die.
    private func checkTaskLimit() {
        guard let due = nextTaskLimitCheck, clock.now >= due else { return }
        nextTaskLimitCheck = clock.now + .seconds(1)
        if let refused = taskLimit.refusalsSinceLastLook() { logger.warning("\(refused)") }
    }

    private func feedUpstreamWatchdog() {
        guard let due = nextUpstreamWatchdog, let interval = upstream.watchdogInterval, clock.now >= due else { return }
        upstream.send("WATCHDOG=1")
        nextUpstreamWatchdog = clock.now + interval
    }

    private func shutdown() {
        killLeftovers()
        notify?.close()
        admin?.stopServing()
        control?.close()
        if let metricsDirectory {
            for socket in metricsSockets.values { unlink(socket.path) }
            rmdir(metricsDirectory)
        }
        closeListener()
        logger.notice("stopped", metadata: ["exit": "\(exitCode ?? 0)"])
    }
}

extension SupervisorLoop: SupervisorWorld {
    func spawnWorker(slot: Int, generation: Int, extraEnvironment: [String]) -> Result<Int32, SystemError> {
        let cgroup = cgroups?.make("worker")
        if cgroups != nil, cgroup == nil {
            logger.warning("no cgroup for the next worker of slot \(slot) (\(String(cString: strerror(errno)))): owned by its process group alone")
        }
        var extra = extraEnvironment
        var metricsSocket: String?
        if let metricsDirectory {
            spawnSerial += 1
            metricsSocket = "\(metricsDirectory)/slot\(slot)-\(spawnSerial).sock"
            extra.append("\(WorkerContract.metricsSocket)=\(metricsSocket!)")
        }
        do {
            let pid = try spawner.spawn(slot: slot, generation: generation, extraEnvironment: extra, cgroup: cgroup)
            if let metricsSocket { metricsSockets[pid] = (slot, metricsSocket) }
            if let cgroup, cgroups?.started(pid, in: cgroup) == false {
                logger.warning("worker pid \(pid) could not join its cgroup \(cgroup): owned by its process group alone")
            }
            return .success(pid)
        } catch {
            if let cgroup { cgroups?.discard(cgroup) }
            return .failure(error)
        }
    }

    func stopAccepting() { closeListener() }

    func startCleanup() -> Result<Int32, SystemError> {
        guard let configuration = settings.cleanup else { return .failure(SystemError("no cleanup is configured")) }
        let cgroup = cgroups?.make("cleanup")
        do {
            let pid = try spawner.spawnJob(configuration.command, extraEnvironment: configuration.environment, cgroup: cgroup)
            if let cgroup { cgroups?.started(pid, in: cgroup) }
            return .success(pid)
        } catch {
            if let cgroup { cgroups?.discard(cgroup) }
            return .failure(error)
        }
    }

    /// The whole tree: the job's process group, and for KILL its cgroup, which setsid cannot leave.
    func signalCleanup(pid: Int32, kill: Bool) {
        if kill { cgroups?.kill(treeOf: pid) }
        signalTree(pid, kill ? SIGKILL : SIGTERM)
    }

    func notifyUpstream(_ message: String) { upstream.send(message) }

    /// Milliseconds since the epoch: the cleanup's schedule is wall-clock time.
    static func wallNow() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }

    func announceCleanup() {
        guard let configuration = settings.cleanup else { return }
        logger.notice("cleanup scheduled", metadata: [
            "schedule": "\(configuration.scheduleText)", "zone": "\(configuration.zone.name)",
            "next": "\(arbiter.cleanup?.nextRun.map(CleanupJob.format) ?? "never")",
            "command": "\(configuration.command.arguments.joined(separator: " "))",
        ])
    }

    func record(_ report: Machine.Report) {
        log.record(report)
        count(report)
        if case .exited(let slot, let pid, .signaled(let signal), false) = report, [SIGILL, SIGTRAP, SIGABRT, SIGSEGV].contains(signal),
            let explanation = taskLimit.explanation() {
            logger.warning("\(explanation)", metadata: ["pid": "\(pid)", "slot": "\(slot.map(String.init) ?? "-")"])
        }
    }
}

