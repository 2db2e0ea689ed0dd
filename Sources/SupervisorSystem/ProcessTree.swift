import SystemdProtocol
import CShims
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

    /// TCP connections each tree (a root and the pids its cgroup adds) holds open to one of `ports`: what a worker
    /// holds toward its database, whatever language its pool is written in. Each socket descriptor of each process
    /// is borrowed (`pidfd_getfd`, which the kernel allows a parent) for a `getpeername`: a few syscalls per socket,
    /// where the connection table (`/proc/net/tcp`) holds every TIME_WAIT of the host's load and took the kernel
    /// tens of milliseconds to write out, on the supervisor's one thread. A tree none of whose descriptors could be
    /// borrowed (an old kernel, another user's worker) is left out.
    package static func openConnections(ofTrees trees: [(root: Int32, also: [Int32])], ports: Set<Int>,
                                        in snapshot: Snapshot) -> [Int32: Int] {
        guard !ports.isEmpty else { return [:] }
        var counts: [Int32: Int] = [:]
        for (root, also) in trees {
            var open = 0
            var readable = false
            for pid in Set([root] + snapshot.descendants(of: root).map(\.pid) + also) {
                let pidfd = prefork_pidfd_open(pid)
                guard pidfd >= 0 else { continue }
                defer { close(pidfd) }
                let folder = "/proc/\(pid)/fd"
                for entry in directoryEntries(folder) {
                    guard let fd = Int32(entry), isSocket(folder + "/" + entry) else { continue }
                    let borrowed = prefork_pidfd_getfd(pidfd, fd)
                    guard borrowed >= 0 else { continue }
                    readable = true
                    if let port = peerPort(borrowed), ports.contains(port) { open += 1 }
                    close(borrowed)
                }
            }
            if readable { counts[root] = open }
        }
        return counts
    }

    private static func isSocket(_ link: String) -> Bool {
        var buffer = [CChar](repeating: 0, count: 16)
        let count = readlink(link, &buffer, buffer.count)
        return count >= 8 && buffer.prefix(8).map { UInt8(bitPattern: $0) }.elementsEqual("socket:[".utf8)
    }

    /// The remote TCP port of a connected stream socket; nil for anything else.
    private static func peerPort(_ fd: Int32) -> Int? {
        var type: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &length) == 0, type == Int32(SOCK_STREAM.rawValue) else { return nil }
        return SocketPort.peer(fd)
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
