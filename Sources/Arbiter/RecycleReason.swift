/// Why a worker is replaced although nothing is wrong with it.
package enum RecycleReason: Sendable, Equatable, CustomStringConvertible {
    /// It served its `--max-requests` (it said so: `X_PREFORK_RECYCLE=max-requests`).
    case maxRequests
    /// Its resident memory passed `--max-worker-memory`.
    case memory(residentBytes: Int, limitBytes: Int)
    /// It asked, for a reason of its own (`X_PREFORK_RECYCLE=...`).
    case requested(String)

    /// What a worker's `X_PREFORK_RECYCLE=` says.
    package init(notified text: String) {
        self = text == "max-requests" ? .maxRequests : .requested(text)
    }

    /// The metric label: `max-requests`, `memory`, `requested`.
    package var kind: String {
        switch self {
        case .maxRequests: "max-requests"
        case .memory: "memory"
        case .requested: "requested"
        }
    }

    package var description: String {
        switch self {
        case .maxRequests: "max-requests"
        case .memory(let resident, let limit): "memory: \(Self.megabytes(resident)) > \(Self.megabytes(limit))"
        case .requested(let text): text
        }
    }

    /// `27.0 MB`.
    package static func megabytes(_ bytes: Int) -> String {
        let tenths = (bytes * 10 + (1 << 19)) >> 20
        return "\(tenths / 10).\(tenths % 10) MB"
    }
}
