import Glibc

/// One cgroup (v2) per worker and per cleanup run, under the supervisor's own, when the supervisor may make them:
/// systemd's `Delegate=yes`, or root on a writable cgroup2 mount.
///
/// A process group is the portable way to own a worker's tree, and the supervisor uses it everywhere; but a
/// process that calls `setsid` leaves it, and is found only once it is re-parented to the supervisor. A cgroup
/// cannot be left: `cgroup.kill` (Linux 5.14) ends everything in it at once, and a child re-parented to the
/// supervisor while still in a live worker's cgroup (a double-forked helper of a running gunicorn master) is
/// known to be that worker's, not an orphan. The cgroups carry no controller and no limit: they only name trees.
package final class WorkerCgroups {
    /// The supervisor's own cgroup directory; every cgroup made here is a child of it.
    package let base: String
    private let prefix: String
    private var serial = 0
    /// The cgroup of each child started in one (a worker, a cleanup run), until it is reaped.
    private var trees: [Int32: String] = [:]
    /// The cgroup of each orphan found in one of ours (a gone worker's), until it is reaped.
    private var orphans: [Int32: String] = [:]
    /// Every cgroup made and not yet removed.
    private var made: Set<String> = []

    /// Whether every child started here joined its cgroup: then a child outside them is none of the workers'.
    package private(set) var complete = true

    private init(base: String) {
        self.base = base
        // The PID namespace and the pid say whose they are: a dead supervisor's are ended at the next start, but only
        // by one that sees the same pids (the pid of a supervisor in another namespace means nothing here). The
        // random part keeps apart two supervisors with the same pid in namespaces of their own.
        prefix = "prefork-\(Self.pidNamespace)-\(getpid())-\(String(UInt32.random(in: 0x1000_0000...UInt32.max), radix: 16))-"
    }

    /// This process's PID namespace, the inode in `/proc/self/ns/pid` (`pid:[4026531836]`).
    static var pidNamespace: String {
        var buffer = [CChar](repeating: 0, count: 64)
        let count = readlink("/proc/self/ns/pid", &buffer, buffer.count - 1)
        guard count > 0 else { return "0" }
        let text = String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return String(text.filter(\.isNumber))
    }

    /// The supervisor's cgroup if it can make children there and `cgroup.kill` exists; nil means process groups
    /// alone. What a supervisor that was killed (its pid is gone) left in its cgroups is ended on the way.
    package static func detect() -> WorkerCgroups? {
        guard let own = ownCgroupDirectory(),
            // Moving a child out of our cgroup needs write access to the common ancestor's cgroup.procs: ours.
            access(own + "/cgroup.procs", W_OK) == 0
        else { return nil }
        let probe = own + "/prefork-\(pidNamespace)-\(getpid())-probe"
        guard mkdir(probe, 0o755) == 0 else { return nil }
        defer { rmdir(probe) }
        // cgroup.kill exists from Linux 5.14 on, in every cgroup but the root.
        guard access(probe + "/cgroup.procs", W_OK) == 0, access(probe + "/cgroup.kill", W_OK) == 0 else { return nil }
        let cgroups = WorkerCgroups(base: own)
        cgroups.endLeftovers()
        return cgroups
    }

    /// Processes left in the cgroups of a supervisor that was killed (its pid is gone): a SIGKILLed supervisor's
    /// workers die with it (`PR_SET_PDEATHSIG`), their children do not, and they may still hold the old listening
    /// socket. They get `cgroup.kill`; the cgroups are removed once empty.
    package private(set) var leftoverCgroups: [String] = []

    private func endLeftovers() {
        let namespace = Self.pidNamespace
        for name in ProcessTree.directoryEntries(base) where name.hasPrefix("prefork-\(namespace)-") {
            let fields = name.split(separator: "-")
            guard fields.count >= 4, let pid = Int32(fields[2]), pid != getpid(), Glibc.kill(pid, 0) != 0, errno == ESRCH else {
                continue
            }
            let path = base + "/" + name
            if isPopulated(path) {
                _ = write(path + "/cgroup.kill", "1")
                leftoverCgroups.append(path)
            }
            made.insert(path)
        }
        // They may hold the port this supervisor is about to bind: a second at most for them to be gone.
        for _ in 0..<100 where leftoverCgroups.contains(where: isPopulated) { usleep(10_000) }
        removeEmpty()
    }

    /// `0::/path` of /proc/self/cgroup under the cgroup2 mount of /proc/self/mountinfo.
    static func ownCgroupDirectory() -> String? {
        guard let lines = ProcessTree.readSmallFile("/proc/self/cgroup")?.split(separator: "\n"),
            let line = lines.first(where: { $0.hasPrefix("0::") }),
            let mounts = ProcessTree.readSmallFile("/proc/self/mountinfo")?.split(separator: "\n")
        else { return nil }
        let path = String(line.dropFirst(3))
        for mount in mounts {
            // id parent major:minor root mountpoint options [optional...] - fstype source superoptions
            let halves = mount.split(separator: " - ", maxSplits: 1)
            guard halves.count == 2, halves[1].hasPrefix("cgroup2 ") else { continue }
            let fields = halves[0].split(separator: " ")
            guard fields.count >= 5 else { continue }
            let root = String(fields[3])
            let point = String(fields[4])
            guard !point.contains("\\"), path.hasPrefix(root) else { continue }
            let relative = root == "/" ? path : String(path.dropFirst(root.count))
            let directory = relative == "/" ? point : point + relative
            return directory
        }
        return nil
    }

    /// A new, empty cgroup for the next child; nil when it could not be made (the child then runs without one).
    package func make(_ kind: String) -> String? {
        serial += 1
        let path = "\(base)/\(prefix)\(kind)\(serial)"
        guard mkdir(path, 0o755) == 0 else { return nil }
        made.insert(path)
        return path
    }

    /// The child meant for `path` could not be started.
    package func discard(_ path: String) { remove(path) }

    /// The child `pid` was started to join `path`: true when it did (it writes its own cgroup.procs before exec);
    /// otherwise the cgroup is removed and the child is owned by its process group alone.
    @discardableResult
    package func started(_ pid: Int32, in path: String) -> Bool {
        guard cgroup(of: pid) == path else {
            remove(path)
            complete = false
            return false
        }
        trees[pid] = path
        return true
    }

    /// Records the cgroup an orphan was found in (a gone worker's), so that its KILL reaches what is left there.
    package func found(_ pid: Int32) {
        if let path = cgroup(of: pid) { orphans[pid] = path }
    }

    /// The cgroup of ours that `pid` is in, if any.
    package func cgroup(of pid: Int32) -> String? {
        guard let text = ProcessTree.readSmallFile("/proc/\(pid)/cgroup"),
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix("0::") })
        else { return nil }
        let name = line.split(separator: "/").last.map(String.init) ?? ""
        let path = base + "/" + name
        return name.hasPrefix(prefix) && made.contains(path) ? path : nil
    }

    /// The processes in the cgroup of `pid` (a worker), as this PID namespace numbers them.
    package func members(ofTree pid: Int32) -> [Int32] {
        guard let path = trees[pid], let text = ProcessTree.readSmallFile(path + "/cgroup.procs") else { return [] }
        return text.split(separator: "\n").compactMap { Int32($0) }.filter { $0 > 0 }
    }

    /// The child whose cgroup `path` is (a worker, or a cleanup run), until it is reaped.
    package func owner(of path: String) -> Int32? {
        trees.first { $0.value == path }?.key
    }

    /// SIGKILL to everything in the cgroup of `pid` at once; false when `pid` has none.
    @discardableResult
    package func kill(treeOf pid: Int32) -> Bool {
        guard let path = trees[pid] ?? orphans[pid] else { return false }
        return write(path + "/cgroup.kill", "1")
    }

    /// `pid` was reaped: its cgroup stays until it is empty.
    package func reaped(_ pid: Int32) {
        trees[pid] = nil
        orphans[pid] = nil
        removeEmpty()
    }

    /// Removes the cgroups that nothing recorded owns and that are empty (rmdir fails on a populated one).
    package func removeEmpty() {
        let owned = Set(trees.values)
        for path in made where !owned.contains(path) && !isPopulated(path) { remove(path) }
    }

    /// At exit: SIGKILL whatever is left in any cgroup of ours, and remove them all once empty (a second).
    package func killEverything() {
        for path in made where isPopulated(path) { _ = write(path + "/cgroup.kill", "1") }
        for _ in 0..<100 {
            for path in made where !isPopulated(path) { remove(path) }
            if made.isEmpty { return }
            usleep(10_000)
        }
    }

    package func isPopulated(_ path: String) -> Bool {
        ProcessTree.readSmallFile(path + "/cgroup.events")?.contains("populated 1") ?? false
    }

    /// rmdir, children first: a supervisor that ran as a worker of ours and was killed leaves its own cgroups
    /// inside that worker's, and a cgroup with children cannot be removed.
    private func remove(_ path: String) {
        for name in ProcessTree.directoryEntries(path) {
            var info = stat()
            let child = path + "/" + name
            if lstat(child, &info) == 0, info.st_mode & S_IFMT == S_IFDIR, !isPopulated(child) { remove(child) }
        }
        if rmdir(path) == 0 || errno == ENOENT { made.remove(path) }
    }

    private func write(_ path: String, _ text: String) -> Bool {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return text.withCString { Glibc.write(fd, $0, strlen($0)) } > 0
    }
}
