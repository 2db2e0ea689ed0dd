import Glibc

/// The supervisor's children as the kernel lists them, and what the log says of a process.
///
/// An orphan re-parented to the supervisor sends no signal on arrival (only its exit does), so the loop asks the
/// kernel which children it has: right after each reap (a worker's children are re-parented before its SIGCHLD
/// is sent) and once a second (a worker's grandchild whose own parent ended).
public enum ProcessTree {
    /// Every child of this process, zombies included: the union of `/proc/self/task/*/children` (a child
    /// belongs to the thread that forked it; re-parented orphans go to a live thread of the reaper), or, on a
    /// kernel without `CONFIG_PROC_CHILDREN`, every process whose parent is this one, from `/proc/*/stat`.
    public static func children() -> [Int32] {
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

    /// The parent's pid, from `/proc/PID/stat` (after the command name, which may hold spaces and parentheses).
    public static func parent(of pid: Int32) -> Int32? {
        guard let stat = readSmallFile("/proc/\(pid)/stat"), let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return fields.count > 1 ? Int32(fields[1]) : nil
    }

    /// The command name (`/proc/PID/comm`), for the log line that says what was signalled.
    public static func name(of pid: Int32) -> String? {
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

    /// A /proc or /sys file of at most 64 KiB; nil when it cannot be read.
    static func readSmallFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while bytes.count < 65536 {
            let count = read(fd, &buffer, buffer.count)
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { break }
            bytes += buffer[..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
