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
public final class Reactor: Sendable {
    public static let shared = Reactor()

    /// Called on the reactor's thread when the descriptor is readable (`timedOut` false) or its deadline passed
    /// (`timedOut` true, final). Returns true when done, false to wait for more input.
    public typealias Callback = @Sendable (_ timedOut: Bool) -> Bool

    private struct Registration {
        var callback: Callback
        var deadline: Int64?
    }

    private let epoll: Int32
    private let registrations = NIOLockedValueBox<[Int32: Registration]>([:])

    private init() {
        epoll = epoll_create1(Int32(EPOLL_CLOEXEC))
        precondition(epoll >= 0, "epoll_create1 failed: \(String(cString: strerror(errno)))")
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
    }

    /// Calls `callback` on the reactor's thread once `fd` is readable (at once if it already is).
    /// - Parameter timeout: after this, the callback is called with `timedOut: true` instead.
    public func whenReadable(_ fd: Int32, timeout: Duration? = nil, _ callback: @escaping Callback) {
        let deadline = timeout.map { Self.now() + $0.components.seconds * 1_000_000_000 + $0.components.attoseconds / 1_000_000_000 }
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

    private func run() {
        var events = [epoll_event](repeating: epoll_event(), count: 64)
        var nextScan = Self.now()
        while true {
            let ready = epoll_wait(epoll, &events, Int32(events.count), 50)
            if ready > 0 {
                for index in 0..<Int(ready) {
                    let fd = events[index].data.fd
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
            }
        }
    }

    static func now() -> Int64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec)
    }
}
