import TimeUnits
import CShims
import Glibc
import NIOConcurrencyHelpers

/// One thread that waits, with epoll, for the replies of every connection of the process, and finishes each
/// reply there, without blocking.
///
/// Why not a blocking read on a pool thread per call: under load, every reply then wakes its own sleeping
/// thread, and a request waiting on Redis and then Postgres pays four thread switches; measured, that was a
/// third of the worker's CPU. Here a statement is sent from the caller's thread (libpq and hiredis in
/// non-blocking use), and the reactor's one thread picks up many replies per wake-up, reads them with
/// non-blocking calls, and resumes their callers. Nothing blocks on an event loop, and nothing blocks here.
///
/// Registrations are one-shot (`EPOLLONESHOT`): the callback says whether the reply is complete, and if not,
/// the descriptor is armed again. A registration may carry a deadline (Redis' socket timeout); deadlines are
/// checked every 50 ms.
///
/// The reactor is also a `TaskExecutor`: a task that prefers it (the worker runs each request that needs
/// Postgres or Redis that way) continues on the reactor's thread right where its reply was read, instead of
/// being handed to another thread for every round trip. A request then crosses threads twice (event loop to
/// reactor, and back to write the response) rather than twice per round trip. Jobs never block: blocking
/// calls (connect, ping) still go to the pool's own threads.
public final class Reactor: TaskExecutor, Sendable {
    public static let shared = Reactor()

    /// Called on the reactor's thread when the descriptor is readable (`timedOut` false) or its deadline passed
    /// (`timedOut` true, final). Returns true when done, false to wait for more input.
    public typealias Callback = @Sendable (_ timedOut: Bool) -> Bool

    private struct Registration {
        var callback: Callback
        var deadline: Int64?
    }

    /// A descriptor watched for as long as its owner wants (the worker's HTTP connections and listener),
    /// level-triggered, as opposed to the one-shot reply registrations. Only touched on the reactor's thread.
    public protocol Watcher: AnyObject {
        /// Called on the reactor's thread with the epoll events that fired.
        func ready(_ events: UInt32)
    }

    private struct Jobs {
        var queue: [UnownedJob] = []
        /// Closures from other threads (`execute`), run on the reactor's thread.
        var closures: [@Sendable () -> Void] = []
        /// The thread is in (or about to enter) a blocking `epoll_wait`: an enqueue must wake it.
        var sleeping = false
    }

    private let epoll: Int32
    /// An eventfd in the epoll set, written to wake the thread for new jobs.
    private let wakeFD: Int32
    private let registrations = NIOLockedValueBox<[Int32: Registration]>([:])
    private let jobs = NIOLockedValueBox(Jobs())
    /// Watchers and tickers, only read and written on the reactor's thread.
    private nonisolated(unsafe) var watchers: [Int32: any Watcher] = [:]
    private nonisolated(unsafe) var tickers: [@Sendable () -> Void] = []
    /// What runs once this turn's jobs have run (`atEndOfTurn`); only touched on the reactor's thread.
    private nonisolated(unsafe) var turnEnd: [@Sendable () -> Void] = []
    private nonisolated(unsafe) var thread = pthread_t()
    /// Tags a watcher's descriptor in `epoll_event.data`, apart from a one-shot registration's.
    private static let watcherTag: UInt64 = 1 << 32

    private init() {
        epoll = epoll_create1(Int32(EPOLL_CLOEXEC))
        precondition(epoll >= 0, "epoll_create1 failed: \(String(cString: strerror(errno)))")
        wakeFD = eventfd(0, Int32(EFD_CLOEXEC) | Int32(EFD_NONBLOCK))
        precondition(wakeFD >= 0, "eventfd failed: \(String(cString: strerror(errno)))")
        var event = epoll_event()
        event.events = EPOLLIN.rawValue
        event.data.fd = wakeFD
        precondition(epoll_ctl(epoll, EPOLL_CTL_ADD, wakeFD, &event) == 0, "epoll_ctl failed")
        let box = Unmanaged.passRetained(self)
        var thread = pthread_t()
        let created = pthread_create(&thread, nil, { context in
            let reactor = Unmanaged<Reactor>.fromOpaque(context!).takeRetainedValue()
            // Named, so `top -H` and perf tell it from the event loop it was started on.
            _ = prefork_set_thread_name("pool-reactor")
            reactor.run()
            return nil
        }, box.toOpaque())
        precondition(created == 0, "cannot start the reactor thread: \(created)")
        pthread_detach(thread)
        self.thread = thread
    }

    /// Whether the caller runs on the reactor's thread.
    public var inReactor: Bool { pthread_equal(pthread_self(), thread) != 0 }

    /// Runs `body` on the reactor's thread: at once when already there, else on its next turn.
    public func execute(_ body: @escaping @Sendable () -> Void) {
        if inReactor {
            body()
            return
        }
        let wake = jobs.withLockedValue { jobs in
            jobs.closures.append(body)
            defer { jobs.sleeping = false }
            return jobs.sleeping
        }
        if wake { _ = eventfd_write(wakeFD, 1) }
    }

    /// Watches `fd` for `events` (`EPOLLIN`, `EPOLLOUT`, ...) until `unwatch`; call on the reactor's thread.
    /// Returns false when epoll refuses the descriptor.
    public func watch(_ fd: Int32, events: UInt32, _ watcher: any Watcher) -> Bool {
        precondition(inReactor, "Reactor.watch off the reactor's thread")
        var event = epoll_event()
        event.events = events
        event.data.u64 = Self.watcherTag | UInt64(UInt32(bitPattern: fd))
        // A pooled connection's socket may still be in the set, disarmed, from its one-shot waits (`whenReadable`).
        guard epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event) == 0
            || (errno == EEXIST && epoll_ctl(epoll, EPOLL_CTL_MOD, fd, &event) == 0) else { return false }
        watchers[fd] = watcher
        return true
    }

    /// Input or the peer's hang-up: what a connection waiting for replies watches for.
    public static let readable: UInt32 = EPOLLIN.rawValue | EPOLLRDHUP.rawValue
    public static let writable: UInt32 = EPOLLOUT.rawValue

    /// Changes what a watched descriptor waits for.
    public func rewatch(_ fd: Int32, events: UInt32) {
        var event = epoll_event()
        event.events = events
        event.data.u64 = Self.watcherTag | UInt64(UInt32(bitPattern: fd))
        _ = epoll_ctl(epoll, EPOLL_CTL_MOD, fd, &event)
    }

    /// Stops watching; call before closing the descriptor.
    public func unwatch(_ fd: Int32) {
        _ = epoll_ctl(epoll, EPOLL_CTL_DEL, fd, nil)
        watchers[fd] = nil
    }

    /// Calls `body` on the reactor's thread about every 50 ms, for as long as the process runs: timeouts of
    /// the HTTP connections, and the heartbeat, which so proves that this thread turns.
    public func everyTick(_ body: @escaping @Sendable () -> Void) {
        execute { self.tickers.append(body) }
    }

    /// Calls `body` on the reactor's thread after the jobs of this turn (or of the next, from another thread).
    ///
    /// This is how the requests of one turn share a write: each request queues its commands on a multiplexed
    /// connection and asks for one flush here, so sixteen requests resumed by one wake-up send their statements
    /// in one system call, and the server reads them in one wake-up of its own.
    public func atEndOfTurn(_ body: @escaping @Sendable () -> Void) {
        if inReactor {
            turnEnd.append(body)
        } else {
            execute { self.turnEnd.append(body) }
        }
    }

    /// Calls `callback` on the reactor's thread once `fd` is readable (at once if it already is).
    /// - Parameter timeout: after this, the callback is called with `timedOut: true` instead.
    public func whenReadable(_ fd: Int32, timeout: Duration? = nil, _ callback: @escaping Callback) {
        let deadline = timeout.map { Self.now() + $0.inNanoseconds }
        arm(fd, Registration(callback: callback, deadline: deadline))
    }

    private func arm(_ fd: Int32, _ registration: Registration) {
        registrations.withLockedValue { $0[fd] = registration }
        var event = epoll_event()
        event.events = EPOLLIN.rawValue | EPOLLONESHOT.rawValue | EPOLLRDHUP.rawValue
        event.data.fd = fd
        // A descriptor stays in the set, disarmed, after it fired; a closed one leaves it by itself, and its
        // number may come back for a new connection: try MOD, then ADD.
        if epoll_ctl(epoll, EPOLL_CTL_MOD, fd, &event) != 0 {
            if epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event) != 0 {
                let registration = registrations.withLockedValue { $0.removeValue(forKey: fd) }
                _ = registration?.callback(true)
            }
        }
    }

    // MARK: TaskExecutor

    public func enqueue(_ job: consuming ExecutorJob) {
        let unowned = UnownedJob(job)
        let wake = jobs.withLockedValue { jobs in
            jobs.queue.append(unowned)
            defer { jobs.sleeping = false }
            return jobs.sleeping
        }
        if wake { _ = eventfd_write(wakeFD, 1) }
    }

    /// Runs the queued jobs and closures; returns false when there were none (the thread is then marked
    /// sleeping).
    private func runJobs() -> Bool {
        let (batch, closures): ([UnownedJob], [@Sendable () -> Void]) = jobs.withLockedValue { jobs in
            if jobs.queue.isEmpty, jobs.closures.isEmpty {
                jobs.sleeping = true
                return ([], [])
            }
            defer {
                jobs.queue.removeAll(keepingCapacity: true)
                jobs.closures.removeAll(keepingCapacity: true)
            }
            return (jobs.queue, jobs.closures)
        }
        for closure in closures { closure() }
        let executor = asUnownedTaskExecutor()
        for job in batch { job.runSynchronously(on: executor) }
        return !batch.isEmpty || !closures.isEmpty
    }

    private func run() {
        var events = [epoll_event](repeating: epoll_event(), count: 64)
        var nextScan = Self.now()
        while true {
            // Jobs first; while there are any, only look at the sockets (no sleep) between batches.
            let busy = runJobs()
            while !turnEnd.isEmpty {
                let flushes = turnEnd
                turnEnd.removeAll(keepingCapacity: true)
                for flush in flushes { flush() }
            }
            let ready = epoll_wait(epoll, &events, Int32(events.count), busy ? 0 : 50)
            if busy == false { jobs.withLockedValue { $0.sleeping = false } }
            if ready > 0 {
                for index in 0..<Int(ready) {
                    let data = events[index].data.u64
                    if data & Self.watcherTag != 0 {
                        watchers[Int32(bitPattern: UInt32(truncatingIfNeeded: data))]?.ready(events[index].events)
                        continue
                    }
                    let fd = events[index].data.fd
                    if fd == wakeFD {
                        var value: eventfd_t = 0
                        _ = eventfd_read(wakeFD, &value)
                        continue
                    }
                    guard let registration = registrations.withLockedValue({ $0.removeValue(forKey: fd) }) else { continue }
                    if !registration.callback(false) {
                        arm(fd, registration)
                    }
                }
            }
            let now = Self.now()
            if now >= nextScan {
                nextScan = now + 50_000_000
                let expired: [Registration] = registrations.withLockedValue { registrations in
                    let overdue = registrations.filter { $0.value.deadline.map { $0 <= now } ?? false }
                    for fd in overdue.keys { registrations[fd] = nil }
                    return Array(overdue.values)
                }
                for registration in expired { _ = registration.callback(true) }
                for ticker in tickers { ticker() }
            }
        }
    }

    static func now() -> Int64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec)
    }
}
