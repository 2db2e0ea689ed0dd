/// Which shared connection (lane) a pipelined call goes to: the decision of a multiplexer, apart from its I/O.
///
/// Sharing one connection batches fast statements, but a slow one (a report, a lock wait) holds up everything
/// queued behind it on the same connection, where a connection per statement held up nobody. So a stalled lane
/// (calls pending, and no answer for a whole reactor tick) takes no new calls while another lane can be opened:
/// fast work shares one connection, and each slow statement ends up with a connection of its own, as before,
/// within the pool's limit. A clock read at each call would not do: a worker thread that was itself not
/// scheduled for 10 ms on a busy machine saw every lane stalled, opened lanes for nothing and lost half its
/// throughput (measured); the tick looks only after the reactor has read what arrived.
public enum LaneChoice {
    /// What the multiplexer knows of one lane.
    public struct Lane: Sendable, Equatable {
        /// Calls queued or sent and not answered.
        public var pending: Int
        /// Calls pending and no answer for a whole tick.
        public var stalled: Bool
        /// Held past its turn (or the pool is closing): it finishes what it has and goes back to the pool.
        public var retiring: Bool

        public init(pending: Int, stalled: Bool = false, retiring: Bool = false) {
            self.pending = pending
            self.stalled = stalled
            self.retiring = retiring
        }
    }

    public enum Decision: Sendable, Equatable {
        /// Queue the call on this lane.
        case use(Int)
        /// Ask the pool for another lane; the call waits for it.
        case open
        /// A lane is being opened already, and every other one is stalled: wait for it.
        case wait
    }

    /// - Parameters:
    ///   - lanes: the lanes held now.
    ///   - opening: a checkout for another lane is under way.
    ///   - canOpen: the pool may give another connection (below its limit, not closing).
    ///   - limit: a lane with this many calls pending is full, as a stalled one (Vert.x's pipelining limit): a
    ///     burst that arrives in one turn spreads over several lanes rather than queueing behind one.
    public static func decide(lanes: [Lane], opening: Bool, canOpen: @autoclosure () -> Bool, limit: Int = 64) -> Decision {
        var best: Int?
        var anyLive: Int?
        for (index, lane) in lanes.enumerated() where !lane.retiring {
            if anyLive.map({ lanes[$0].pending > lane.pending }) ?? true { anyLive = index }
            if lane.pending >= limit { continue }
            if lane.stalled { continue }
            if best.map({ lanes[$0].pending > lane.pending }) ?? true { best = index }
        }
        if let best { return .use(best) }
        if opening { return .wait }
        // With no lane at all, a checkout even at the limit: it waits in the pool's queue (or times out there).
        guard let anyLive, !canOpen() else { return .open }
        // At the limit with every lane stalled: the least loaded one, rather than no answer.
        return .use(anyLive)
    }
}
