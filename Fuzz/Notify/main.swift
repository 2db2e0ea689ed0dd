import FuzzDriver
import Arbiter

/// Any datagram a child (or a stranger) can send to the supervisor's notify socket, parsed and fed to an
/// arbiter with a worker of that pid: it must never trap.
func fuzzNotify(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let message = NotifyMessage(parsing: UnsafeBufferPointer(start: data, count: size))
    let configuration = Arbiter<ContinuousClock.Instant>.Configuration(
        workers: 1, workerRange: 1...1024, gracefulTimeout: .seconds(8), heartbeatTimeout: .seconds(30), bootTimeout: .seconds(60))
    var arbiter = Arbiter<ContinuousClock.Instant>(configuration: configuration, now: .now)
    let now = ContinuousClock.now
    for action in arbiter.start(now: now) {
        if case .spawn(let slot, let generation, _) = action {
            _ = arbiter.spawned(slot: slot, generation: generation, pid: 100, now: now)
        }
    }
    _ = arbiter.notified(pid: 100, message: message, now: now)
    _ = arbiter.notified(pid: 999, message: message, now: now)
    _ = arbiter.tick(now: now)
    return 0
}

fuzz { fuzzNotify($0, $1) }
