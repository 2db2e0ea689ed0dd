import Reactor
import PoolCore

/// One leased connection as a multiplexer uses it: calls of many holders queued on it, written together, and
/// answered in order. The protocol's part (hiredis' replies, libpq's pipeline); the rest is `Multiplexer`'s.
/// Only used on the reactor's thread.
public protocol PipelineLane: AnyObject, SendableMetatype {
    associatedtype Call

    /// The socket the reactor watches.
    var socket: Int32 { get }
    /// Calls queued or sent, and not answered yet.
    var pending: Int { get }
    /// Since when calls are pending and no answer came (set when the first is queued on an idle lane, and
    /// again at each answer while more are pending); nil when none is pending.
    var waitingSince: ContinuousClock.Instant? { get }
    /// Calls answered so far (failures too): a lane whose count did not move for a tick while calls were
    /// pending is stalled.
    var answered: Int { get }
    /// Calls queued since the last `flush`.
    var hasUnflushed: Bool { get }

    /// Queues a call for the next `flush`.
    func enqueue(_ call: Call)
    /// Writes what was queued: how many statements (or commands) went out, and whether all of it did (false: the
    /// socket is full; called again when it is writable). Throws when the connection failed.
    func flush() throws -> (statements: Int, complete: Bool)
    /// Reads what arrived and answers the calls it completes. Throws when the connection failed.
    func read() throws
    /// The connection is gone: fails every call sent on it with `error`; returns the calls it had not sent yet,
    /// which go to another lane.
    func fail(with error: any Error) -> [Call]
    /// Makes the connection fit for the pool's other holders again (leaves pipeline mode); false to close it.
    func detach() -> Bool
    /// What a call that never got a lane fails with.
    static func fail(_ call: Call, with error: any Error)
    /// The error of a lane that had no answer within the reply timeout.
    static var timedOut: any Error { get }
}

/// Spreads the calls of every concurrent holder over as few pooled connections as keep them moving: the calls of
/// one reactor turn leave in one write per connection, and a batch of sixteen requests costs the server one
/// wake-up where it cost sixteen. Connections are ordinary leases of the pool, so its limit, timeout, pre-ping,
/// recycle and dispose keep their meaning: a lane goes back to the pool when it was idle for a reactor tick
/// (50 ms), and is retired (drained, then given back) after a second of continuous use or when the pool is
/// disposed, so that the pool sees each connection at least once a second. Which lane a call takes is
/// `LaneChoice`'s decision.
///
/// Every method runs on the reactor's thread (`Reactor.execute`); that is what makes the unchecked Sendable sound.
public final class Multiplexer<Driver: PoolDriver, Lane: PipelineLane>: @unchecked Sendable {
    public typealias Pool = ConnectionPool<Driver>

    private final class Slot: Reactor.Watcher {
        let lease: Pool.Lease
        let lane: Lane
        /// The socket as it was when watched: libpq's `PQsocket` says -1 once the connection closed, and the
        /// reactor must still be told to forget the descriptor.
        let socket: Int32
        let leasedAt = ContinuousClock.now
        var retiring = false
        var writeBlocked = false
        var stalled = false
        var answeredAtTick = 0
        /// Weak: a slot left in the reactor after its multiplexer is gone (an engine dropped without dispose)
        /// must not call into freed memory.
        weak var owner: Multiplexer?

        init(lease: Pool.Lease, lane: Lane, owner: Multiplexer) {
            self.lease = lease
            self.lane = lane
            self.socket = lane.socket
            self.owner = owner
        }

        func ready(_ events: UInt32) { owner?.ready(self, events) }
    }

    private let pool: Pool
    private let makeLane: (Pool.Lease) throws -> Lane
    private let replyTimeout: Duration?
    private var slots: [Slot] = []
    private var opening = false
    private var waiting: [Lane.Call] = []
    private var flushScheduled = false
    private var tickerInstalled = false

    /// - Parameters:
    ///   - replyTimeout: a lane that waited longer for an answer is closed, and its calls fail (Redis' socket
    ///     timeout); nil for none (Postgres bounds its statements on the server).
    ///   - makeLane: the lane of a fresh lease; throws when the connection cannot be used that way.
    public init(pool: Pool, replyTimeout: Duration? = nil, makeLane: @escaping (Pool.Lease) throws -> Lane) {
        self.pool = pool
        self.replyTimeout = replyTimeout
        self.makeLane = makeLane
    }

    /// Queues `call` (call on the reactor's thread): it is written at the end of this turn.
    public func submit(_ call: Lane.Call) {
        if !tickerInstalled {
            tickerInstalled = true
            Reactor.shared.everyTick { [weak self] in self?.tick() }
        }
        let lanes = slots.map { LaneChoice.Lane(pending: $0.lane.pending, stalled: $0.stalled, retiring: $0.retiring) }
        let canOpen = { [pool] in pool.status.total < pool.configuration.maximum && !pool.isDisposing }
        switch LaneChoice.decide(lanes: lanes, opening: opening, canOpen: canOpen()) {
        case .use(let index):
            slots[index].lane.enqueue(call)
            scheduleFlush()
        case .open:
            waiting.append(call)
            open()
        case .wait:
            waiting.append(call)
        }
    }

    private func scheduleFlush() {
        guard !flushScheduled else { return }
        flushScheduled = true
        Reactor.shared.atEndOfTurn { self.flush() }
    }

    private func flush() {
        flushScheduled = false
        for slot in slots where slot.lane.hasUnflushed && !slot.writeBlocked {
            write(slot)
        }
    }

    private func write(_ slot: Slot) {
        do {
            let (statements, complete) = try slot.lane.flush()
            if statements > 0 { pool.recordRoundTrip(statements: statements) }
            if complete == slot.writeBlocked {
                slot.writeBlocked = !complete
                Reactor.shared.rewatch(slot.socket, events: Reactor.readable | (complete ? 0 : Reactor.writable))
            }
        } catch {
            drop(slot, error)
        }
    }

    private func open() {
        opening = true
        Task {
            do {
                let lease = try await pool.checkout()
                Reactor.shared.execute { self.attach(lease) }
            } catch {
                Reactor.shared.execute { self.openFailed(error) }
            }
        }
    }

    private func attach(_ lease: Pool.Lease) {
        opening = false
        let lane: Lane
        do {
            lane = try makeLane(lease)
        } catch {
            pool.checkin(lease, healthy: false)
            openFailed(error)
            return
        }
        let slot = Slot(lease: lease, lane: lane, owner: self)
        guard Reactor.shared.watch(slot.socket, events: Reactor.readable, slot) else {
            _ = lane.detach()
            pool.checkin(lease, healthy: false)
            openFailed(ReactorRefusal())
            return
        }
        slots.append(slot)
        let calls = waiting
        waiting = []
        for call in calls { lane.enqueue(call) }
        if !calls.isEmpty { scheduleFlush() }
    }

    /// No new lane: the waiting calls go to a lane that is there, stalled or not, or fail with the pool's error.
    private func openFailed(_ error: any Error) {
        opening = false
        let calls = waiting
        waiting = []
        guard let slot = slots.filter({ !$0.retiring }).min(by: { $0.lane.pending < $1.lane.pending }) else {
            for call in calls { Lane.fail(call, with: error) }
            return
        }
        for call in calls { slot.lane.enqueue(call) }
        if !calls.isEmpty { scheduleFlush() }
    }

    private func ready(_ slot: Slot, _ events: UInt32) {
        if slot.writeBlocked, events & Reactor.writable != 0 { write(slot) }
        guard events & ~Reactor.writable != 0, slots.contains(where: { $0 === slot }) else { return }
        do {
            try slot.lane.read()
        } catch {
            drop(slot, error)
            return
        }
        if slot.lane.hasUnflushed { scheduleFlush() }
        if slot.retiring, slot.lane.pending == 0 { release(slot) }
    }

    /// Every 50 ms: a lane that answered nothing since the last tick is stalled; an overdue reply closes its lane;
    /// an idle lane goes back to the pool; one held for a second (or while the pool is disposed) is retired.
    private func tick() {
        let now = ContinuousClock.now
        for slot in slots {
            let answered = slot.lane.answered
            slot.stalled = slot.lane.pending > 0 && answered == slot.answeredAtTick
            slot.answeredAtTick = answered
            if let replyTimeout, let since = slot.lane.waitingSince, since + replyTimeout <= now {
                drop(slot, Lane.timedOut)
            } else if slot.lane.pending == 0 {
                release(slot)
            } else if slot.leasedAt + .seconds(1) <= now || pool.isDisposing {
                slot.retiring = true
            }
        }
    }

    private func remove(_ slot: Slot) {
        Reactor.shared.unwatch(slot.socket)
        slots.removeAll { $0 === slot }
    }

    private func release(_ slot: Slot) {
        remove(slot)
        pool.checkin(slot.lease, healthy: !slot.writeBlocked && slot.lane.detach())
        if !waiting.isEmpty, !opening { open() }
    }

    /// The connection failed: the calls sent on it fail with `error` (none waits for ever, none is answered
    /// twice), the pool closes it, and the calls it had not sent yet go to another lane.
    private func drop(_ slot: Slot, _ error: any Error) {
        remove(slot)
        let unsent = slot.lane.fail(with: error)
        pool.checkin(slot.lease, healthy: false)
        for call in unsent { submit(call) }
    }
}

/// epoll refused a connection's socket (ENOMEM, max_user_watches).
struct ReactorRefusal: Error, CustomStringConvertible {
    var description: String { "cannot wait for replies: epoll refused the socket" }
}
