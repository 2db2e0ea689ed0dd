import Glibc

/// The supervisor's children as the kernel lists them, and what the log says of a process.
///
/// An orphan re-parented to the supervisor sends no signal on arrival (only its exit does), so the loop asks the
/// kernel which children it has: right after each reap (a worker's children are re-parented before its SIGCHLD
/// is sent) and once a second (a worker's grandchild whose own parent ended).
package enum ProcessTree {
    /// Every child of this process, zombies included: the union of `/proc/self/task/*/children` (a child
    /// belongs to the thread that forked it; re-parented orphans go to a live thread of the reaper), or, on a
    /// kernel without `CONFIG_PROC_CHILDREN`, every process whose parent is this one, from `/proc/*/stat`.
    package static func children() -> [Int32] {
        var found: [Int32] = []
        var listed = false
        for task in directoryEntries("/proc/self/task") {
            guard let text = readSmallFile("/proc/self/task/\(task)/children") else { continue }
            listed = true
            found += text.split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap { Int32($0) }
        }
        if listed { return Array(Set(found)).sorted() }
        let me = getpid()
        return directoryEntries("/proc").compactMap(Int32.init).filter { parent(of: $0) == me }
    }

    /// Whether /proc shows this process's PID namespace. Under `unshare --pid --fork` without a /proc of its own
    /// it shows the host's: every pid read there is another namespace's number, and a worker would be taken for a
    /// stranger. The supervisor then reads no process tree at all.
    package static var procIsOurs: Bool {
        var buffer = [CChar](repeating: 0, count: 32)
        let count = readlink("/proc/self", &buffer, buffer.count - 1)
        guard count > 0 else { return false }
        return String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self) == String(getpid())
    }

    /// A process as the kernel knows it: its pid, and its start time (clock ticks after boot), so that a later
    /// process given the same pid is not taken for it.
    package struct Identity: Hashable, Sendable {
        package var pid: Int32
        package var startTime: UInt64
    }

    /// `/proc/PID/stat`'s fields after the command name (which may hold spaces and parentheses): [0] is the state,
    /// [1] the parent, [2] the process group, [19] the start time, [21] the resident pages.
    static func statFields(_ pid: Int32) -> [Substring]? {
        guard let stat = readSmallFile("/proc/\(pid)/stat"), let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return fields.count > 21 ? fields : nil
    }

    /// The parent's pid.
    package static func parent(of pid: Int32) -> Int32? {
        statFields(pid).flatMap { Int32($0[1]) }
    }

    package static func identity(of pid: Int32) -> Identity? {
        statFields(pid).flatMap { UInt64($0[19]) }.map { Identity(pid: pid, startTime: $0) }
    }

    /// Every live process below `root`, whatever group or session it moved to: what a signal to `root`'s process
    /// group misses (a child that called setsid).
    package static func descendants(of root: Int32) -> [Identity] { Snapshot().descendants(of: root) }

    /// Every process at one moment, from one read of /proc: who is whose parent, and how much each holds.
    package struct Snapshot {
        struct Entry {
            var identity: Identity
            var residentPages: Int
        }
        private var entries: [Int32: Entry] = [:]
        private var children: [Int32: [Int32]] = [:]
        private static let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))

        package init() {
            for pid in ProcessTree.directoryEntries("/proc").compactMap(Int32.init) {
                guard let fields = ProcessTree.statFields(pid), fields[0] != "Z", let parent = Int32(fields[1]),
                    let start = UInt64(fields[19]) else { continue }
                entries[pid] = Entry(identity: Identity(pid: pid, startTime: start), residentPages: Int(fields[21]) ?? 0)
                children[parent, default: []].append(pid)
            }
        }

        package func descendants(of root: Int32) -> [Identity] {
            var found: [Identity] = []
            var frontier = [root]
            while let next = frontier.popLast(), found.count < 100_000 {
                for pid in children[next] ?? [] {
                    guard let entry = entries[pid] else { continue }
                    found.append(entry.identity)
                    frontier.append(pid)
                }
            }
            return found
        }

        /// Resident memory of `root`, every process below it, and `also` (what its cgroup holds besides: a helper it
        /// double-forked): a worker is its whole tree (gunicorn's master and its workers). Shared pages count in each
        /// process that maps them, as `ps` shows them. nil when `root` is gone.
        package func residentBytes(ofTree root: Int32, also: [Int32] = []) -> Int? {
            guard entries[root] != nil else { return nil }
            let tree = Set([root] + descendants(of: root).map(\.pid) + also)
            return tree.reduce(0) { $0 + (entries[$1]?.residentPages ?? 0) } * Self.pageSize
        }
    }

    /// TCP connections established from `root`'s tree (and `also`) to one of `ports`: what a worker holds open
    /// toward its database, whatever language its pool is written in. Read from the descriptors of each process
    /// (`/proc/PID/fd`, socket inodes) and the connection table of the worker's network namespace; nil when
    /// `root` is gone or its descriptors cannot be read.
    package static func openConnections(ofTree root: Int32, also: [Int32] = [], ports: Set<Int>, in snapshot: Snapshot) -> Int? {
        guard !ports.isEmpty else { return nil }
        var inodes: Set<Substring> = []
        var readable = false
        for pid in Set([root] + snapshot.descendants(of: root).map(\.pid) + also) {
            let folder = "/proc/\(pid)/fd"
            let entries = directoryEntries(folder)
            if !entries.isEmpty { readable = true }
            for entry in entries {
                var buffer = [CChar](repeating: 0, count: 64)
                let count = readlink(folder + "/" + entry, &buffer, buffer.count - 1)
                guard count > 8 else { continue }
                let target = String(decoding: buffer.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
                if target.hasPrefix("socket:[") { inodes.insert(Substring(target.dropFirst(8).dropLast())) }
            }
        }
        guard readable else { return nil }
        var open = 0
        for table in ["tcp", "tcp6"] {
            guard let text = readSmallFile("/proc/\(root)/net/\(table)", limit: 32 << 20) else { continue }
            for line in text.split(separator: "\n").dropFirst() {
                // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
                let fields = line.split(separator: " ")
                guard fields.count > 9, fields[3] == "01", let colon = fields[2].lastIndex(of: ":"),
                    let port = Int(fields[2][fields[2].index(after: colon)...], radix: 16), ports.contains(port),
                    inodes.contains(fields[9]) else { continue }
                open += 1
            }
        }
        return open
    }

    /// The command name (`/proc/PID/comm`), for the log line that says what was signalled.
    package static func name(of pid: Int32) -> String? {
        readSmallFile("/proc/\(pid)/comm").map { String($0.split(separator: "\n").first ?? "") }
    }

    static func directoryEntries(_ path: String) -> [String] {
        guard let directory = opendir(path) else { return [] }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != ".", name != ".." { names.append(name) }
        }
        return names
    }

    /// A /proc or /sys file of at most `limit` bytes (64 KiB); nil when it cannot be read.
    static func readSmallFile(_ path: String, limit: Int = 65536) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while bytes.count < limit {
            let count = read(fd, &buffer, buffer.count)
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { break }
            bytes += buffer[..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
