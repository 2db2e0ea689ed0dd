@testable import Arbiter
import Testing

/// A worker is a process tree. What is left of a gone worker's tree (re-parented to the supervisor) is an orphan:
/// TERM at once, KILL after the graceful timeout, and the supervisor does not exit while one runs.
@Suite("Orphans of gone workers")
struct OrphanTests {
    func running() -> Harness {
        Harness.running(workers: 2) { $0.gracefulTimeout = .seconds(8) }
    }

    @Test func anOrphanGetsTermThenKillAfterTheGracefulTimeout() {
        var harness = running()
        let found = harness.run(harness.arbiter.adopted(pid: 900, now: harness.now))
        #expect(found == [.report(.orphanSignalled(pid: 900, killing: false)), .signal(pid: 900, .terminate)])
        #expect(harness.arbiter.orphansSignalled == 1)
        #expect(harness.arbiter.nextDeadline == harness.now.advanced(by: .seconds(8)))
        #expect(harness.advance(.milliseconds(7999)).signals(.kill).isEmpty)
        #expect(harness.advance(.milliseconds(1)).signals(.kill) == [900])
        #expect(harness.arbiter.orphanCount == 1, "still counted until reaped")
        #expect(harness.exit(900, .signaled(9)) == [.report(.orphanReaped(pid: 900, status: .signaled(9)))])
        #expect(harness.arbiter.orphanCount == 0)
        #expect(harness.arbiter.nextDeadline == nil)
    }

    @Test func workersAndKnownOrphansAreNotAdoptedAgain() {
        var harness = running()
        #expect(harness.arbiter.adopted(pid: 100, now: harness.now).isEmpty)
        _ = harness.arbiter.adopted(pid: 900, now: harness.now)
        #expect(harness.arbiter.adopted(pid: 900, now: harness.now).isEmpty)
        #expect(harness.arbiter.orphansSignalled == 1)
    }

    @Test func theSupervisorWaitsForOrphansBeforeItExits() {
        var harness = running()
        _ = harness.signal(.terminate)
        _ = harness.arbiter.adopted(pid: 900, now: harness.now)
        _ = harness.exit(100, .exited(0))
        #expect(harness.exit(101, .exited(0)).exitCode == nil, "an orphan still runs")
        #expect(harness.arbiter.statusLine == "stopping: 0 workers left, 1 orphan")
        #expect(harness.exit(900, .exited(0)).exitCode == 0)
    }

    @Test func aGracefulStopKillsOrphansNoLaterThanItsDeadline() {
        var harness = running()
        _ = harness.arbiter.adopted(pid: 900, now: harness.now)
        _ = harness.advance(.seconds(5))
        _ = harness.signal(.terminate)  // deadline at 13 s; the orphan's own at 8 s stays
        #expect(harness.advance(.seconds(3)).signals(.kill) == [900])
        var later = running()
        _ = later.signal(.terminate)  // deadline at 8 s
        _ = later.advance(.seconds(6))
        _ = later.arbiter.adopted(pid: 901, now: later.now)  // its own would be at 14 s
        #expect(later.advance(.seconds(2)).signals(.kill).contains(901))
    }

    @Test func aFastStopKillsOrphansAtOnce() {
        var harness = running()
        _ = harness.arbiter.adopted(pid: 900, now: harness.now)
        #expect(harness.signal(.quit).signals(.kill).contains(900))
        var second = running()
        _ = second.signal(.terminate)
        _ = second.arbiter.adopted(pid: 901, now: second.now)
        #expect(second.signal(.terminate).signals(.kill).contains(901), "a second TERM is fast")
    }

    /// A worker KILLed at the stop's deadline leaves children that are re-parented after it: no grace is left.
    @Test func anOrphanFoundAfterTheDeadlineIsKilledAtOnce() {
        var harness = running()
        _ = harness.signal(.terminate)
        _ = harness.advance(.seconds(8))  // both workers get KILL
        let found = harness.run(harness.arbiter.adopted(pid: 900, now: harness.now))
        #expect(found == [.report(.orphanSignalled(pid: 900, killing: true)), .signal(pid: 900, .kill)])
        _ = harness.exit(100, .signaled(9))
        #expect(harness.exit(101, .signaled(9)).exitCode == nil)
        #expect(harness.exit(900, .signaled(9)).exitCode == 0)
    }

    /// The cleanup job may outlive the workers; what its tree leaves behind then is killed at once.
    @Test func anOrphanFoundOnceStoppedIsKilledAtOnce() {
        var harness = running()
        _ = harness.signal(.terminate)
        _ = harness.exit(100, .exited(0))
        #expect(harness.exit(101, .exited(0)).exitCode == 0)
        #expect(harness.arbiter.adopted(pid: 900, now: harness.now).signals(.kill) == [900])
        #expect(harness.arbiter.orphanCount == 1)
        _ = harness.exit(900, .signaled(9))
        #expect(harness.arbiter.orphanCount == 0)
    }

    /// What was below a worker when it got TERM keeps that worker's KILL deadline when it is re-parented later.
    @Test func anOrphanInheritsTheDeadlineOfTheTreeItWasIn() {
        var harness = running()
        _ = harness.signal(.hangup)  // slot 0's replacement (102) boots
        _ = harness.ready(102)       // 100 gets TERM, KILL at 8 s
        let deadline = harness.arbiter.killDeadline(of: 100, now: harness.now)
        #expect(deadline == harness.now.advanced(by: .seconds(8)))
        _ = harness.advance(.seconds(5))
        _ = harness.exit(100, .exited(0))
        // 100's setsid'd child, re-parented 5 s in: KILL at 8 s, not at 13 s.
        #expect(harness.run(harness.arbiter.adopted(pid: 900, deadline: deadline, now: harness.now)).signals(.terminate) == [900])
        #expect(harness.advance(.seconds(3)).signals(.kill) == [900])
        // Found after its tree's deadline: KILL at once.
        #expect(harness.run(harness.arbiter.adopted(pid: 901, deadline: deadline, now: harness.now)).signals(.kill) == [901])
        #expect(harness.arbiter.killDeadline(of: 901, now: harness.now) == harness.now, "its KILL went out")
        #expect(harness.arbiter.killDeadline(of: 101, now: harness.now) == nil, "a serving worker has none")
    }

    @Test func anOrphansExitRestartsNothing() {
        var harness = running()
        _ = harness.arbiter.adopted(pid: 900, now: harness.now)
        let actions = harness.exit(900, .exited(1))
        #expect(actions.spawns.isEmpty)
        #expect(harness.pids == [100, 101])
    }
}
