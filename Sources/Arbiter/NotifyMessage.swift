/// One sd_notify datagram, as far as the supervisor cares.
///
/// The protocol is newline-separated `KEY=VALUE` assignments (sd_notify(3)). Unknown keys are ignored, as
/// systemd does; lines without `=` or with bytes that are not UTF-8 are counted in `malformedLines` and skipped,
/// so a buggy or hostile child can never make the supervisor fail.
package struct NotifyMessage: Sendable, Equatable {
    package var ready = false
    package var stopping = false
    package var reloading = false
    package var watchdog = false
    /// `WATCHDOG=trigger`: the service asks to be treated as hung.
    package var watchdogTrigger = false
    package var status: String?
    /// `X_PREFORK_RECYCLE=reason`: the worker asks to be replaced (it served its max requests). An `X_` key,
    /// as sd_notify(3) advises for keys of one's own; systemd ignores it.
    package var recycle: String?
    package var malformedLines = 0

    package init() {}

    package init(parsing datagram: some Collection<UInt8>) {
        for line in datagram.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true) {
            guard let text = String(validating: line, as: UTF8.self),
                let equals = text.firstIndex(of: "=")
            else {
                malformedLines += 1
                continue
            }
            let key = text[..<equals]
            let value = text[text.index(after: equals)...]
            switch key {
            case "READY": ready = value == "1"
            case "STOPPING": stopping = value == "1"
            case "RELOADING": reloading = value == "1"
            case "WATCHDOG":
                if value == "1" { watchdog = true } else if value == "trigger" { watchdogTrigger = true }
            case "STATUS": status = String(value.prefix(256))
            case "X_PREFORK_RECYCLE": recycle = value.isEmpty ? "asked" : String(value.prefix(64))
            default: break
            }
        }
    }
}
