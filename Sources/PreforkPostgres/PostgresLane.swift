import ConnectionPool

/// A Postgres connection in libpq's pipeline mode, shared by the single statements of concurrent callers
/// (`Multiplexer`), as the reactive clients at the top of the public web-framework benchmarks (Vert.x's) share
/// theirs. Each statement is followed by its own sync point, so it runs in its own implicit transaction, as it
/// would alone: a failing one fails only its caller, and the results come back in order.
///
/// Why: with a connection per statement in flight, every request woke a backend of its own, and a burst of
/// resumed requests checked out one connection each, opening overflow connections only to close them again.
final class PostgresLane: PipelineLane {
    struct Call {
        let sql: String
        let parameters: [String?]
        let continuation: CheckedContinuation<PostgresResult, any Error>
        /// Sent unnamed: the prepared statement it found was gone (a schema change, a failed Prepare).
        var unnamed = false
    }

    /// A sent statement and what came back for it so far.
    private struct Sent {
        var call: Call
        /// Results still to end before the sync point: the Prepare's (when sent with it), the statement's.
        var statementsLeft: Int
        var outcome: Result<PostgresResult, PostgresError>?
    }

    private let connection: PostgresConnection
    private let pool: ConnectionPool<PostgresDriver>
    private var queued: [Call] = []
    private var sent: [Sent] = []
    private var head = 0
    /// libpq holds part of what was sent (the socket was full).
    private var flushing = false

    /// Puts the connection in pipeline mode; throws when libpq refuses.
    init(_ connection: PostgresConnection, pool: ConnectionPool<PostgresDriver>) throws(PostgresError) {
        guard connection.enterPipelineMode() else {
            throw PostgresError(kind: .connection, message: "cannot enter pipeline mode", isDisconnect: connection.isBroken)
        }
        self.connection = connection
        self.pool = pool
    }

    var socket: Int32 { connection.socket }
    var pending: Int { queued.count + sent.count - head }
    private(set) var waitingSince: ContinuousClock.Instant?
    private(set) var answered = 0
    var hasUnflushed: Bool { !queued.isEmpty || flushing }

    func enqueue(_ call: Call) {
        if pending == 0 { waitingSince = .now }
        queued.append(call)
    }

    func flush() throws -> (statements: Int, complete: Bool) {
        let batch = queued
        queued.removeAll(keepingCapacity: true)
        // Before libpq 17, each sync point is a write of its own: corked, they leave in as few packets as fit.
        let corked = batch.count > 1 && PostgresConnection.syncWrites
        if corked { connection.cork(true) }
        defer { if corked { connection.cork(false) } }
        for (index, call) in batch.enumerated() {
            do {
                let prepared = try connection.queuePipelined(call.sql, call.parameters, unnamed: call.unnamed)
                sent.append(Sent(call: call, statementsLeft: prepared ? 2 : 1))
            } catch where !connection.isBroken {
                // libpq refused this statement alone (more than 65,535 parameters): it fails, the rest go on.
                call.continuation.resume(throwing: error)
            } catch {
                // The connection failed: this call and the rest were not sent; `fail(with:)` hands them on.
                queued = Array(batch[index...]) + queued
                throw error
            }
        }
        let complete = try connection.flushPipeline()
        flushing = !complete
        return (batch.count, complete)
    }

    func read() throws {
        // The results that arrived before a failure are handed out first: those statements did run.
        let failure = connection.consumePipelineInput()
        while head < sent.count, let item = connection.nextPipelineItem() {
            switch item {
            case .result(let result):
                if case .failure = sent[head].outcome {
                    // The first error wins.
                } else {
                    if case .failure = result, sent[head].statementsLeft == 2 {
                        // The Prepare itself failed: the connection does not have the statement.
                        connection.forgetPrepared(sent[head].call.sql)
                    }
                    sent[head].outcome = result
                }
            case .aborted:
                if case .failure = sent[head].outcome {} else {
                    sent[head].outcome = .failure(PostgresError(kind: .server, message: "not run: the pipeline was aborted"))
                }
            case .endOfStatement:
                // Past the last statement only the sync point can come: libpq answering "nothing" there means the
                // connection lost its place (it is broken), and waiting for the sync would wait for ever.
                guard sent[head].statementsLeft > 0 else { throw connection.lostPlace() }
                sent[head].statementsLeft -= 1
            case .sync:
                let done = sent[head]
                head += 1
                waitingSince = .now
                answered += 1
                finish(done)
            }
        }
        if head == sent.count {
            sent.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 64 {
            sent.removeFirst(head)
            head = 0
        }
        if pending == 0 { waitingSince = nil }
        if let failure { throw failure }
    }

    private func finish(_ done: Sent) {
        switch done.outcome {
        case .success(let result)?:
            done.call.continuation.resume(returning: result)
        case .failure(let error)?:
            if !done.call.unnamed, error.sqlState == "0A000" || error.sqlState == "26000" {
                // "cached plan must not change result type" after a schema change, or a statement this session
                // does not have: forget it and run the statement unnamed, as asyncpg re-prepares.
                connection.forgetPrepared(done.call.sql)
                var again = done.call
                again.unnamed = true
                queued.append(again)
                return
            }
            if error.isDisconnect { pool.disconnected() }
            done.call.continuation.resume(throwing: error)
        case nil:
            done.call.continuation.resume(throwing: PostgresError(
                kind: .connection, message: "no result for the statement", isDisconnect: true))
        }
    }

    func fail(with error: any Error) -> [Call] {
        let failed = sent[head...]
        sent = []
        head = 0
        waitingSince = nil
        if (error as? PostgresError)?.isDisconnect == true { pool.disconnected() }
        for statement in failed { statement.call.continuation.resume(throwing: error) }
        let unsent = queued
        queued = []
        return unsent
    }

    func detach() -> Bool { !flushing && connection.exitPipelineMode() }

    static func fail(_ call: Call, with error: any Error) { call.continuation.resume(throwing: error) }

    static var timedOut: any Error { PostgresError(kind: .connection, message: "no result in time", isDisconnect: true) }
}
