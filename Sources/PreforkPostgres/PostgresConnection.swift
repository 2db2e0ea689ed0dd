import CLibpq
import FoundationEssentials
import Glibc

/// One libpq connection. Every call blocks, so the engine only calls it on the pool's threads, and the pool
/// gives it to one holder at a time: that is what makes the unchecked Sendable sound.
package final class PostgresConnection: @unchecked Sendable {
    /// nil once closed.
    private(set) var handle: OpaquePointer?
    /// This connection's cancel request, made once at connect so that another thread can send it while the holder
    /// uses the connection: libpq makes `PQcancel` safe for that, not `PQgetCancel` on a connection in use.
    private let cancelRequest: CancelRequest?

    private init(handle: OpaquePointer) {
        self.handle = handle
        cancelRequest = PQgetCancel(handle).map(CancelRequest.init)
    }

    /// Asks the server to cancel what this connection runs (safe from any thread; it connects to the server, so
    /// it can block while the server does not answer). A cancel that arrives between statements does nothing.
    package func cancelRunningStatement() {
        cancelRequest?.send()
    }

    deinit { close() }

    /// Ends the session at once (`PQfinish`): the pool counts a connection closed only after this, so the
    /// server never sees more backends than the limit.
    package func close() {
        guard let handle else { return }
        PQfinish(handle)
        self.handle = nil
    }

    static let closedError = PostgresError(kind: .connection, message: "the connection is closed", isDisconnect: true)

    /// Connects with libpq's own URL parser. `defaults` come before the URL, so parameters in the URL win.
    package static func connect(url: PostgresURL, defaults: [(String, String)]) throws(PostgresError) -> PostgresConnection {
        let pairs = defaults + [("dbname", url.value)]
        let handle: OpaquePointer? = withCStrings(pairs.map(\.0)) { keywords in
            withCStrings(pairs.map(\.1)) { values in
                PQconnectdbParams(keywords, values, 1)
            }
        }
        guard let handle else { throw PostgresError(kind: .connection, message: "out of memory", isDisconnect: true) }
        guard PQstatus(handle) == CONNECTION_OK else {
            let message = url.redact(message: Self.trimmed(PQerrorMessage(handle)))
            PQfinish(handle)
            throw PostgresError(kind: .connection, message: message, isDisconnect: true)
        }
        // NOTICEs ("relation already exists, skipping") would go to stderr by default, unasked for.
        PQsetNoticeProcessor(handle, { _, _ in }, nil)
        // Sends never block (`send`); waiting for results still does (`receive`, PQexec), on the pool's threads.
        PQsetnonblocking(handle, 1)
        return PostgresConnection(handle: handle)
    }

    /// Runs one statement with parameters and waits for its result (blocking).
    package func execute(_ sql: String, _ parameters: [String?] = []) throws(PostgresError) -> PostgresResult {
        try send(sql, parameters)
        return try receive()
    }

    /// Queues one statement with parameters (an unnamed statement in the extended protocol, text format, so it
    /// also works behind PgBouncer in transaction mode) and sends what the socket takes. Never blocks: the
    /// connection is in non-blocking mode, and whatever did not fit is flushed by `receive`.
    ///
    /// This is what lets a caller on the cooperative pool start a query itself, and hand only the wait for the
    /// reply to the pool's thread: that thread's wake-up then overlaps the server's work instead of preceding it.
    package func send(_ sql: String, _ parameters: [String?] = []) throws(PostgresError) {
        guard let handle else { throw Self.closedError }
        let queued = withOptionalCStrings(parameters) { values in
            PQsendQueryParams(handle, sql, Int32(parameters.count), nil, values, nil, nil, 0)
        }
        guard queued == 1, PQflush(handle) >= 0 else {
            throw PostgresError(kind: .connection, message: Self.trimmed(PQerrorMessage(handle)), isDisconnect: isBroken)
        }
    }

    // MARK: Prepared statements

    /// Whether statements are prepared once per connection and then only bound and executed
    /// (`DB_PREPARED_STATEMENTS`): the server then skips parsing and planning, which for a primary-key
    /// lookup is most of its work (measured with pgbench on the API's note query: 2.5x the throughput).
    /// Off behind PgBouncer in transaction mode, where the next statement may reach another server.
    package var preparesStatements = false

    /// Statements prepared on this connection, by their text: what asyncpg's statement cache does.
    private var prepared: [String: String] = [:]
    /// Statements prepared on the server so far (forgotten ones included: they stay there until the session ends).
    private var preparedCount = 0
    private static let maximumPrepared = 256

    /// What `send` should do for `sql`: nil to send it unnamed; a name, and whether it still needs preparing.
    /// Only plain data statements are prepared (not DDL, transaction control or SET), and at most 256 per
    /// connection, so statements built from changing text cannot grow the server's memory without bound.
    package func preparedStatement(for sql: String) -> (name: String, isPrepared: Bool)? {
        guard preparesStatements else { return nil }
        if let name = prepared[sql] { return (name, true) }
        guard preparedCount < Self.maximumPrepared else { return nil }
        let verb = sql.utf8.prefix(while: { $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\n") }).map { $0 | 0x20 }
        guard ["select", "insert", "update", "delete", "with"].contains(String(decoding: verb, as: UTF8.self)) else { return nil }
        return ("prefork_\(preparedCount + 1)", false)
    }

    /// Queues `PQsendPrepare`; its (empty) result is read like a statement's.
    package func sendPrepare(_ name: String, _ sql: String, parameterCount: Int) throws(PostgresError) {
        guard let handle else { throw Self.closedError }
        guard PQsendPrepare(handle, name, sql, Int32(parameterCount), nil) == 1, PQflush(handle) >= 0 else {
            throw PostgresError(kind: .connection, message: Self.trimmed(PQerrorMessage(handle)), isDisconnect: isBroken)
        }
    }

    package func markPrepared(_ sql: String, name: String) {
        prepared[sql] = name
        preparedCount += 1
    }

    /// The server no longer knows it (a schema change invalidated its plan, or the session is not ours).
    package func forgetPrepared(_ sql: String) { prepared[sql] = nil }

    /// Queues the execution of a prepared statement with parameters, like `send`.
    package func sendPrepared(_ name: String, _ parameters: [String?]) throws(PostgresError) {
        guard let handle else { throw Self.closedError }
        let queued = withOptionalCStrings(parameters) { values in
            PQsendQueryPrepared(handle, name, Int32(parameters.count), values, nil, nil, 0)
        }
        guard queued == 1, PQflush(handle) >= 0 else {
            throw PostgresError(kind: .connection, message: Self.trimmed(PQerrorMessage(handle)), isDisconnect: isBroken)
        }
    }

    /// Waits (blocking) for the results of the statement `send` queued, and decodes them; the first error wins.
    package func receive() throws(PostgresError) -> PostgresResult {
        guard let handle else { throw Self.closedError }
        var outcome: Result<PostgresResult, PostgresError>?
        // PQgetResult flushes what `send` could not, blocks for input, and returns nil after the last result.
        while let result = PQgetResult(handle) {
            defer { PQclear(result) }
            if case .failure = outcome { continue }  // keep the first error; drain the rest
            switch PQresultStatus(result) {
            case PGRES_TUPLES_OK, PGRES_COMMAND_OK, PGRES_EMPTY_QUERY:
                do { outcome = .success(try PostgresResult(result)) } catch { outcome = .failure(error) }
            default:
                outcome = .failure(error(from: result))
            }
        }
        guard let outcome else {
            throw PostgresError(kind: .connection, message: Self.trimmed(PQerrorMessage(handle)), isDisconnect: true)
        }
        return try outcome.get()
    }

    /// What `consume` found: the statement's outcome, or nothing yet.
    package enum Progress {
        case pending
        case finished(Result<PostgresResult, PostgresError>)
    }

    /// The first outcome of the statement being consumed (the first error wins; later results are drained).
    private var partialOutcome: Result<PostgresResult, PostgresError>?

    /// Reads what the socket has without blocking (`PQconsumeInput`) and collects every result that is
    /// complete. Called by the reactor when the socket is readable; `.pending` means wait for more input.
    package func consume() -> Progress {
        guard let handle else { return .finished(.failure(Self.closedError)) }
        guard PQconsumeInput(handle) == 1 else {
            partialOutcome = nil
            return .finished(.failure(PostgresError(kind: .connection, message: Self.trimmed(PQerrorMessage(handle)),
                                                    isDisconnect: true)))
        }
        while PQisBusy(handle) == 0 {
            guard let result = PQgetResult(handle) else {
                let outcome = partialOutcome ?? .failure(PostgresError(
                    kind: .connection, message: Self.trimmed(PQerrorMessage(handle)), isDisconnect: true))
                partialOutcome = nil
                return .finished(outcome)
            }
            defer { PQclear(result) }
            if case .failure = partialOutcome { continue }
            switch PQresultStatus(result) {
            case PGRES_TUPLES_OK, PGRES_COMMAND_OK, PGRES_EMPTY_QUERY:
                do { partialOutcome = .success(try PostgresResult(result)) } catch { partialOutcome = .failure(error) }
            default:
                partialOutcome = .failure(error(from: result))
            }
        }
        return .pending
    }

    /// The socket, for the reactor.
    package var socket: Int32 { handle.map { PQsocket($0) } ?? -1 }

    /// Whether part of the last `send` is still in libpq's buffer (the socket was full): then the reply must be
    /// waited for with `receive`, which also flushes.
    package var flushPending: Bool { handle.map { PQflush($0) == 1 } ?? false }

    /// The server's error fields, or libpq's message when the connection itself failed.
    func error(from result: OpaquePointer) -> PostgresError {
        let handle = self.handle!
        func field(_ code: Int32) -> String? {
            PQresultErrorField(result, code).map { String(cString: $0) }
        }
        let broken = PQstatus(handle) != CONNECTION_OK
        let sqlState = field(Int32(UInt8(ascii: "C")))
        // Class 08 is connection exceptions; 57P01-57P03 are the server shutting down or restarting.
        let disconnect = broken || sqlState?.hasPrefix("08") == true || sqlState?.hasPrefix("57P0") == true
        let message = field(Int32(UInt8(ascii: "M"))) ?? Self.trimmed(PQresultErrorMessage(result))
        return PostgresError(kind: sqlState == nil && broken ? .connection : .server, sqlState: sqlState,
                             message: message.isEmpty ? Self.trimmed(PQerrorMessage(handle)) : message,
                             detail: field(Int32(UInt8(ascii: "D"))), isDisconnect: disconnect)
    }

    package var isBroken: Bool { handle.map { PQstatus($0) != CONNECTION_OK } ?? true }

    /// Inside a transaction (or a failed one) since the last statement.
    package var inTransaction: Bool {
        guard let handle else { return false }
        let status = PQtransactionStatus(handle)
        return status == PQTRANS_INTRANS || status == PQTRANS_INERROR
    }

    /// Not idle: a transaction is open, or a statement's results were never read.
    package var needsReset: Bool {
        guard let handle else { return true }
        return PQstatus(handle) != CONNECTION_OK || PQtransactionStatus(handle) != PQTRANS_IDLE
    }

    /// The cheapest round trip: an empty query.
    package func ping() -> Bool {
        guard let handle, let result = PQexec(handle, "") else { return false }
        defer { PQclear(result) }
        return PQresultStatus(result) == PGRES_EMPTY_QUERY && !isBroken
    }

    /// Makes a returned connection idle: a statement still running is cancelled and its results drained, a
    /// transaction left open is rolled back. False when the connection is broken or could not be reset.
    package func resetForReuse() -> Bool {
        guard let handle, !isBroken else { return false }
        if PQtransactionStatus(handle) == PQTRANS_ACTIVE {
            // A cancel can overtake its statement (it travels on a connection of its own) and is then ignored,
            // which left the statement to run its course: under load, a returned `pg_sleep(5)` held the
            // connection for 5 s. So cancel again every 100 ms while no result comes, for up to 5 s.
            for attempt in 0..<50 {
                if let cancel = PQgetCancel(handle) {
                    var message = [CChar](repeating: 0, count: 256)
                    _ = PQcancel(cancel, &message, Int32(message.count))
                    PQfreeCancel(cancel)
                }
                var entry = pollfd(fd: PQsocket(handle), events: Int16(POLLIN), revents: 0)
                _ = poll(&entry, 1, 100)
                guard PQconsumeInput(handle) == 1 else { return false }
                if PQisBusy(handle) == 0 { break }
                if attempt == 49 { return false }
            }
            while PQisBusy(handle) == 0, let result = PQgetResult(handle) {
                PQclear(result)
                // The next result (or the end) may still be on its way.
                while PQisBusy(handle) != 0 {
                    var entry = pollfd(fd: PQsocket(handle), events: Int16(POLLIN), revents: 0)
                    guard poll(&entry, 1, 5000) > 0, PQconsumeInput(handle) == 1 else { return false }
                }
            }
        }
        guard inTransaction else { return !isBroken && PQtransactionStatus(handle) == PQTRANS_IDLE }
        guard (try? execute("ROLLBACK")) != nil else { return false }
        return !isBroken && PQtransactionStatus(handle) == PQTRANS_IDLE
    }

    /// The server's version as libpq reports it (150018 for 15.18); 0 when closed.
    package var serverVersion: Int32 { handle.map { PQserverVersion($0) } ?? 0 }

    /// The backend's pid, as `pg_stat_activity.pid` shows it.
    package var backendPID: Int32 { handle.map { PQbackendPID($0) } ?? 0 }

    static func trimmed(_ message: UnsafePointer<CChar>?) -> String {
        guard let message else { return "" }
        // libpq's messages end with a newline; Foundation's trimmingCharacters is not in FoundationEssentials.
        var text = Substring(String(cString: message))
        while text.last?.isWhitespace == true { text.removeLast() }
        while text.first?.isWhitespace == true { text.removeFirst() }
        // One log line per message: libpq's "...failed: Connection refused\n\tIs the server running...".
        return text.split(whereSeparator: \.isNewline).map { $0.drop(while: \.isWhitespace) }.joined(separator: "; ")
    }
}

/// libpq's `PGcancel`: freed when the last holder lets go, so a cancel in flight on another thread outlives a
/// `close` of its connection.
private final class CancelRequest: @unchecked Sendable {
    let pointer: OpaquePointer

    init(_ pointer: OpaquePointer) { self.pointer = pointer }

    deinit { PQfreeCancel(pointer) }

    func send() {
        var message = [CChar](repeating: 0, count: 256)
        _ = PQcancel(pointer, &message, Int32(message.count))
    }
}

private func withCStrings<T>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> T) -> T {
    let copies = strings.map { strdup($0) }
    defer { copies.forEach { free($0) } }
    let pointers = copies.map { UnsafePointer($0) } + [nil]
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}

func withOptionalCStrings<T>(_ strings: [String?], _ body: (UnsafePointer<UnsafePointer<CChar>?>?) -> T) -> T {
    if strings.isEmpty { return body(nil) }
    let copies = strings.map { $0.map { strdup($0) } ?? nil }
    defer { copies.forEach { free($0) } }
    let pointers = copies.map { $0.map { UnsafePointer($0) } }
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}

