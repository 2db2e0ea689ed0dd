/// What the pool needs from a kind of connection. Every method blocks (libpq, hiredis), so the pool calls
/// them on its own threads, never on an event loop or the cooperative pool.
public protocol PoolDriver: Sendable {
    /// A connection, used by one thread at a time: the pool hands it to one holder.
    associatedtype Connection: Sendable

    /// Opens a connection; the error's description is what a waiting checkout is told.
    func connect() throws -> Connection
    /// A round trip that proves the connection still works.
    func ping(_ connection: Connection) -> Bool
    /// Makes a returned connection clean for the next holder (rolls back an open transaction); false when it
    /// is broken or could not be reset, and must be closed.
    func reset(_ connection: Connection) -> Bool
    /// Whether `reset` has I/O to do; when false the connection goes back without a thread hop.
    func needsReset(_ connection: Connection) -> Bool
    func close(_ connection: Connection)
    /// Asks the server to stop what the connection is running, from another thread than its holder's (libpq's
    /// `PQcancel` is made for that). It may block on a connect of its own; the pool never waits for it.
    func cancel(_ connection: Connection)
}

extension PoolDriver {
    /// Nothing to cancel: a Redis command is bounded by its socket timeout.
    public func cancel(_ connection: Connection) {}
}
