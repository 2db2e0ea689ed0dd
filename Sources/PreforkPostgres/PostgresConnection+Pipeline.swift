import CLibpq
import Glibc

/// libpq's pipeline mode, for `PostgresMultiplexer`: statements of several callers queued on one connection,
/// each followed by its own sync point, so that each runs in its own implicit transaction and a failing one
/// aborts nothing but itself.
extension PostgresConnection {
    /// What `nextPipelineItem` read.
    package enum PipelineItem {
        /// A statement's result (or its error).
        case result(Result<PostgresResult, PostgresError>)
        /// The statement (a Prepare, or the statement itself) has no more results.
        case endOfStatement
        /// Skipped: an earlier statement before the same sync point failed.
        case aborted
        /// The statement's sync point: the next item belongs to the next statement.
        case sync
    }

    package func enterPipelineMode() -> Bool {
        guard let handle else { return false }
        return PQenterPipelineMode(handle) == 1
    }

    /// Only when every result was read; false leaves the connection in pipeline mode (the pool then closes it).
    package func exitPipelineMode() -> Bool {
        guard let handle else { return false }
        return PQexitPipelineMode(handle) == 1
    }

    /// Queues a statement (prepared on this connection first when it is new, unless `unnamed`), then its sync
    /// point, without waiting. Returns whether a Prepare was queued before it.
    package func queuePipelined(_ sql: String, _ parameters: [String?], unnamed: Bool) throws(PostgresError) -> Bool {
        guard let handle else { throw Self.closedError }
        var prepared = false
        var queued: Int32
        if !unnamed, let statement = preparedStatement(for: sql) {
            if !statement.isPrepared {
                guard PQsendPrepare(handle, statement.name, sql, Int32(parameters.count), nil) == 1 else { throw sendError(handle) }
                // Marked at once, so that the statements after it in this batch only bind it; should the Prepare
                // fail, they fail with "does not exist" and are sent again unnamed.
                markPrepared(sql, name: statement.name)
                prepared = true
            }
            queued = withOptionalCStrings(parameters) { PQsendQueryPrepared(handle, statement.name, Int32(parameters.count), $0, nil, nil, 0) }
        } else {
            queued = withOptionalCStrings(parameters) { PQsendQueryParams(handle, sql, Int32(parameters.count), nil, $0, nil, nil, 0) }
        }
        guard queued == 1 else { throw sendError(handle) }
        guard Self.sync(handle) == 1 else { throw sendError(handle) }
        return prepared
    }

    /// Sends what libpq holds without blocking; true when everything left (false: the socket is full, wait until
    /// it is writable and call again).
    package func flushPipeline() throws(PostgresError) -> Bool {
        guard let handle else { throw Self.closedError }
        switch PQflush(handle) {
        case 0: return true
        case 1: return false
        default: throw sendError(handle)
        }
    }

    /// Reads what the socket has, without blocking; the error when the connection failed (what arrived before
    /// it can still be read with `nextPipelineItem`).
    package func consumePipelineInput() -> PostgresError? {
        guard let handle else { return Self.closedError }
        guard PQconsumeInput(handle) == 1, PQstatus(handle) == CONNECTION_OK else {
            return PostgresError(kind: .connection, message: Self.trimmed(PQerrorMessage(handle)), isDisconnect: true)
        }
        return nil
    }

    /// The next complete item of the pipeline, or nil when it has not arrived yet. Only call while a statement
    /// is in flight: with nothing queued, libpq answers `endOfStatement` for ever.
    package func nextPipelineItem() -> PipelineItem? {
        guard let handle, PQisBusy(handle) == 0 else { return nil }
        guard let result = PQgetResult(handle) else { return .endOfStatement }
        defer { PQclear(result) }
        switch PQresultStatus(result) {
        case PGRES_PIPELINE_SYNC: return .sync
        case PGRES_PIPELINE_ABORTED: return .aborted
        case PGRES_TUPLES_OK, PGRES_COMMAND_OK, PGRES_EMPTY_QUERY:
            do { return .result(.success(try PostgresResult(result))) } catch { return .result(.failure(error)) }
        default:
            return .result(.failure(error(from: result)))
        }
    }

    /// libpq has nothing more to give before a sync point that never came: the connection is closed or broken.
    package func lostPlace() -> PostgresError {
        let message = handle.map { Self.trimmed(PQerrorMessage($0)) } ?? ""
        return PostgresError(kind: .connection, message: message.isEmpty ? "the connection lost its place in the pipeline" : message,
                             isDisconnect: true)
    }

    /// `PQsendPipelineSync` (libpq 17) queues a sync point without a write of its own; before it, `PQpipelineSync`
    /// writes every time, so a batch is corked (`TCP_CORK`) to leave in as few packets as it can.
    private static let sendPipelineSync: (@convention(c) (OpaquePointer?) -> Int32)? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "PQsendPipelineSync") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (OpaquePointer?) -> Int32).self)
    }()

    package static var syncWrites: Bool { sendPipelineSync == nil }

    private static func sync(_ handle: OpaquePointer) -> Int32 {
        if let sendPipelineSync { return sendPipelineSync(handle) }
        return PQpipelineSync(handle)
    }

    /// Holds small writes back until `cork(false)`, on TCP (a Unix socket refuses it, harmlessly).
    package func cork(_ on: Bool) {
        var value: Int32 = on ? 1 : 0
        _ = setsockopt(socket, Int32(IPPROTO_TCP), TCP_CORK, &value, socklen_t(MemoryLayout<Int32>.size))
    }

    private func sendError(_ handle: OpaquePointer) -> PostgresError {
        PostgresError(kind: .connection, message: Self.trimmed(PQerrorMessage(handle)), isDisconnect: isBroken)
    }
}
