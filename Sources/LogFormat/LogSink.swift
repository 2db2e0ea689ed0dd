import Glibc

/// Where every log line of the process goes: a bounded queue in memory, written to stderr by a thread of its own.
///
/// A blocking `write(2)` on the caller's thread let a log reader that stalled (a full pipe nobody reads, a
/// Docker log driver under disk pressure, a stuck journald) stop the supervisor's loop: no reaping, no answer
/// to `status`, SIGTERM unheard; and in a worker it stopped the thread that serves requests. Here the caller
/// only appends to the queue. When the queue is full the line is dropped and counted, and once the reader
/// catches up one line says how many were lost. A stalled reader costs log lines, never service.
///
/// fd 2 itself is left as it is: its open file description is shared with every worker and with whatever
/// started the supervisor, so `O_NONBLOCK` on it would turn their blocking writes into EAGAIN errors.
public final class LogSink: @unchecked Sendable {
    /// The one sink of the process; the handlers of both formats write here.
    public static let shared = LogSink()

    /// Bytes queued before lines are dropped: a few thousand lines, for bursts a reader catches up with.
    public static let capacity = 1 << 20
    /// A write of at most this many bytes to a pipe is atomic: lines of processes sharing stderr never interleave.
    static let atomicWrite = 4096

    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>
    // Guarded by `mutex`.
    private var queue: [[UInt8]] = []
    private var head = 0
    private var queuedBytes = 0
    private var writing = false
    private var droppedSinceReport = 0
    private var droppedTotal = 0
    private var started = false
    private var threadless = false
    /// Renders the line that reports dropped lines, in the process's log format.
    private var dropNotice: @Sendable (Int) -> String = { count in
        "\(LineLogHandler.timestamp()) log[\(getpid())] warning: \(count) log lines dropped: stderr was not read\n"
    }

    init() {
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        condition = .allocate(capacity: 1)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    /// Lines dropped since start because the queue was full or stderr was closed; `/metrics` counts them.
    public var dropped: Int {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return droppedTotal
    }

    /// How the report of dropped lines is rendered (the handler of the process's format sets it).
    public func setDropNotice(_ render: @escaping @Sendable (Int) -> String) {
        pthread_mutex_lock(mutex)
        dropNotice = render
        pthread_mutex_unlock(mutex)
    }

    /// Queues one line (ending in a newline); never blocks on the reader.
    public func write(_ line: String) {
        let bytes = Array(line.utf8)
        pthread_mutex_lock(mutex)
        if !started { startWriter() }
        if threadless {
            // No thread could be made (a pids limit): write in place, as before, rather than lose every line.
            pthread_mutex_unlock(mutex)
            Self.writeAll(bytes)
            return
        }
        if queuedBytes + bytes.count > Self.capacity {
            droppedSinceReport += 1
            droppedTotal += 1
        } else {
            queue.append(bytes)
            queuedBytes += bytes.count
            pthread_cond_signal(condition)
        }
        pthread_mutex_unlock(mutex)
    }

    /// Waits until the queue is written, at most `timeout`: at exit, so the last lines (the exit's reason) are
    /// not lost to a reader that is only slow, while one that is stuck cannot hold the exit up for long.
    public func flush(timeout: Duration = .milliseconds(500)) {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        guard started, !threadless else { return }
        var deadline = timespec()
        clock_gettime(CLOCK_MONOTONIC, &deadline)
        let nanoseconds = Int(timeout.components.seconds) * 1_000_000_000 + Int(timeout.components.attoseconds / 1_000_000_000)
        deadline.tv_sec += nanoseconds / 1_000_000_000
        deadline.tv_nsec += nanoseconds % 1_000_000_000
        if deadline.tv_nsec >= 1_000_000_000 { deadline.tv_sec += 1; deadline.tv_nsec -= 1_000_000_000 }
        while queuedBytes > 0 || writing || droppedSinceReport > 0 {
            if pthread_cond_timedwait(condition, mutex, &deadline) == ETIMEDOUT { return }
        }
    }

    /// Called with the mutex held.
    private func startWriter() {
        started = true
        var thread = pthread_t()
        let this = Unmanaged.passUnretained(self).toOpaque()
        // Born with every signal blocked, not blocking them once it runs: the supervisor reads its signals through
        // signalfd, and a SIGTERM delivered to this thread in between would end the process by default.
        var all = sigset_t()
        var previous = sigset_t()
        sigfillset(&all)
        pthread_sigmask(SIG_BLOCK, &all, &previous)
        let created = pthread_create(&thread, nil, { argument in
            Unmanaged<LogSink>.fromOpaque(argument!).takeUnretainedValue().run()
            return nil
        }, this)
        pthread_sigmask(SIG_SETMASK, &previous, nil)
        guard created == 0 else {
            threadless = true
            return
        }
        pthread_detach(thread)
        // At exit the queue is written first (within a bound): `exit()` runs this before the process ends.
        atexit { LogSink.shared.flush() }
    }

    private func run() {
        pthread_mutex_lock(mutex)
        while true {
            while head == queue.count, droppedSinceReport == 0 {
                pthread_cond_broadcast(condition)  // a flush waits for the empty queue
                pthread_cond_wait(condition, mutex)
            }
            if head == queue.count {
                // The reader caught up: say what it missed, once.
                let notice = dropNotice(droppedSinceReport)
                droppedSinceReport = 0
                queue.append(Array(notice.utf8))
                queuedBytes += queue.last!.count
            }
            // Whole lines, up to one atomic write.
            var batch = queue[head]
            head += 1
            while head < queue.count, batch.count + queue[head].count <= Self.atomicWrite {
                batch += queue[head]
                head += 1
            }
            if head > 1024, head * 2 > queue.count {
                queue.removeFirst(head)
                head = 0
            }
            writing = true
            pthread_mutex_unlock(mutex)
            let written = Self.writeAll(batch)
            pthread_mutex_lock(mutex)
            writing = false
            queuedBytes -= batch.count
            if head == queue.count {
                queue.removeAll(keepingCapacity: queue.capacity <= 4096)
                head = 0
            }
            if !written {
                // stderr is closed (EPIPE) or broken: these lines are lost, and counted, but not reported, since
                // nobody would read the report.
                droppedTotal += batch.reduce(0) { $1 == UInt8(ascii: "\n") ? $0 + 1 : $0 }
            }
        }
    }

    /// One write, retried when partial or interrupted; false when the lines could not be written.
    @discardableResult
    static func writeAll(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = Glibc.write(2, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    return false
                }
                offset += written
            }
            return true
        }
    }
}
