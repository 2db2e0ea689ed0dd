import Reactor
import TimeUnits
import Metrics
import NIOConcurrencyHelpers
import NIOPosix
import PoolCore

/// The pool's shell: one lock around the state machine, its actions run outside the lock, blocking driver
/// calls on the pool's own threads.
///
/// A checkout that finds an idle connection returns without suspending; one that has to wait parks on a
/// continuation, with a timer for the pool timeout and a cancellation handler that takes it out of the queue.
public final class ConnectionPool<Driver: PoolDriver>: Sendable {
    public typealias Machine = PoolStateMachine<ContinuousClock.Instant>

    /// A checked-out connection. Give it back with `checkin` exactly once.
    public struct Lease: Sendable {
        public let id: Int
        public let connection: Driver.Connection
    }

    private enum Parking {
        case parked
        case answered(Result<Lease, PoolError>)
        case cancelledEarly
    }

    private struct State {
        var machine: Machine
        var connections: [Int: Driver.Connection] = [:]
        var nextRequest = 0
        /// Parked checkouts.
        var continuations: [Int: CheckedContinuation<Lease, any Error>] = [:]
        /// Answers that came before their checkout parked.
        var mailbox: [Int: Result<Lease, PoolError>] = [:]
        /// Checkouts cancelled before they parked.
        var cancelledEarly: Set<Int> = []
        /// The one task that fails overdue checkouts; it runs while anybody waits.
        var sweeper: Task<Void, Never>?
        var disposeWaiters: [CheckedContinuation<Void, Never>] = []
    }

    public let name: String
    public let configuration: PoolConfiguration
    private let driver: Driver
    private let threads: NIOThreadPool
    private let state: NIOLockedValueBox<State>
    private let metrics: PoolMetrics
    private let clock = ContinuousClock()

    /// - Parameters:
    ///   - name: for metrics and logs (`pool` dimension).
    ///   - threads: threads for the calls that block: connects, pings, resets, closes (statements do not: their
    ///     replies are read by the `Reactor`). By default one per connection the pool may hold plus two, at most
    ///     eight: enough that a burst of connects or a slow connect to a dying server does not hold up resets,
    ///     without a thread (and its stack and malloc arena) per connection.
    ///   - metrics: where the pool's metrics go (the process-wide `MetricsSystem` by default).
    public init(name: String, configuration: PoolConfiguration, driver: Driver, threads: Int? = nil,
                metrics: (any MetricsFactory)? = nil) {
        self.name = name
        self.configuration = configuration
        self.driver = driver
        self.threads = NIOThreadPool(numberOfThreads: threads ?? min(configuration.maximum + 2, 8))
        self.threads.start()
        self.state = NIOLockedValueBox(State(machine: Machine(configuration: configuration)))
        self.metrics = PoolMetrics(pool: name, factory: metrics ?? MetricsSystem.factory)
    }

    // MARK: Checkout and checkin

    public func checkout() async throws -> Lease {
        let (own, effects) = transition(now: clock.now) { state, now in
            let request = state.nextRequest
            state.nextRequest += 1
            return (request, state.machine.checkout(request, now: now))
        }
        metrics.checkouts.increment()
        perform(effects)
        // Fast path: an idle connection was leased at once, inside the same lock.
        if let answer = effects.own { return try answer.get() }
        return try await parked(own!, since: clock.now)
    }

    private func parked(_ request: Int, since started: ContinuousClock.Instant) async throws -> Lease {
        let lease = try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Lease, any Error>) in
                let parking: Parking = state.withLockedValue { state in
                    if let ready = state.mailbox.removeValue(forKey: request) { return .answered(ready) }
                    if state.cancelledEarly.remove(request) != nil { return .cancelledEarly }
                    state.continuations[request] = continuation
                    if state.sweeper == nil {
                        state.sweeper = Task { [weak self] in await self?.sweep() }
                    }
                    return .parked
                }
                switch parking {
                case .parked:
                    break
                case .answered(let result):
                    continuation.resume(with: result.mapError { $0 as any Error })
                case .cancelledEarly:
                    // Cancelled before parking: leave the queue the same way a parked waiter does.
                    self.perform(self.transition(now: self.clock.now) { state, _ in (nil, state.machine.cancelled(request)) }.effects)
                    continuation.resume(throwing: PoolError.cancelled)
                }
            }
        } onCancel: {
            let effects = transition(now: clock.now) { state, _ -> (own: Int?, actions: [Machine.Action]) in
                if state.continuations[request] == nil, state.mailbox[request] == nil {
                    state.cancelledEarly.insert(request)
                    return (nil, [])
                }
                return (nil, state.machine.cancelled(request))
            }.effects
            perform(effects)
        }
        let waited = started.duration(to: clock.now)
        metrics.wait.recordNanoseconds(waited.inNanoseconds)
        return lease
    }

    /// Gives a connection back. It is reset first (an open transaction is rolled back) on the pool's threads
    /// when there is anything to reset; `healthy: false` closes it.
    public func checkin(_ lease: Lease, healthy: Bool = true) {
        guard healthy, driver.needsReset(lease.connection) else {
            finishCheckin(lease.id, healthy: healthy)
            return
        }
        threads.submit { [driver] _ in
            let clean = driver.reset(lease.connection)
            self.finishCheckin(lease.id, healthy: clean)
        }
    }

    private func finishCheckin(_ id: Int, healthy: Bool) {
        event { $0.checkin(id, healthy: healthy, now: $1) }
    }

    /// A holder sent `statements` statements (Redis: commands) to the server in one write: a pipelined batch
    /// of several requests, or one request's own. `pool_statements_total / pool_round_trips_total` is how many
    /// share a round trip.
    public func recordRoundTrip(statements: Int) {
        metrics.roundTrips.increment()
        metrics.statements.increment(by: statements)
    }

    /// A holder saw a disconnect error: the server probably restarted; older connections are replaced.
    public func disconnected() {
        event { $0.disconnected(now: $1) }
    }

    /// Borrows a connection for `body`, and always gives it back.
    public func withConnection<T>(_ body: (Lease) async throws -> T) async throws -> T {
        let lease = try await checkout()
        do {
            let result = try await body(lease)
            checkin(lease)
            return result
        } catch {
            checkin(lease)
            throw error
        }
    }

    /// Runs blocking work for a holder on the pool's threads, to the end: cancelling the waiting task does not
    /// skip it, because work half done (a statement sent, its reply unread) would leave the connection unusable
    /// for the next holder.
    public func runBlocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            threads.submit { state in
                switch state {
                case .active: continuation.resume(with: Result(catching: body))
                case .cancelled: continuation.resume(throwing: PoolError.disposed)
                }
            }
        }
    }

    // MARK: Dispose and status

    /// Sleeps until the next checkout deadline and fails what is overdue, while anybody waits. Deciding to stop
    /// and clearing `sweeper` happen under the lock, so a checkout parking at the same moment starts a new one.
    private func sweep() async {
        while true {
            let next: ContinuousClock.Instant? = state.withLockedValue { state in
                if let next = state.machine.nextTimeout { return next }
                state.sweeper = nil
                return nil
            }
            guard let next else { return }
            try? await Task.sleep(until: next, clock: .continuous)
            if Task.isCancelled { return }
            event { $0.expire(now: $1) }
        }
    }

    /// Closes idle connections at once and leased ones when they come back; refuses new checkouts. Returns
    /// true when every connection was closed within `timeout`.
    ///
    /// What a leased connection is still running is cancelled on the server, again every 200 ms while it is out
    /// (a cancel travels on a connection of its own and can overtake its statement): the worker exits after
    /// this, and a statement left behind would run on, and commit, for a client that was already told it failed.
    /// Its holder then sees the error, gives the connection back, and it is closed.
    @discardableResult
    public func dispose(timeout: Duration = .seconds(10)) async -> Bool {
        event { machine, _ in machine.dispose() }
        state.withLockedValue { $0.sweeper }?.cancel()
        let canceller = Task { await cancelWhileLeased() }
        defer { canceller.cancel() }
        let closed = await first(within: timeout) {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let done = self.state.withLockedValue { state in
                    if state.machine.isDisposed { return true }
                    state.disposeWaiters.append(continuation)
                    return false
                }
                if done { continuation.resume() }
            }
        } != nil
        if !closed {
            // Wake the waiter left behind, so its task can finish.
            state.withLockedValue { state in
                let waiters = state.disposeWaiters
                state.disposeWaiters.removeAll()
                return waiters
            }.forEach { $0.resume() }
        } else {
            try? await threads.shutdownGracefully()
        }
        return closed
    }

    public var status: PoolStatus { state.withLockedValue { $0.machine.status } }

    /// `dispose` was called: a holder that shares its connection (a multiplexer) stops sending on it.
    public var isDisposing: Bool { state.withLockedValue { $0.machine.isDisposing } }

    /// Cancels what every leased connection runs, on a thread of its own each round: a cancel connects to the
    /// server, and one that cannot (a stopped postmaster) must hold up neither the pool's threads nor the exit.
    private func cancelWhileLeased() async {
        while !Task.isCancelled {
            let leased = state.withLockedValue { state in state.machine.leased.compactMap { state.connections[$0] } }
            if leased.isEmpty { return }
            let driver = self.driver
            DetachedThread.start { for connection in leased { driver.cancel(connection) } }
            try? await Task.sleep(for: .milliseconds(200))
        }
    }

    // MARK: Transitions and their effects

    /// What a transition asks for, gathered under the lock and carried out after it.
    private struct Effects {
        /// Blocking work for the pool's threads.
        var work: [Work] = []
        /// Parked checkouts to wake.
        var resumes: [(CheckedContinuation<Lease, any Error>, Result<Lease, PoolError>)] = []
        var timeouts = 0
        var disposed: [CheckedContinuation<Void, Never>] = []
        var status: PoolStatus
        /// The answer for the checkout that caused the transition, when it came at once.
        var own: Result<Lease, PoolError>?
    }

    private enum Work {
        case connect(Int)
        case ping(Int, Driver.Connection)
        case close(Int, Driver.Connection?)
    }

    private func event(_ body: (inout Machine, ContinuousClock.Instant) -> [Machine.Action]) {
        perform(transition(now: clock.now) { state, now in (nil, body(&state.machine, now)) }.effects)
    }

    /// Runs a state change and resolves its actions into effects in one lock acquisition: a lease for a
    /// parked checkout takes its continuation, a lease for the checkout in progress (`own`) comes back
    /// directly, any other answer waits in the mailbox until its checkout parks.
    private func transition(now: ContinuousClock.Instant,
                            _ body: (inout State, ContinuousClock.Instant) -> (own: Int?, actions: [Machine.Action]))
        -> (own: Int?, effects: Effects) {
        state.withLockedValue { state in
            let (own, actions) = body(&state, now)
            var effects = Effects(status: state.machine.status)
            for action in actions {
                var answer: (request: Int, result: Result<Lease, PoolError>)?
                switch action {
                case .connect(let id):
                    effects.work.append(.connect(id))
                case .ping(let id, _):
                    if let connection = state.connections[id] { effects.work.append(.ping(id, connection)) }
                case .close(let id):
                    effects.work.append(.close(id, state.connections.removeValue(forKey: id)))
                case .lease(let id, let request):
                    answer = (request, state.connections[id].map { .success(Lease(id: id, connection: $0)) } ?? .failure(.disposed))
                case .fail(let request, let error):
                    answer = (request, .failure(error))
                }
                guard let (request, result) = answer else { continue }
                if case .failure(.timedOut) = result { effects.timeouts += 1 }
                if request == own {
                    effects.own = result
                } else if let continuation = state.continuations.removeValue(forKey: request) {
                    effects.resumes.append((continuation, result))
                } else {
                    state.mailbox[request] = result
                }
            }
            if state.machine.isDisposed, !state.disposeWaiters.isEmpty {
                effects.disposed = state.disposeWaiters
                state.disposeWaiters.removeAll()
            }
            return (own, effects)
        }
    }

    private func perform(_ effects: Effects) {
        if effects.timeouts > 0 { metrics.timeouts.increment(by: Int64(effects.timeouts)) }
        for (continuation, result) in effects.resumes { continuation.resume(with: result.mapError { $0 as any Error }) }
        for work in effects.work {
            switch work {
            case .connect(let id):
                metrics.connects.increment()
                threads.submit { [driver] _ in
                    do {
                        let connection = try driver.connect()
                        self.perform(self.transition(now: self.clock.now) { state, now in
                            state.connections[id] = connection
                            return (nil, state.machine.connected(id, now: now))
                        }.effects)
                    } catch {
                        self.metrics.connectFailures.increment()
                        self.event { $0.connectFailed(id, reason: "\(error)", now: $1) }
                    }
                }
            case .ping(let id, let connection):
                threads.submit { [driver] _ in
                    let ok = driver.ping(connection)
                    self.event { $0.pinged(id, ok: ok, now: $1) }
                }
            case .close(let id, let connection):
                metrics.closes.increment()
                threads.submit { [driver] _ in
                    if let connection { driver.close(connection) }
                    self.event { $0.closed(id, now: $1) }
                }
            }
        }
        metrics.record(effects.status)
        effects.disposed.forEach { $0.resume() }
    }
}
