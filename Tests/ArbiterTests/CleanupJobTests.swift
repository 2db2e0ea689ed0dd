import Testing
@testable import Arbiter
import Schedule
import TimeUnits

/// The scheduler with a fake clock: milliseconds passed in, actions checked.
@Suite("The job scheduler")
struct CleanupJobTests {
    static let start = utc(2026, 11, 27, 2, 59) * 1000

    func scheduler(_ expression: String = "0 3 * * *", timeout: Int64 = 60_000, onStart: Bool = false,
                   jitter: Int64 = 0) throws -> CleanupJob {
        var configuration = CleanupJob.Configuration(firing: try Schedule.parse(expression, zone: .utc, now: Self.start / 1000))
        configuration.timeoutMilliseconds = timeout
        configuration.killGraceMilliseconds = 5_000
        configuration.jitterMilliseconds = jitter
        configuration.runOnStart = onStart
        return CleanupJob(configuration: configuration, now: Self.start, jitter: { $0 / 2 })
    }

    @Test func firesOnTime() throws {
        var jobs = try scheduler()
        #expect(jobs.nextRun == utc(2026, 11, 27, 3) * 1000)
        #expect(jobs.tick(now: Self.start + 59_999).isEmpty)
        #expect(jobs.tick(now: Self.start + 60_000) == [.start])
        #expect(jobs.started(pid: 42, now: Self.start + 60_001) == [
            .report(.started(pid: 42)), .report(.scheduled(at: utc(2026, 11, 28, 3) * 1000)),
        ])
        #expect(jobs.exited(pid: 42, status: 0, now: Self.start + 65_001) == [
            .report(.finished(pid: 42, status: 0, milliseconds: 5_000)),
        ])
        #expect(jobs.isIdle && jobs.nextDeadline == utc(2026, 11, 28, 3) * 1000)
    }

    @Test func jitterDelaysEachRun() throws {
        let jobs = try scheduler(jitter: 30_000)
        #expect(jobs.nextRun == utc(2026, 11, 27, 3) * 1000 + 15_000)
    }

    /// Issue 15: with `--cleanup-jitter`, the run after the first pass of a repeated hour was followed by a
    /// second one in the second pass; a supervisor restarted in the second pass ran it again too.
    @Test func aRepeatedLocalTimeRunsOnceWhateverTheJitter() throws {
        let berlin = try TimeZoneRules.load("Europe/Berlin")
        var configuration = CleanupJob.Configuration(firing: try Schedule.parse("30 2 * * *", zone: berlin, now: 0))
        configuration.jitterMilliseconds = 80 * 60_000
        let fortyMinutes: Int64 = 40 * 60_000
        var jobs = CleanupJob(configuration: configuration, now: utc(2024, 10, 26, 12) * 1000, jitter: { $0 / 2 })
        // 02:30 CEST is 00:30 UTC; with 40 minutes of jitter the run starts at 01:10 UTC, in the second pass.
        #expect(jobs.nextRun == utc(2024, 10, 27, 0, 30) * 1000 + fortyMinutes)
        #expect(jobs.tick(now: utc(2024, 10, 27, 1, 10) * 1000) == [.start])
        #expect(jobs.nextRun == utc(2024, 10, 28, 1, 30) * 1000 + fortyMinutes)
        // Restarted at 01:20 UTC (02:20 CET, second pass): nothing until tomorrow.
        let restarted = CleanupJob(configuration: configuration, now: utc(2024, 10, 27, 1, 20) * 1000, jitter: { $0 / 2 })
        #expect(restarted.nextRun == utc(2024, 10, 28, 1, 30) * 1000 + fortyMinutes)
    }

    @Test func aTickWhileRunningIsSkipped() throws {
        var jobs = try scheduler("@every 1s", timeout: 60_000)
        let first = Self.start + 1000
        #expect(jobs.tick(now: first) == [.start])
        _ = jobs.started(pid: 7, now: first)
        #expect(jobs.tick(now: first + 1000) == [
            .report(.skippedStillRunning(pid: 7, runningForMilliseconds: 1000, next: first + 2000)),
        ])
        #expect(jobs.tick(now: first + 2000).count == 1, "skipped again, never a second start")
        _ = jobs.exited(pid: 7, status: 0, now: first + 2500)
        #expect(jobs.tick(now: first + 3000) == [.start])
    }

    @Test func aTimeoutEscalatesFromTermToKill() throws {
        var jobs = try scheduler(timeout: 10_000, onStart: true)
        #expect(jobs.tick(now: Self.start) == [.start])
        _ = jobs.started(pid: 9, now: Self.start)
        #expect(jobs.nextDeadline == Self.start + 10_000)
        #expect(jobs.tick(now: Self.start + 9_999).isEmpty)
        #expect(jobs.tick(now: Self.start + 10_000) == [
            .signal(pid: 9, .terminate), .report(.timedOut(pid: 9, milliseconds: 10_000)),
        ])
        #expect(jobs.tick(now: Self.start + 14_999).isEmpty)
        #expect(jobs.tick(now: Self.start + 15_000) == [.signal(pid: 9, .kill), .report(.killed(pid: 9))])
        #expect(jobs.tick(now: Self.start + 16_000).isEmpty, "KILL is sent once")
        _ = jobs.exited(pid: 9, status: 137, now: Self.start + 15_001)
        #expect(jobs.isIdle)
    }

    @Test func aStopInterruptsTheRunningJob() throws {
        var jobs = try scheduler(onStart: true)
        _ = jobs.tick(now: Self.start)
        _ = jobs.started(pid: 5, now: Self.start)
        #expect(jobs.stop(now: Self.start + 100, grace: 3_000) == [.signal(pid: 5, .terminate)])
        #expect(!jobs.isIdle && jobs.nextRun == nil)
        #expect(jobs.tick(now: Self.start + 3_100) == [.signal(pid: 5, .kill), .report(.killed(pid: 5))])
        _ = jobs.exited(pid: 5, status: 137, now: Self.start + 3_200)
        #expect(jobs.isIdle && jobs.nextDeadline == nil)
        #expect(jobs.tick(now: utc(2026, 11, 28, 3) * 1000).isEmpty, "no run after a stop")
    }

    @Test func aFastStopKillsTheGroupAtOnce() throws {
        var jobs = try scheduler(onStart: true)
        _ = jobs.tick(now: Self.start)
        _ = jobs.started(pid: 5, now: Self.start)
        #expect(jobs.stop(now: Self.start + 100, grace: 8_000) == [.signal(pid: 5, .terminate)])
        #expect(jobs.stopNow(now: Self.start + 200) == [.signal(pid: 5, .kill), .report(.killed(pid: 5))])
        #expect(jobs.stopNow(now: Self.start + 300).isEmpty, "KILL is sent once")
    }

    @Test func aStopWithNothingRunningIsImmediate() throws {
        var jobs = try scheduler()
        #expect(jobs.stop(now: Self.start, grace: 3_000).isEmpty)
        #expect(jobs.isIdle && jobs.nextDeadline == nil)
    }

    @Test func aFailedStartWaitsForTheNextTime() throws {
        var jobs = try scheduler("@every 1s")
        #expect(jobs.tick(now: Self.start + 1000) == [.start])
        #expect(jobs.startFailed("no such file", now: Self.start + 1000) == [
            .report(.startFailed("no such file")), .report(.scheduled(at: Self.start + 2000)),
        ])
        #expect(jobs.isIdle && jobs.owns(0) == false)
    }

    @Test func otherChildrenAreNotTheJob() throws {
        var jobs = try scheduler(onStart: true)
        _ = jobs.tick(now: Self.start)
        _ = jobs.started(pid: 11, now: Self.start)
        #expect(jobs.owns(11) && !jobs.owns(12))
        #expect(jobs.exited(pid: 12, status: 0, now: Self.start).isEmpty)
        #expect(jobs.runningPID == 11)
    }
}

/// Seconds since the epoch of a UTC wall-clock time.
func utc(_ year: Int, _ month: Int, _ day: Int, _ hour: Int = 0, _ minute: Int = 0, _ second: Int = 0) -> Int64 {
    CivilTime(year: year, month: month, day: day, hour: hour, minute: minute, second: second).seconds
}

extension CleanupJob.Configuration {
    /// A configuration that fires as the schedule does, as the supervisor builds it.
    init(firing schedule: Schedule) {
        self.init { schedule.next(after: $0) }
    }
}
