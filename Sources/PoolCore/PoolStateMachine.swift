/// The QueuePool contract as a plain value: which connection goes to which checkout, when to open, ping,
/// recycle or close one. Events and the current time in, actions out; the shell does the I/O.
///
/// The limit holds by construction: a connection counts from the moment its `.connect` is emitted until its
/// `closed` event, so connections open, opening or closing never exceed `size + maxOverflow`.
public struct PoolStateMachine<Instant: InstantProtocol & Sendable>: Sendable where Instant.Duration == Duration {
    public typealias ConnectionID = Int
    public typealias RequestID = Int

    public enum Action: Sendable, Equatable {
        /// Open a connection; answer with `connected` or `connectFailed`.
        case connect(ConnectionID)
        /// Hand the connection to the request; it comes back with `checkin`.
        case lease(ConnectionID, to: RequestID)
        /// Check the connection on behalf of the request; answer with `pinged`.
        case ping(ConnectionID, for: RequestID)
        /// Close the connection; answer with `closed`.
        case close(ConnectionID)
        case fail(RequestID, PoolError)
    }

    /// A connection's life. Allowed: connecting → idle | leased (or gone on failure); idle → leased | pinging |
    /// closing; pinging → leased | idle | closing; leased → idle | leased (to the next waiter) | closing;
    /// closing → gone (`closed`).
    @usableFromInline
    enum State: Sendable, Equatable {
        case connecting
        case idle
        case pinging(RequestID)
        case leased(RequestID)
        case closing
    }

    @usableFromInline
    struct StateCounts: Sendable, Equatable {
        @usableFromInline var connecting = 0, idle = 0, checkedOut = 0, closing = 0
        @inlinable init() {}
    }

    @usableFromInline
    struct Connection: Sendable, Equatable {
        @usableFromInline var state: State
        @usableFromInline var createdAt: Instant?
        /// The last time a query on it succeeded (or it was opened or pinged): no pre-ping within the window.
        @usableFromInline var lastUsedOK: Instant?

        @inlinable
        init(state: State) {
            self.state = state
        }
    }

    public let configuration: PoolConfiguration
    @usableFromInline
    var connections: [ConnectionID: Connection] = [:]
    /// Connections per state, kept in step by `setState`, so the status and the limit check cost nothing.
    @usableFromInline
    var counts = StateCounts()
    /// Idle connections, most recently returned last: LIFO (SQLAlchemy's `use_lifo`), so the warm ones are
    /// reused, skip the pre-ping, and the cold ones are the ones that age out.
    @usableFromInline
    var idle: [ConnectionID] = []
    /// Checkouts waiting for a connection, first come first served.
    @usableFromInline
    var waiters: [RequestID] = []
    /// When each unanswered checkout times out (`timeout` after it arrived).
    @usableFromInline
    var deadlines: [RequestID: Instant] = [:]
    /// Checkouts that gave up while a ping for them was in flight.
    @usableFromInline
    var abandoned: Set<RequestID> = []
    /// Connections created before this moment are stale: a disconnect error means the server probably
    /// restarted, and their sockets point at a dead backend.
    @usableFromInline
    var invalidatedBefore: Instant?
    @usableFromInline
    var disposing = false
    @usableFromInline
    var nextConnectionID = 0

    @inlinable
    public init(configuration: PoolConfiguration) {
        self.configuration = configuration
    }

    // MARK: Events

    @inlinable
    public mutating func checkout(_ request: RequestID, now: Instant) -> [Action] {
        guard !disposing else { return [.fail(request, .disposed)] }
        waiters.append(request)
        deadlines[request] = now.advanced(by: configuration.timeout)
        return answered(assign(now: now))
    }

    @inlinable
    public mutating func connected(_ id: ConnectionID, now: Instant) -> [Action] {
        guard connections[id]?.state == .connecting else { preconditionFailure("connected: \(id) was not connecting") }
        connections[id]?.createdAt = now
        connections[id]?.lastUsedOK = now
        return answered(release(id, now: now) + assign(now: now))
    }

    /// Fails the oldest waiter with the reason, so that during an outage checkouts fail fast and clearly
    /// instead of waiting for their timeout; the next waiter gets its own attempt.
    @inlinable
    public mutating func connectFailed(_ id: ConnectionID, reason: String, now: Instant) -> [Action] {
        guard connections[id]?.state == .connecting else { preconditionFailure("connectFailed: \(id) was not connecting") }
        setState(id, nil)
        var actions: [Action] = []
        if !waiters.isEmpty {
            actions.append(.fail(waiters.removeFirst(), .connectFailed(reason)))
        }
        return answered(actions + assign(now: now))
    }

    /// A leased connection comes back. `healthy` is false when it broke or could not be reset.
    @inlinable
    public mutating func checkin(_ id: ConnectionID, healthy: Bool, now: Instant) -> [Action] {
        guard case .leased = connections[id]?.state else { preconditionFailure("checkin: \(id) was not leased") }
        guard healthy else { return answered(close(id) + assign(now: now)) }
        connections[id]?.lastUsedOK = now
        return answered(release(id, now: now) + assign(now: now))
    }

    @inlinable
    public mutating func pinged(_ id: ConnectionID, ok: Bool, now: Instant) -> [Action] {
        guard case .pinging(let request) = connections[id]?.state else { preconditionFailure("pinged: \(id) was not pinging") }
        let wanted = abandoned.remove(request) == nil
        guard ok else {
            // It died while idle: the server probably restarted, so every connection as old is suspect.
            invalidatedBefore = now
            if wanted { waiters.insert(request, at: 0) }
            return answered(close(id) + closeStaleIdle(now: now) + assign(now: now))
        }
        connections[id]?.lastUsedOK = now
        if wanted, !disposing {
            setState(id, .leased(request))
            return answered([.lease(id, to: request)])
        }
        var actions: [Action] = wanted ? [.fail(request, .disposed)] : []
        setState(id, .leased(request))
        actions += release(id, now: now) + assign(now: now)
        return answered(actions)
    }

    /// A query on a leased connection failed with a disconnect: the server probably restarted. Connections
    /// older than now are replaced (idle ones at once, leased ones when they come back).
    @inlinable
    public mutating func disconnected(now: Instant) -> [Action] {
        invalidatedBefore = now
        return closeStaleIdle(now: now)
    }

    @inlinable
    public mutating func closed(_ id: ConnectionID, now: Instant) -> [Action] {
        guard connections[id]?.state == .closing else { preconditionFailure("closed: \(id) was not closing") }
        setState(id, nil)
        return answered(assign(now: now))
    }

    /// The checkout's timeout fired; nothing happens if it was served meanwhile.
    @inlinable
    public mutating func timedOut(_ request: RequestID) -> [Action] {
        answered(giveUp(request, .timedOut(size: configuration.size, maxOverflow: configuration.maxOverflow,
                                           timeout: configuration.timeout)))
    }

    /// Fails every checkout whose deadline has passed: one sweep for the whole pool, instead of a timer for
    /// every waiting checkout.
    @inlinable
    public mutating func expire(now: Instant) -> [Action] {
        let expired = deadlines.filter { $0.value <= now }.map(\.key).sorted()
        return expired.flatMap { timedOut($0) }
    }

    /// When the next checkout times out: the oldest waiter's deadline (they arrive in order and share one
    /// timeout), or a pinging one's if earlier. nil when nobody waits.
    @inlinable
    public var nextTimeout: Instant? {
        if let first = waiters.first, let deadline = deadlines[first] {
            return deadline
        }
        return deadlines.values.min()
    }

    /// The waiting task was cancelled; it leaves the queue.
    @inlinable
    public mutating func cancelled(_ request: RequestID) -> [Action] {
        answered(giveUp(request, .cancelled))
    }

    /// Closes idle connections at once and leased ones when they come back; refuses every checkout from now.
    @inlinable
    public mutating func dispose() -> [Action] {
        disposing = true
        var actions = waiters.map { Action.fail($0, .disposed) }
        waiters.removeAll()
        for id in idle { actions += close(id) }
        idle.removeAll()
        return answered(actions)
    }

    // MARK: Queries

    /// The connections handed out and not back yet: what their holders run is still running.
    @inlinable
    public var leased: [ConnectionID] {
        connections.compactMap { entry in
            if case .leased = entry.value.state { entry.key } else { nil }
        }
    }

    /// Disposed and every connection closed.
    @inlinable
    public var isDisposed: Bool { disposing && connections.isEmpty }
    /// `dispose` was called: no more checkouts.
    public var isDisposing: Bool { disposing }

    @inlinable
    public var status: PoolStatus {
        var status = PoolStatus(size: configuration.size, maxOverflow: configuration.maxOverflow)
        status.connecting = counts.connecting
        status.idle = counts.idle
        status.checkedOut = counts.checkedOut
        status.closing = counts.closing
        status.waiting = waiters.count
        return status
    }

    /// Moves a connection to `state` (nil: gone) and keeps `counts` in step.
    @inlinable
    mutating func setState(_ id: ConnectionID, _ state: State?) {
        if let old = connections[id]?.state { adjust(old, by: -1) }
        if let state {
            connections[id]?.state = state
            adjust(state, by: 1)
        } else {
            connections[id] = nil
        }
    }

    @inlinable
    mutating func adjust(_ state: State, by delta: Int) {
        switch state {
        case .connecting: counts.connecting += delta
        case .idle: counts.idle += delta
        case .pinging, .leased: counts.checkedOut += delta
        case .closing: counts.closing += delta
        }
    }

    // MARK: Internals

    /// Forgets the deadlines of the checkouts these actions answer.
    @inlinable
    mutating func answered(_ actions: [Action]) -> [Action] {
        for action in actions {
            switch action {
            case .lease(_, let request), .fail(let request, _): deadlines[request] = nil
            case .connect, .ping, .close: break
            }
        }
        return actions
    }

    @inlinable
    mutating func giveUp(_ request: RequestID, _ error: PoolError) -> [Action] {
        if let index = waiters.firstIndex(of: request) {
            waiters.remove(at: index)
            return [.fail(request, error)]
        }
        if connections.values.contains(where: { $0.state == .pinging(request) }) {
            abandoned.insert(request)
            return [.fail(request, error)]
        }
        return []  // served already: the lease stands
    }

    @inlinable
    func isStale(_ connection: Connection, now: Instant) -> Bool {
        guard let createdAt = connection.createdAt else { return false }
        if let recycle = configuration.recycle, createdAt.duration(to: now) >= recycle { return true }
        if let invalidatedBefore, createdAt < invalidatedBefore { return true }
        return false
    }

    @inlinable
    mutating func close(_ id: ConnectionID) -> [Action] {
        setState(id, .closing)
        return [.close(id)]
    }

    @inlinable
    mutating func closeStaleIdle(now: Instant) -> [Action] {
        let stale = idle.filter { connections[$0].map { isStale($0, now: now) } ?? false }
        idle.removeAll { stale.contains($0) }
        return stale.flatMap { close($0) }
    }

    /// A connection that is free again: to the next waiter, back to the idle stack, or closed when stale,
    /// when the pool is disposing, or when the idle stack already holds `size` (an overflow connection).
    @inlinable
    mutating func release(_ id: ConnectionID, now: Instant) -> [Action] {
        guard let connection = connections[id] else { return [] }
        if disposing || isStale(connection, now: now) { return close(id) }
        if !waiters.isEmpty {
            let request = waiters.removeFirst()
            setState(id, .leased(request))
            return [.lease(id, to: request)]
        }
        if idle.count >= configuration.size { return close(id) }
        setState(id, .idle)
        idle.append(id)
        return []
    }

    /// Serves waiters from the idle stack (pinging when due, replacing stale ones), then opens connections
    /// for the waiters left, up to the limit.
    @inlinable
    mutating func assign(now: Instant) -> [Action] {
        var actions: [Action] = []
        while !waiters.isEmpty, let id = idle.popLast() {
            let connection = connections[id]!
            if isStale(connection, now: now) {
                actions += close(id)
                continue
            }
            let request = waiters.removeFirst()
            if configuration.prePing, needsPing(connection, now: now) {
                setState(id, .pinging(request))
                actions.append(.ping(id, for: request))
            } else {
                setState(id, .leased(request))
                actions.append(.lease(id, to: request))
            }
        }
        let wanted = waiters.count - counts.connecting
        let room = configuration.maximum - connections.count
        if !disposing, wanted > 0, room > 0 {
            for _ in 0..<min(wanted, room) {
                let id = nextConnectionID
                nextConnectionID += 1
                connections[id] = Connection(state: .connecting)
                counts.connecting += 1
                actions.append(.connect(id))
            }
        }
        return actions
    }

    @inlinable
    func needsPing(_ connection: Connection, now: Instant) -> Bool {
        guard let lastUsedOK = connection.lastUsedOK else { return true }
        return lastUsedOK.duration(to: now) > configuration.pingBypassWindow
    }
}

/// A snapshot for humans and metrics.
public struct PoolStatus: Sendable, Equatable, CustomStringConvertible {
    public var size: Int
    public var maxOverflow: Int
    public var idle = 0
    public var checkedOut = 0
    public var connecting = 0
    public var closing = 0
    public var waiting = 0

    @inlinable
    public init(size: Int, maxOverflow: Int) {
        self.size = size
        self.maxOverflow = maxOverflow
    }

    /// Connections open or opening, the number the limit bounds.
    public var total: Int { idle + checkedOut + connecting + closing }
    /// As SQLAlchemy's `overflow()`: connections beyond the pool size (negative while below it).
    public var overflow: Int { total - size }

    /// SQLAlchemy's `QueuePool.status()`, plus the waiters.
    public var description: String {
        "Pool size: \(size)  Connections in pool: \(idle) Current Overflow: \(overflow) "
            + "Current Checked out connections: \(checkedOut) Waiting: \(waiting)"
    }
}
