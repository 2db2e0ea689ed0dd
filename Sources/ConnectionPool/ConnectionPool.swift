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
        var timers: [Int: Task<Void, Never>] = [:]
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
    ///   - threads: threads for blocking calls; by default one per connection the pool may hold, plus two for
    ///     connects and closes, so a slow query never delays another holder's reset.
    public init(name: String, configuration: PoolConfiguration, driver: Driver, threads: Int? = nil) {
        self.name = name
        self.configuration = configuration
        self.driver = driver
        self.threads = NIOThreadPool(numberOfThreads: threads ?? configuration.maximum + 2)
        self.threads.start()
        self.state = NIOLockedValueBox(State(machine: Machine(configuration: configuration)))
        self.metrics = PoolMetrics(pool: name)
    }

    // MARK: Checkout and checkin

    public func checkout() async throws -> Lease {
        let started = clock.now
        let (request, actions) = state.withLockedValue { state in
            let request = state.nextRequest
            state.nextRequest += 1
            return (request, state.machine.checkout(request, now: clock.now))
        }
        metrics.checkouts.increment()
        run(actions)
        // Fast path: an idle connection was leased at once (the mailbox holds it).
        if let ready = state.withLockedValue({ $0.mailbox.removeValue(forKey: request) }) {
            return try ready.get()
        }
        return try await parked(request, since: started)
    }

    private func parked(_ request: Int, since started: ContinuousClock.Instant) async throws -> Lease {
        let timeout = configuration.timeout
        let lease = try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Lease, any Error>) in
                let parking: Parking = state.withLockedValue { state in
                    if let ready = state.mailbox.removeValue(forKey: request) { return .answered(ready) }
                    if state.cancelledEarly.remove(request) != nil { return .cancelledEarly }
                    state.continuations[request] = continuation
                    state.timers[request] = Task { [weak self] in
                        try? await Task.sleep(for: timeout)
                        guard !Task.isCancelled, let self else { return }
                        self.metrics.timeouts.increment()
                        self.run(self.state.withLockedValue { $0.machine.timedOut(request) })
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
                    self.run(self.state.withLockedValue { $0.machine.cancelled(request) })
                    continuation.resume(throwing: PoolError.cancelled)
                }
            }
        } onCancel: {
            let actions = state.withLockedValue { state -> [Machine.Action] in
                if state.continuations[request] == nil, state.mailbox[request] == nil {
                    state.cancelledEarly.insert(request)
                    return []
                }
                return state.machine.cancelled(request)
            }
            run(actions)
        }
        let waited = started.duration(to: clock.now)
        metrics.wait.recordNanoseconds(waited.components.seconds * 1_000_000_000 + waited.components.attoseconds / 1_000_000_000)
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
        run(state.withLockedValue { $0.machine.checkin(id, healthy: healthy, now: clock.now) })
    }

    /// A holder saw a disconnect error: the server probably restarted; older connections are replaced.
    public func disconnected() {
        run(state.withLockedValue { $0.machine.disconnected(now: clock.now) })
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

    /// Runs blocking work for a holder on the pool's threads.
    public func runBlocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await threads.runIfActive(body)
    }

    // MARK: Dispose and status

    /// Closes idle connections at once and leased ones when they come back; refuses new checkouts. Returns
    /// true when every connection was closed within `timeout`.
    @discardableResult
    public func dispose(timeout: Duration = .seconds(10)) async -> Bool {
        run(state.withLockedValue { $0.machine.dispose() })
        let closed = await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let done = self.state.withLockedValue { state in
                        if state.machine.isDisposed { return true }
                        state.disposeWaiters.append(continuation)
                        return false
                    }
                    if done { continuation.resume() }
                }
                return true
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
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

    // MARK: Actions

    private func run(_ actions: [Machine.Action]) {
        for action in actions {
            switch action {
            case .connect(let id):
                metrics.connects.increment()
                threads.submit { [driver] _ in
                    do {
                        let connection = try driver.connect()
                        self.run(self.state.withLockedValue { state in
                            state.connections[id] = connection
                            return state.machine.connected(id, now: self.clock.now)
                        })
                    } catch {
                        self.metrics.connectFailures.increment()
                        self.run(self.state.withLockedValue {
                            $0.machine.connectFailed(id, reason: "\(error)", now: self.clock.now)
                        })
                    }
                }
            case .lease(let id, let request):
                answer(request, with: state.withLockedValue { state in
                    state.connections[id].map { .success(Lease(id: id, connection: $0)) }
                } ?? .failure(.disposed))
            case .ping(let id, _):
                guard let connection = state.withLockedValue({ $0.connections[id] }) else { continue }
                threads.submit { [driver] _ in
                    let ok = driver.ping(connection)
                    self.run(self.state.withLockedValue { $0.machine.pinged(id, ok: ok, now: self.clock.now) })
                }
            case .close(let id):
                metrics.closes.increment()
                let connection = state.withLockedValue { $0.connections.removeValue(forKey: id) }
                threads.submit { [driver] _ in
                    if let connection { driver.close(connection) }
                    self.run(self.state.withLockedValue { $0.machine.closed(id, now: self.clock.now) })
                }
            case .fail(let request, let error):
                answer(request, with: .failure(error))
            }
        }
        let (status, disposed) = state.withLockedValue { state -> (PoolStatus, [CheckedContinuation<Void, Never>]) in
            guard state.machine.isDisposed, !state.disposeWaiters.isEmpty else { return (state.machine.status, []) }
            let waiters = state.disposeWaiters
            state.disposeWaiters.removeAll()
            return (state.machine.status, waiters)
        }
        metrics.record(status)
        disposed.forEach { $0.resume() }
    }

    private func answer(_ request: Int, with result: Result<Lease, PoolError>) {
        let (continuation, timer) = state.withLockedValue { state in
            let continuation = state.continuations.removeValue(forKey: request)
            if continuation == nil { state.mailbox[request] = result }
            return (continuation, state.timers.removeValue(forKey: request))
        }
        timer?.cancel()
        continuation?.resume(with: result.mapError { $0 as any Error })
    }
}
