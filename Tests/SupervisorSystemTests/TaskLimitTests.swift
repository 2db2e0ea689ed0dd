import Foundation
import SupervisorSystem
import Testing

/// A worker that cannot create a thread dies of a trap (SIGILL) with no message of its own; the supervisor says
/// when the cgroup's pids limit refused forks meanwhile (the kernel counts them in `pids.events`).
@Suite("The limit on tasks, named when a worker dies of a trap")
struct TaskLimitTests {
    @Test func refusalsCountedSinceTheLastLookAreNamedOnce() throws {
        let directory = NSTemporaryDirectory() + "prefork-pids-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let events = directory + "/pids.events"
        try "max 3\n".write(toFile: events, atomically: true, encoding: .utf8)
        try "50\n".write(toFile: directory + "/pids.max", atomically: true, encoding: .utf8)
        var limit = TaskLimit(eventsFile: events)
        let quiet = limit.explanation()
        #expect(quiet == nil || quiet!.contains("RLIMIT_NPROC"), "no refusal since start: \(quiet ?? "")")
        try "max 5\n".write(toFile: events, atomically: true, encoding: .utf8)
        let explained = limit.explanation()
        let said = explained ?? ""
        #expect(said.contains("pids.max (50 in \(directory)) refused 2 thread or process creations"), "\(said)")
        let again = limit.explanation()
        #expect(again == nil || again!.contains("RLIMIT_NPROC"), "the same refusals are not named twice")
    }

    /// The once-a-second look names only the cgroup's refusals, never RLIMIT_NPROC (which is a guess at a trap).
    @Test func theLookOnceASecondNamesOnlyNewRefusals() throws {
        let directory = NSTemporaryDirectory() + "prefork-pids-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let events = directory + "/pids.events"
        try "max 0\n".write(toFile: events, atomically: true, encoding: .utf8)
        try "10\n".write(toFile: directory + "/pids.max", atomically: true, encoding: .utf8)
        var limit = TaskLimit(eventsFile: events)
        #expect(limit.isWatchable)
        #expect(limit.refusalsSinceLastLook() == nil)
        try "max 4\n".write(toFile: events, atomically: true, encoding: .utf8)
        #expect(limit.refusalsSinceLastLook()?.contains("refused 4 thread or process creations") == true)
        #expect(limit.refusalsSinceLastLook() == nil)
        #expect(!TaskLimit(eventsFile: nil).isWatchable)
    }
}
