import Logging

/// What the text and the JSON handler share: the level, the handler's metadata and an event's merged over it.
/// Each renders a line its own way.
public protocol StderrLogHandler: LogHandler {
    var metadata: Logger.Metadata { get set }
}

extension StderrLogHandler {
    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// The handler's metadata with the event's on top.
    func fields(of event: LogEvent) -> Logger.Metadata {
        guard let extra = event.metadata else { return metadata }
        return metadata.merging(extra) { $1 }
    }
}
