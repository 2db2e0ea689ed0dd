import ManualClock
import PoolCore

typealias TestInstant = ManualInstant

typealias Machine = PoolStateMachine<TestInstant>
typealias Action = Machine.Action

/// Plays the shell and keeps the ledger every invariant is checked against: what is opening, pinging,
/// closing, who holds which connection, how each checkout ended.
struct Simulator {
    var machine: Machine
    var now = TestInstant.zero
    var nextRequest = 0
    var connecting: Set<Int> = []
    var pinging: [Int: Int] = [:]  // connection -> request
    var closing: Set<Int> = []
    var held: [Int: Int] = [:]  // connection -> request
    var outcome: [Int: Result<Int, PoolError>] = [:]  // request -> connection or error
    var issued: Set<Int> = []
    var maximumSeen = 0

    init(_ configure: (inout PoolConfiguration) -> Void = { _ in }) {
        var configuration = PoolConfiguration.seed
        configure(&configuration)
        machine = Machine(configuration: configuration)
    }

    var waiting: [Int] { issued.filter { outcome[$0] == nil }.sorted() }

    /// A pool of exactly one connection (timeout 30 s), held by the first checkout: the next one must wait.
    static func oneConnectionHeld() -> Simulator {
        var sim = Simulator {
            $0.size = 1
            $0.maxOverflow = 0
            $0.timeout = .seconds(30)
        }
        sim.checkout()
        sim.connect(0)
        return sim
    }

    @discardableResult
    mutating func checkout() -> Int {
        let request = nextRequest
        nextRequest += 1
        issued.insert(request)
        apply(machine.checkout(request, now: now))
        return request
    }

    mutating func apply(_ actions: [Action]) {
        for action in actions {
            switch action {
            case .connect(let id):
                precondition(connecting.insert(id).inserted, "connect \(id) twice")
            case .lease(let id, let request):
                precondition(held[id] == nil, "connection \(id) leased twice")
                precondition(outcome[request] == nil, "request \(request) answered twice")
                held[id] = request
                outcome[request] = .success(id)
            case .ping(let id, let request):
                pinging[id] = request
            case .close(let id):
                precondition(closing.insert(id).inserted, "close \(id) twice")
            case .fail(let request, let error):
                // A request that gave up while its ping ran is failed once, by the timeout or the cancel.
                precondition(outcome[request] == nil, "request \(request) answered twice")
                outcome[request] = .failure(error)
            }
        }
        maximumSeen = max(maximumSeen, machine.status.total)
    }

    mutating func connect(_ id: Int, ok: Bool = true) {
        connecting.remove(id)
        apply(ok ? machine.connected(id, now: now) : machine.connectFailed(id, reason: "refused", now: now))
    }

    mutating func ping(_ id: Int, ok: Bool = true) {
        pinging[id] = nil
        apply(machine.pinged(id, ok: ok, now: now))
    }

    mutating func close(_ id: Int) {
        closing.remove(id)
        apply(machine.closed(id, now: now))
    }

    mutating func checkin(_ id: Int, healthy: Bool = true) {
        held[id] = nil
        apply(machine.checkin(id, healthy: healthy, now: now))
    }

    mutating func advance(_ duration: Duration) {
        now = now.advanced(by: duration)
    }

    /// Completes every outstanding operation, successfully, until nothing is left to do.
    mutating func settle() {
        while let id = connecting.first ?? pinging.keys.first ?? closing.first {
            if connecting.contains(id) { connect(id) } else if pinging[id] != nil { ping(id) } else { close(id) }
        }
    }
}

extension PoolConfiguration {
    /// The seed's pool: 10 persistent + 10 overflow, 30 s checkout timeout, recycled after an hour, pinged before use.
    static var seed: PoolConfiguration {
        PoolConfiguration(size: 10, maxOverflow: 10, timeout: .seconds(30), recycle: .seconds(3600), prePing: true)
    }
}
