import TimeUnits
import CHiredis
import Glibc

/// One hiredis context in blocking mode. `connect`, `pipeline` and `ping` block (bounded by the socket timeout),
/// so they run on the pool's threads only; a lease's lane uses `sendNow` and `readReplies`, which never wait, on
/// the reactor's thread. The pool gives the connection to one holder at a time: that is what makes the unchecked
/// Sendable sound.
///
/// A context that saw an I/O or protocol error is never used again (`isBroken`): hiredis leaves its buffers
/// in an unknown state. The pool closes it and opens a new one through `connect`, which sets the timeouts and
/// keepalive every time; hiredis 0.14's own `redisReconnect` would silently drop them.
package final class RedisConnection: @unchecked Sendable {
    private var context: UnsafeMutablePointer<redisContext>?
    package private(set) var isBroken = false

    private init(context: UnsafeMutablePointer<redisContext>) {
        self.context = context
    }

    deinit { close() }

    package func close() {
        guard let context else { return }
        redisFree(context)
        self.context = nil
    }

    /// Connects, sets the read/write timeout and TCP keepalive, then `AUTH` and `SELECT` as the URL says.
    package static func connect(_ configuration: RedisConfiguration) throws(RedisError) -> RedisConnection {
        let url = configuration.url
        guard let context = redisConnectWithTimeout(url.host, Int32(url.port), timeval(configuration.connectTimeout)) else {
            throw RedisError(kind: .io, message: "cannot allocate a context")
        }
        if context.pointee.err != 0 {
            let message = Self.errorText(context)
            redisFree(context)
            throw RedisError(kind: .io, message: "cannot connect to \(url.host):\(url.port): \(message)")
        }
        let connection = RedisConnection(context: context)
        // hiredis 0.14 opens its socket without close-on-exec (libpq sets it on its own): a child the process
        // spawns would keep the connection open in Redis after `close`.
        guard fcntl(context.pointee.fd, F_SETFD, fcntl(context.pointee.fd, F_GETFD) | FD_CLOEXEC) == 0 else {
            throw RedisError(kind: .io, message: "cannot set close-on-exec: \(String(cString: strerror(errno)))")
        }
        guard redisSetTimeout(context, timeval(configuration.socketTimeout)) == REDIS_OK,
              redisEnableKeepAlive(context) == REDIS_OK
        else {
            throw RedisError(kind: .io, message: "cannot set timeouts: \(Self.errorText(context))")
        }
        var setup: [[String]] = []
        if let password = url.password {
            setup.append(url.username.map { ["AUTH", $0, password] } ?? ["AUTH", password])
        }
        if url.database != 0 { setup.append(["SELECT", String(url.database)]) }
        if !setup.isEmpty {
            for reply in try connection.pipeline(setup) {
                if case .error(let message) = reply { throw RedisError(kind: .server, message: message) }
            }
        }
        return connection
    }

    /// Sends all commands at once and reads their replies in order: one round trip for a multi-command step.
    package func pipeline(_ commands: [[String]]) throws(RedisError) -> [RedisValue] {
        guard let context, !isBroken else { throw RedisError(kind: .io, message: "the connection is closed") }
        guard Self.append(commands, to: context) == REDIS_OK else { throw fail(context) }
        var replies: [RedisValue] = []
        replies.reserveCapacity(commands.count)
        for _ in commands {
            var reply: UnsafeMutableRawPointer?
            guard redisGetReply(context, &reply) == REDIS_OK, let reply else { throw fail(context) }
            replies.append(Self.decode(reply.assumingMemoryBound(to: redisReply.self)))
            freeReplyObject(reply)
        }
        return replies
    }

    /// Sends what the socket takes now, without waiting, and returns how many bytes went (0 when its buffer is
    /// full). A shared connection's lane keeps the rest and sends it when the reactor sees the socket writable:
    /// a Redis that stops reading then holds up its own callers only. hiredis' `redisBufferWrite` would block the
    /// worker's one thread for up to the socket timeout, since the context is in blocking mode.
    package func sendNow(_ bytes: UnsafeRawBufferPointer) throws(RedisError) -> Int {
        guard let context, !isBroken else { throw RedisError(kind: .io, message: "the connection is closed") }
        while true {
            let sent = Glibc.send(context.pointee.fd, bytes.baseAddress, bytes.count, Int32(MSG_DONTWAIT | MSG_NOSIGNAL))
            if sent >= 0 { return sent }
            if errno == EINTR { continue }
            if errno == EAGAIN || errno == EWOULDBLOCK { return 0 }
            isBroken = true
            throw RedisError(kind: .io, message: "cannot send to Redis: \(String(cString: strerror(errno)))")
        }
    }

    /// Reads what the socket has (one `read`, which does not block: the reactor saw it readable) and returns
    /// every complete reply, in order; the rest of a partial one stays in hiredis' reader for the next call.
    package func readReplies() throws(RedisError) -> [RedisValue] {
        guard let context, !isBroken else { throw RedisError(kind: .io, message: "the connection is closed") }
        guard redisBufferRead(context) == REDIS_OK else { throw fail(context) }
        var replies: [RedisValue] = []
        while true {
            var reply: UnsafeMutableRawPointer?
            guard redisGetReplyFromReader(context, &reply) == REDIS_OK else { throw fail(context) }
            guard let reply else { return replies }
            replies.append(Self.decode(reply.assumingMemoryBound(to: redisReply.self)))
            freeReplyObject(reply)
        }
    }

    package func command(_ arguments: [String]) throws(RedisError) -> RedisValue {
        try pipeline([arguments])[0]
    }

    package func ping() -> Bool {
        (try? command(["PING"])) == .status("PONG")
    }

    /// The socket, for tests that check what `connect` set on it.
    package var fileDescriptor: Int32 { context?.pointee.fd ?? -1 }

    private func fail(_ context: UnsafeMutablePointer<redisContext>) -> RedisError {
        isBroken = true
        let kind: RedisError.Kind = context.pointee.err == REDIS_ERR_PROTOCOL ? .protocol : .io
        return RedisError(kind: kind, message: Self.errorText(context))
    }

    /// Queues the commands' bytes in hiredis' output buffer in one copy.
    private static func append(_ commands: [[String]], to context: UnsafeMutablePointer<redisContext>) -> Int32 {
        let bytes = RedisCommandEncoding.encode(commands)
        return bytes.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { redisAppendFormattedCommand(context, $0.baseAddress, $0.count) }
        }
    }

    private static func decode(_ reply: UnsafeMutablePointer<redisReply>) -> RedisValue {
        let value = reply.pointee
        func text() -> String {
            guard let str = value.str else { return "" }
            return String(decoding: UnsafeRawBufferPointer(start: str, count: value.len), as: UTF8.self)
        }
        switch value.type {
        case REDIS_REPLY_STRING: return .bulk(text())
        case REDIS_REPLY_STATUS: return .status(text())
        case REDIS_REPLY_ERROR: return .error(text())
        case REDIS_REPLY_INTEGER: return .integer(Int64(value.integer))
        case REDIS_REPLY_ARRAY:
            var elements: [RedisValue] = []
            for index in 0..<value.elements {
                if let element = value.element[index] { elements.append(decode(element)) }
            }
            return .array(elements)
        default: return .null
        }
    }

    private static func errorText(_ context: UnsafeMutablePointer<redisContext>) -> String {
        withUnsafeBytes(of: context.pointee.errstr) { bytes in
            let text = String(decoding: bytes.prefix(while: { $0 != 0 }), as: UTF8.self)
            return text.isEmpty ? "error \(context.pointee.err)" : text
        }
    }
}

private func timeval(_ duration: Duration) -> Glibc.timeval {
    let microseconds = duration.inMicroseconds
    return Glibc.timeval(tv_sec: Int(microseconds / 1_000_000), tv_usec: Int(microseconds % 1_000_000))
}
