@testable import Arbiter
import ManualClock
import Testing
import func Glibc.getenv

/// Thousands of seeded random event sequences (spawns, exits in every phase, notify messages, HUP, TTIN/TTOU,
/// scale, stops, orphans, time) against a model of the processes, checking after every step what no unit test
/// written from the same understanding as the arbiter would think to check: that its books equal the world.
/// The way postgres-nio's pool and FoundationDB's simulation test their state machines.
@Suite("Randomized event sequences")
struct RandomizedTests {
    /// `ARBITER_SEQUENCES` runs more (or fewer); a failure names its seed, which `ARBITER_SEED` replays alone.
    static var sequences: Int {
        Int(Environment.value("ARBITER_SEQUENCES") ?? "") ?? 3000
    }

    @Test func theBooksAlwaysEqualTheWorld() {
        if let seed = UInt64(Environment.value("ARBITER_SEED") ?? "") {
            var world = SimulatedWorld(seed: seed)
            world.play(steps: 400)
            #expect(world.violations.isEmpty, "seed \(seed): \(world.violations.prefix(5))")
            return
        }
        var failures: [String] = []
        for seed in 1...UInt64(Self.sequences) {
            var world = SimulatedWorld(seed: seed)
            world.play(steps: 150 + Int(seed % 200))
            if let first = world.violations.first { failures.append("seed \(seed): \(first)") }
            if failures.count >= 5 { break }
        }
        #expect(failures.isEmpty, "\(failures.joined(separator: "\n"))")
    }
}

/// `getenv` without Foundation (the arbiter's tests do not link it).
enum Environment {
    static func value(_ name: String) -> String? {
        guard let raw = getenv(name) else { return nil }
        return String(cString: raw)
    }
}


/// The processes as the kernel would have them, and the shell's part: spawns answered before the next action,
/// signals delivered (TERM drains or is ignored, KILL always ends a process soon), exits reaped and fed back.
struct SimulatedWorld {
    struct Process {
        var connections: Int
        var orphan: Bool
        var ignoresTerm: Bool
        /// When it will end on its own (after TERM, ABRT or KILL), and how.
        var exitAt: TestInstant?
        var exitStatus: ProcessEnd = .exited(0)
    }

    var random: SplitMix64
    var arbiter: Machine
    var now = TestInstant.zero
    var nextPID: Int32 = 100
    var alive: [Int32: Process] = [:]
    var spawnFailureRate: Double
    var violations: [String] = []
    var stopBegan: TestInstant?
    var exited: Int32?
    var steps = 0
    let configuration: Machine.Configuration

    init(seed: UInt64) {
        random = SplitMix64(state: seed &* 0x9E37_79B9_7F4A_7C15)
        var configuration = Machine.Configuration.example
        configuration.workers = Int.random(in: 1...4, using: &random)
        configuration.gracefulTimeout = .milliseconds(Int64.random(in: 0...8000, using: &random))
        configuration.bootTimeout = .seconds(Int64.random(in: 2...20, using: &random))
        configuration.heartbeatTimeout = Bool.random(using: &random) ? .seconds(Int64.random(in: 1...10, using: &random)) : nil
        configuration.requireHeartbeat = configuration.heartbeatTimeout != nil && Bool.random(using: &random)
        configuration.minimumUptime = .milliseconds(Int64.random(in: 0...2000, using: &random))
        configuration.bootAttempts = Int.random(in: 1...6, using: &random)
        configuration.recycleRetryDelay = .seconds(Int64.random(in: 1...10, using: &random))
        configuration.maxWorkerMemory = Bool.random(using: &random) ? 100 : nil
        switch Int.random(in: 0...2, using: &random) {
        case 0: configuration.readiness = .notify
        case 1: configuration.readiness = .alive(for: .milliseconds(Int64.random(in: 0...1000, using: &random)))
        default: configuration.readiness = .notify
        }
        if Bool.random(using: &random) {
            let perWorker: Int? = Bool.random(using: &random) ? Int.random(in: 1...20, using: &random) : nil
            let steady = Int.random(in: 8...80, using: &random)
            let peak = steady + Int.random(in: 0...40, using: &random)
            let limits = ConnectionLimits(steady: steady, peak: peak, perWorker: perWorker)
            configuration.connections = limits
            while limits.allotment(workers: configuration.workers) == nil, configuration.workers > 1 {
                configuration.workers -= 1
            }
            if limits.allotment(workers: configuration.workers) == nil { configuration.connections = nil }
        }
        self.configuration = configuration
        spawnFailureRate = [0, 0, 0.05, 0.3].randomElement(using: &random)!
        arbiter = Machine(configuration: configuration, now: .zero)
    }

    mutating func play(steps: Int) {
        perform(arbiter.start(now: now))
        while self.steps < steps, exited == nil, violations.isEmpty {
            self.steps += 1
            randomEvent()
            check()
        }
        // Every sequence ends with a stop, which must end within its bounds.
        if exited == nil, violations.isEmpty {
            perform(arbiter.received(Bool.random(using: &random) ? .terminate : .quit, now: now))
            check()
        }
        var rounds = 0
        while exited == nil, violations.isEmpty, rounds < 1000 {
            rounds += 1
            advance(by: .milliseconds(Int64.random(in: 1...500, using: &random)))
            check()
        }
        if exited == nil, violations.isEmpty { violations.append("the stop never ended: \(arbiter.statusLine)") }
    }

    // MARK: Events

    mutating func randomEvent() {
        let pids = alive.keys.sorted()
        let workers = pids.filter { alive[$0]?.orphan == false }
        switch Int.random(in: 0..<100, using: &random) {
        case 0..<25:
            advance(by: .milliseconds(Int64.random(in: 1...3000, using: &random)))
        case 25..<45:
            guard let pid = workers.randomElement(using: &random) else { return }
            notify(pid, "READY=1")
        case 45..<52:
            guard let pid = workers.randomElement(using: &random) else { return }
            notify(pid, ["WATCHDOG=1", "STOPPING=1", "X_PREFORK_RECYCLE=requests", "WATCHDOG=trigger", "STATUS=x"]
                .randomElement(using: &random)!)
        case 52..<62:
            // The fault the probes found: any process ends, in any phase, whatever it was doing.
            guard let pid = pids.randomElement(using: &random) else { return }
            let status: ProcessEnd = [ProcessEnd.exited(0), .exited(1), .exited(78), .signaled(9), .signaled(11)]
                .randomElement(using: &random)!
            reap(pid, status)
        case 62..<70:
            perform(arbiter.received(.hangup, now: now))
        case 70..<75:
            perform(arbiter.received(.increase, now: now))
        case 75..<80:
            perform(arbiter.received(.decrease, now: now))
        case 80..<84:
            let (_, actions) = arbiter.command(.scale(workers: Int.random(in: 0...6, using: &random)), now: now)
            perform(actions)
        case 84..<87:
            let (_, actions) = arbiter.command(.reload, now: now)
            perform(actions)
        case 87..<90:
            // Found among the supervisor's children after its parent (a worker's tree) was gone.
            let pid = nextPID
            nextPID += 1
            alive[pid] = Process(connections: 0, orphan: true, ignoresTerm: Bool.random(using: &random))
            let inherited: TestInstant? = Bool.random(using: &random) ? now.advanced(by: .milliseconds(Int64.random(in: -500...3000, using: &random))) : nil
            perform(arbiter.adopted(pid: pid, deadline: inherited, now: now))
        case 90..<93:
            for pid in arbiter.memoryTargets where Bool.random(using: &random) {
                perform(arbiter.measured(pid: pid, residentBytes: Int.random(in: 50...150, using: &random), now: now))
            }
        case 93..<95:
            perform(arbiter.resumed(afterStall: .seconds(Int64.random(in: 1...60, using: &random)), now: now))
        case 95..<97:
            perform(arbiter.received([.terminate, .interrupt].randomElement(using: &random)!, now: now))
        case 97..<98:
            perform(arbiter.received(.quit, now: now))
        default:
            let (_, actions) = arbiter.command(.stop, now: now)
            perform(actions)
        }
    }

    mutating func notify(_ pid: Int32, _ text: String) {
        perform(arbiter.notified(pid: pid, message: NotifyMessage(parsing: Array(text.utf8)), now: now))
    }

    /// Moves time forward, reaping each process that ends on the way at its moment, and ticking after each.
    mutating func advance(by duration: Duration) {
        let target = now.advanced(by: duration)
        while exited == nil {
            let due = alive.filter { $0.value.exitAt.map { $0 <= target } ?? false }
                .min { ($0.value.exitAt!, $0.key) < ($1.value.exitAt!, $1.key) }
            guard let (pid, process) = due else { break }
            if process.exitAt! > now { now = process.exitAt! }
            perform(arbiter.tick(now: now))
            if alive[pid] != nil { reap(pid, process.exitStatus) }
        }
        guard exited == nil else { return }
        now = target
        perform(arbiter.tick(now: now))
    }

    mutating func reap(_ pid: Int32, _ status: ProcessEnd) {
        alive[pid] = nil
        perform(arbiter.exited(pid: pid, status: status, now: now))
    }

    // MARK: The shell

    mutating func perform(_ actions: [Action]) {
        for action in actions {
            switch action {
            case .spawn(let slot, let generation, let connections):
                if exited != nil { violations.append("step \(steps): spawn after exit in \(actions)") }
                if Double.random(in: 0..<1, using: &random) < spawnFailureRate {
                    perform(arbiter.spawnFailed(slot: slot, generation: generation, error: "EAGAIN", now: now))
                } else {
                    let pid = nextPID
                    nextPID += 1
                    alive[pid] = Process(connections: connections, orphan: false,
                                         ignoresTerm: Int.random(in: 0..<4, using: &random) == 0)
                    perform(arbiter.spawned(slot: slot, generation: generation, pid: pid, now: now))
                }
            case .signal(let pid, let signal):
                guard var process = alive[pid] else {
                    violations.append("step \(steps): \(signal) to pid \(pid), which is not alive (reaped or never ours)")
                    continue
                }
                switch signal {
                case .kill:
                    let at = now.advanced(by: .milliseconds(Int64.random(in: 0...50, using: &random)))
                    process.exitAt = min(process.exitAt ?? at, at)
                    process.exitStatus = ProcessEnd.signaled(9)
                case .terminate where !process.ignoresTerm:
                    let at = now.advanced(by: .milliseconds(Int64.random(in: 0...10_000, using: &random)))
                    process.exitAt = min(process.exitAt ?? at, at)
                case .abort:
                    if Bool.random(using: &random) {
                        let at = now.advanced(by: .milliseconds(Int64.random(in: 0...100, using: &random)))
                        process.exitAt = min(process.exitAt ?? at, at)
                        process.exitStatus = ProcessEnd.signaled(6)
                    }
                case .terminate, .user:
                    break
                }
                alive[pid] = process
            case .stopAccepting, .startCleanup, .signalCleanup, .notifyUpstream:
                break
            case .report(.stopping):
                if stopBegan == nil { stopBegan = now }
            case .report:
                break
            case .exit:
                exited = 0
                if !alive.isEmpty { violations.append("step \(steps): exit while \(alive.keys.sorted()) are alive") }
            }
        }
    }

    // MARK: Invariants

    mutating func check() {
        let tracked = arbiter.workerPIDs + arbiter.orphanPIDs
        if Set(tracked).count != tracked.count {
            violations.append("step \(steps): a pid is counted twice: \(tracked.sorted())")
        }
        if exited == nil, Set(tracked) != Set(alive.keys) {
            violations.append("step \(steps): the arbiter counts \(tracked.sorted()), alive are \(alive.keys.sorted())")
        }
        let held = alive.values.reduce(0) { $0 + $1.connections }
        if arbiter.connectionsHeld != held {
            violations.append("step \(steps): \(arbiter.connectionsHeld) connections reserved, \(held) held")
        }
        if arbiter.childCount != alive.values.filter({ !$0.orphan }).count, exited == nil {
            violations.append("step \(steps): childCount \(arbiter.childCount)")
        }
        for slot in arbiter.slots {
            if let worker = slot.worker, worker.pid == slot.replacement?.pid {
                violations.append("step \(steps): pid \(worker.pid) is both worker and replacement")
            }
        }
        // A stop ends by its deadline, plus what KILL and reaping take (the world reaps within 50 ms), plus the
        // ABRT grace of a worker abandoned just before.
        if let began = stopBegan, exited == nil {
            let bound = began.advanced(by: configuration.gracefulTimeout + configuration.abortGrace + .seconds(1))
            if now > bound {
                violations.append("step \(steps): stopping since \(began.offset), still \(arbiter.statusLine) at \(now.offset)")
            }
        }
    }
}
