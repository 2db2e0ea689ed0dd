import FoundationEssentials
import Settings
import ProcessDefaults
import Dispatch
import Glibc
import NIOCore
import NIOHTTP1
import NIOPosix
import PreforkWorker
import WorkerRuntime

/// A worker for the supervisor's tests and benchmarks: HTTP on fd 3, sd_notify, and switches for the
/// failures a supervisor must survive.
///
///   TEST_WORKER_BOOT_DELAY=ms         wait before READY=1
///   TEST_WORKER_BOOT_FAIL=1           exit 1 before READY=1
///   TEST_WORKER_BOOT_FAIL_IF_EXISTS=path   the same, while that file exists (a bad deploy during HUP)
///   TEST_WORKER_HANG_AFTER=ms         block the event loop after this long: heartbeat and requests stop
///   TEST_WORKER_HANG_SLOTS=n,m        only the workers of these slots hang
///   TEST_WORKER_DRAIN_DELAY=ms        after the last connection closed on SIGTERM, wait this long to exit
///   TEST_WORKER_IGNORE_TERM=1         ignore SIGTERM (only SIGKILL ends it)
///   TEST_WORKER_ALLOCATE_MB=n         hold n MiB more resident memory once ready (a leak, for --max-worker-memory)
///   TEST_WORKER_ALLOCATE_AFTER=ms     ... only this long after READY: a worker that grew, not one born too big
/// It also honours MAX_REQUESTS/MAX_REQUESTS_JITTER and serves `test_worker_requests_total` on
/// PREFORK_METRICS_SOCKET, as the API worker does.
typealias WorkerNotifier = Notifier

// Before any thread exists: a SIGTERM during start waits for its handler instead of being lost.
TerminationSignal.holdUntilHandled()
_ = ProcessDefaults.apply()

let environment: (String) -> String? = { name in getenv(name).map { String(cString: $0) } }
let milliseconds: (String) -> Int64 = { name in environment(name).flatMap { Int64($0) } ?? 0 }

func fail(_ message: String) -> Never {
    var line = "test-worker[\(getpid())]: \(message)\n"
    line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
    exit(1)
}

let notifier = Notifier()
/// The settings it shares with every worker, read as they declare.
let requestLimit: RequestLimit?
let port: Int
do {
    let reader = SettingsReader(environment: ProcessInfo.processInfo.environment)
    requestLimit = RequestLimit(maximum: try reader[Catalog.maxRequests], jitter: try reader[Catalog.maxRequestsJitter])
    port = try reader[Catalog.port]
} catch {
    fail("\(error)")
}
let requestsServed = ServedCounter()
nonisolated(unsafe) var leaked: UnsafeMutableRawPointer?
let bootDelay = milliseconds("TEST_WORKER_BOOT_DELAY")
if bootDelay > 0 { usleep(UInt32(bootDelay * 1000)) }
if environment("TEST_WORKER_BOOT_FAIL") == "1" { fail("failing at boot, as TEST_WORKER_BOOT_FAIL asks") }
if let path = environment("TEST_WORKER_BOOT_FAIL_IF_EXISTS"), access(path, F_OK) == 0 {
    fail("failing at boot: \(path) exists")
}

let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
let loop = group.next()
let state = WorkerState(eventLoop: loop, drainDelay: .milliseconds(milliseconds("TEST_WORKER_DRAIN_DELAY")),
                        notifier: notifier)
let identity = "pid \(getpid()) slot \(environment(WorkerContract.slot) ?? "-") generation \(environment(WorkerContract.generation) ?? "-")"

let initializer: @Sendable (any Channel) -> EventLoopFuture<Void> = { channel in
    channel.eventLoop.makeCompletedFuture {
        try channel.pipeline.syncOperations.configureHTTPServerPipeline()
        try channel.pipeline.syncOperations.addHandler(HTTPHandler(state: state, identity: identity))
    }
}
let bootstrap = ServerBootstrap(group: group)
    .childChannelInitializer(initializer)
    .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)

let server: any Channel
var inheritedFD: Int32?
do {
    if let fd = try InheritedSocket.take() {
        server = try bootstrap.withBoundSocket(fd).wait()
        InheritedSocket.restoreBacklog(fd, environment: environment(WorkerContract.listenBacklog))
        inheritedFD = fd
    } else {
        server = try bootstrap.bind(host: "127.0.0.1", port: port).wait()
    }
} catch {
    fail("cannot serve: \(error)")
}
// On SIGTERM, the connections queued on the shared socket are taken and served before it is closed.
let adopt: @Sendable (Int32) -> EventLoopFuture<Void> = { connection in
    ClientBootstrap(group: loop).channelInitializer(initializer).withConnectedSocket(connection)
        .map { _ in }.recover { _ in close(connection) }
}
let listenerFD = inheritedFD
loop.execute {
    state.serverChannel = server
    state.listenerFD = listenerFD
    state.adopt = adopt
}

let termination: (any DispatchSourceSignal)?
if environment("TEST_WORKER_IGNORE_TERM") == "1" {
    signal(SIGTERM, SIG_IGN)
    termination = nil
} else {
    termination = TerminationSignal.handle { loop.execute { state.beginDrain() } }
}

// Like the API worker: USR1/USR2 are acknowledged on stderr, never fatal.
let userSignals = [SIGUSR1, SIGUSR2].map { signal in
    TerminationSignal.handle(signal) {
        var line = "test-worker[\(getpid())]: SIG\(signal == SIGUSR1 ? "USR1" : "USR2") received\n"
        line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
    }
}

notifier.startHeartbeat(on: loop)
let hangAfter = milliseconds("TEST_WORKER_HANG_AFTER")
if hangAfter > 0,
   environment("TEST_WORKER_HANG_SLOTS").map({ $0.split(separator: ",").contains { $0 == environment(WorkerContract.slot) ?? "" } }) ?? true {
    loop.scheduleTask(in: .milliseconds(hangAfter)) {
        // A handler stuck in a blocking call: the loop stops, and with it the heartbeat.
        while true { sleep(3600) }
    }
}
if let path = environment(WorkerContract.metricsSocket) {
    _ = try? PrivateMetrics.bind(path: path, group: group) {
        Array("# HELP test_worker_requests_total Requests answered.\n# TYPE test_worker_requests_total counter\ntest_worker_requests_total \(requestsServed.value)\n".utf8)
    }.wait()
}
let allocate = Int(milliseconds("TEST_WORKER_ALLOCATE_MB"))
/// Touched, so it is resident, and kept for the life of the process.
func leak() {
    let leak = UnsafeMutableRawPointer.allocate(byteCount: allocate << 20, alignment: 4096)
    leak.initializeMemory(as: UInt8.self, repeating: 1, count: allocate << 20)
    leaked = leak
}
let allocateAfter = milliseconds("TEST_WORKER_ALLOCATE_AFTER")
if allocate > 0, allocateAfter == 0 { leak() }
notifier.ready(status: "serving")
if allocate > 0, allocateAfter > 0 {
    loop.scheduleTask(in: .milliseconds(allocateAfter)) { leak() }
}
// The process ends in WorkerState, once a drain has closed the last connection.
withExtendedLifetime(userSignals) { dispatchMain() }
