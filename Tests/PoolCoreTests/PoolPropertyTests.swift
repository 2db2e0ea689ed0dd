@testable import PoolCore
import ManualClock
import Testing

@Suite("The limit and the ledger hold under random interleavings")
struct PoolPropertyTests {
    @Test(arguments: 0..<400)
    func randomSequence(seed: Int) {
        var random = SplitMix64(state: UInt64(seed))
        let size = Int.random(in: 0...4, using: &random)
        let overflow = Int.random(in: (size == 0 ? 1 : 0)...4, using: &random)
        var sim = Simulator {
            $0.size = size
            $0.maxOverflow = overflow
            $0.recycle = Bool.random(using: &random) ? .seconds(Int64.random(in: 1...20, using: &random)) : nil
            $0.prePing = Bool.random(using: &random)
        }
        let limit = size + overflow
        for step in 0..<250 {
            switch Int.random(in: 0..<100, using: &random) {
            case 0..<30:
                sim.checkout()
            case 30..<42:
                if let id = sim.connecting.randomElement(using: &random) {
                    sim.connect(id, ok: Int.random(in: 0..<10, using: &random) > 0)
                }
            case 42..<50:
                if let id = sim.pinging.keys.randomElement(using: &random) {
                    sim.ping(id, ok: Int.random(in: 0..<8, using: &random) > 0)
                }
            case 50..<58:
                if let id = sim.closing.randomElement(using: &random) { sim.close(id) }
            case 58..<78:
                if let id = sim.held.keys.randomElement(using: &random) {
                    sim.checkin(id, healthy: Int.random(in: 0..<10, using: &random) > 0)
                }
            case 78..<84:
                if let request = sim.waiting.randomElement(using: &random) { sim.apply(sim.machine.timedOut(request)) }
            case 84..<88:
                if let request = sim.waiting.randomElement(using: &random) { sim.apply(sim.machine.cancelled(request)) }
            case 88..<94:
                sim.advance(.milliseconds(Int64.random(in: 0...3000, using: &random)))
            case 94..<97:
                sim.advance(.seconds(Int64.random(in: 0...40, using: &random)))
                sim.apply(sim.machine.expire(now: sim.now))
            case 97..<99:
                sim.apply(sim.machine.disconnected(now: sim.now))
            default:
                if step > 200 { sim.apply(sim.machine.dispose()) }
            }
            // The hard limit, and the ledger agrees with the machine.
            #expect(sim.machine.status.total <= limit, "seed \(seed) step \(step)")
            #expect(sim.machine.status.idle <= size, "seed \(seed) step \(step)")
            #expect(sim.machine.status.checkedOut == sim.held.count + sim.pinging.count, "seed \(seed) step \(step)")
            #expect(sim.machine.status.connecting == sim.connecting.count, "seed \(seed) step \(step)")
            #expect(sim.machine.status.closing == sim.closing.count, "seed \(seed) step \(step)")
            // A deadline exists for exactly the checkouts still unanswered, and none of them is overdue
            // right after a sweep.
            #expect(Set(sim.machine.deadlines.keys) == Set(sim.waiting), "seed \(seed) step \(step)")
            if sim.machine.status.total > limit { return }
        }
        // Everyone gets an answer: finish every operation, return every connection, dispose.
        sim.apply(sim.machine.dispose())
        while !sim.held.isEmpty || !sim.connecting.isEmpty || !sim.pinging.isEmpty || !sim.closing.isEmpty {
            sim.settle()
            for id in Array(sim.held.keys) { sim.checkin(id) }
        }
        #expect(sim.machine.isDisposed, "seed \(seed)")
        #expect(sim.waiting.isEmpty, "seed \(seed): requests never answered: \(sim.waiting)")
        #expect(sim.maximumSeen <= limit)
    }

    @Test func aBurstOf200OnTenPlusTenNeverOpensMoreThan20() {
        var sim = Simulator()
        for _ in 0..<200 { sim.checkout() }
        #expect(sim.connecting.count == 20)
        for id in Array(sim.connecting) { sim.connect(id) }
        var served = 0
        while let (id, _) = sim.held.first {
            sim.checkin(id)
            served += 1
            #expect(sim.machine.status.total <= 20)
        }
        #expect(served == 200)
        #expect(sim.closing.count == 10)  // the overflow closed when the queue drained
        #expect(sim.machine.status.idle == 10)
    }
}
