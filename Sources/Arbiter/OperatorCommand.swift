/// What an operator's command (the control socket's `scale`, `reload`, `stop`) came to: the core says, the
/// shell only writes it back.
package enum CommandOutcome: Sendable, Equatable {
    case accepted(String)
    case refused(String)
}

/// The commands the control socket takes that change something. `Arbiter.command(_:now:)` decides each.
package enum OperatorCommand: Sendable, Equatable {
    case scale(workers: Int)
    case reload
    case stop
}
