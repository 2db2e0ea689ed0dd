import PoolCore
import Testing

/// Which lane a pipelined call takes.
@Suite("Lane choice")
struct LaneChoiceTests {
    typealias Choice = LaneChoice
    typealias Lane = Choice.Lane

        func decide(_ lanes: [Lane], opening: Bool = false, canOpen: Bool = true, limit: Int = 64) -> Choice.Decision {
        Choice.decide(lanes: lanes, opening: opening, canOpen: canOpen, limit: limit)
    }

    @Test func theFirstCallOpensALane() {
        #expect(decide([]) == .open)
        #expect(decide([], opening: true) == .wait)
    }

    @Test func withNoLaneACheckoutIsAskedForEvenAtTheLimit() {
        // It waits in the pool's queue, or fails with the pool's timeout: never waits for nothing.
        #expect(decide([], canOpen: false) == .open)
        #expect(decide([Lane(pending: 0, stalled: false, retiring: true)], canOpen: false) == .open)
    }

    @Test func fastWorkSharesTheLeastLoadedLane() {
        #expect(decide([Lane(pending: 3, stalled: false)]) == .use(0))
        #expect(decide([Lane(pending: 3, stalled: false), Lane(pending: 1, stalled: false), Lane(pending: 2, stalled: false)]) == .use(1))
        #expect(decide([Lane(pending: 3, stalled: false), Lane(pending: 0, stalled: false)]) == .use(1))
    }

    @Test func aStalledLaneTakesNothingWhileAnotherCanBeOpened() {
        let stalled = Lane(pending: 1, stalled: true)
        #expect(decide([stalled]) == .open)
        #expect(decide([stalled], opening: true) == .wait)
        #expect(decide([stalled, Lane(pending: 5, stalled: false)]) == .use(1), "a moving lane, however loaded, before a new one")
    }

    @Test func atThePoolsLimitTheLeastLoadedLaneTakesItStalledOrNot() {
        #expect(decide([Lane(pending: 4, stalled: true), Lane(pending: 2, stalled: true)], canOpen: false) == .use(1))
    }

    @Test func aFullLaneIsPassedOverLikeAStalledOne() {
        #expect(decide([Lane(pending: 64, stalled: false)]) == .open)
        #expect(decide([Lane(pending: 64, stalled: false), Lane(pending: 63, stalled: false)]) == .use(1))
        #expect(decide([Lane(pending: 64, stalled: false)], canOpen: false) == .use(0))
        #expect(decide([Lane(pending: 2, stalled: false)], limit: 2) == .open)
    }

    @Test func aRetiringLaneTakesNothing() {
        let retiring = Lane(pending: 0, stalled: false, retiring: true)
        #expect(decide([retiring]) == .open)
        #expect(decide([retiring, Lane(pending: 9, stalled: false)]) == .use(1))
        #expect(decide([retiring, Lane(pending: 9, stalled: true)], canOpen: false) == .use(1))
    }

    /// Every combination of up to three lanes: the decision is always one of the allowed answers, a chosen lane is
    /// never retiring, and a lane that is neither stalled nor full is chosen whenever there is one, the least
    /// loaded of them.
    @Test func everySmallCaseKeepsTheRules() {
        let shapes: [Lane] = [
            Lane(pending: 0, stalled: false), Lane(pending: 1, stalled: false), Lane(pending: 2, stalled: true),
            Lane(pending: 2, stalled: false), Lane(pending: 64, stalled: false), Lane(pending: 0, stalled: false, retiring: true),
            Lane(pending: 3, stalled: true, retiring: true),
        ]
        var cases: [[Lane]] = [[]]
        var longest: [[Lane]] = [[]]
        for _ in 0..<3 {
            longest = longest.flatMap { prefix in shapes.map { prefix + [$0] } }
            cases += longest
        }
        for lanes in cases {
            for opening in [false, true] {
                for canOpen in [false, true] {
                    let decision = decide(lanes, opening: opening, canOpen: canOpen)
                    let moving = lanes.indices.filter { !lanes[$0].retiring && lanes[$0].pending < 64 && !lanes[$0].stalled }
                    if let lightest = moving.map({ lanes[$0].pending }).min() {
                        guard case .use(let index) = decision else { Issue.record("\(lanes) \(opening) \(canOpen): \(decision)"); continue }
                        #expect(moving.contains(index) && lanes[index].pending == lightest)
                    } else if opening {
                        #expect(decision == .wait)
                    } else if canOpen || lanes.allSatisfy(\.retiring) {
                        #expect(decision == .open)
                    } else if case .use(let index) = decision {
                        #expect(!lanes[index].retiring)
                    } else {
                        Issue.record("\(lanes) at the limit: \(decision)")
                    }
                }
            }
        }
    }
}
