import Glibc

/// Whether the limit on tasks was in the way: the cgroup's `pids.max` (v1 or v2) counts threads as well as
/// processes, and so does `RLIMIT_NPROC`. A worker that cannot create a thread dies of a runtime trap (SIGILL
/// from Swift, SIGABRT from most C++), and all the log said was `exited with signal 4`.
package struct TaskLimit {
    /// The `pids.events` file of the supervisor's cgroup, where the kernel counts forks refused at `pids.max`.
    let events: String?
    private var refusedSoFar: Int

    package init() {
        self.init(eventsFile: Self.eventsFile())
    }

    /// `eventsFile`: a `pids.events` file (tests give one of their own).
    package init(eventsFile: String?) {
        events = eventsFile
        refusedSoFar = eventsFile.flatMap(Self.refusals) ?? 0
    }

    /// Whether the limit can be watched at all: a cgroup with a pids controller that this process can read.
    package var isWatchable: Bool { events != nil }

    /// What to say of a worker that died of a trap: the pids limit refused forks since the last look, or an
    /// RLIMIT_NPROC is set that may have done it. nil when nothing points that way.
    package mutating func explanation() -> String? {
        if let refused = refusalsSinceLastLook() { return refused }
        var limit = rlimit()
        if getuid() != 0, getrlimit(__rlimit_resource_t(__RLIMIT_NPROC.rawValue), &limit) == 0, limit.rlim_cur != rlim_t.max {
            return "RLIMIT_NPROC is \(limit.rlim_cur) for this user, threads included: a worker that cannot create a "
                + "thread dies of a trap (raise ulimit -u)"
        }
        return nil
    }

    /// The refusals counted since the last look, as one line, or nil. Asked once a second as well as at a trap:
    /// a worker whose thread pool (libdispatch's) retries a refused thread does not die, it waits forever, and
    /// several such workers can each hold part of the limit, so no exit would ever bring the explanation.
    package mutating func refusalsSinceLastLook() -> String? {
        guard let events, let refused = Self.refusals(events), refused > refusedSoFar else { return nil }
        let directory = String(events.dropLast("/pids.events".count))
        let limit = Self.read(directory + "/pids.max") ?? "?"
        defer { refusedSoFar = refused }
        return "the cgroup's pids.max (\(limit) in \(directory)) refused \(refused - refusedSoFar) thread or process "
            + "creations: a worker that cannot create a thread dies of a trap or waits for one forever; raise "
            + "pids.max (TasksMax= under systemd)"
    }

    static func refusals(_ path: String) -> Int? {
        guard let text = read(path) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("max ") {
            return Int(line.dropFirst(4))
        }
        return nil
    }

    /// v2 (`0::/path`) under /sys/fs/cgroup or its `unified` mount, or v1's pids controller (`N:pids:/path`).
    static func eventsFile() -> String? {
        guard let text = read("/proc/self/cgroup") else { return nil }
        var candidates: [String] = []
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3 else { continue }
            let path = fields[2] == "/" ? "" : String(fields[2])
            if fields[1].split(separator: ",").contains("pids") {
                candidates.append("/sys/fs/cgroup/pids\(path)/pids.events")
            } else if fields[0] == "0", fields[1].isEmpty {
                candidates.append("/sys/fs/cgroup\(path)/pids.events")
                candidates.append("/sys/fs/cgroup/unified\(path)/pids.events")
            }
        }
        return candidates.first { access($0, R_OK) == 0 }
    }

    static func read(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = Glibc.read(fd, &buffer, buffer.count)
        guard count > 0 else { return nil }
        return String(decoding: buffer[..<count], as: UTF8.self).trimmingSuffixNewlines()
    }
}

extension String {
    fileprivate func trimmingSuffixNewlines() -> String {
        var text = self
        while text.hasSuffix("\n") { text.removeLast() }
        return text
    }
}
