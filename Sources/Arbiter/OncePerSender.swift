/// Senders already reported, so each is reported once. Bounded: a flood from many pids must not grow it forever;
/// forgetting only means reporting again.
struct OncePerSender: Sendable {
    private var seen: Set<Int32> = []

    /// True the first time `pid` is seen (and again after the set was forgotten).
    mutating func isFirst(_ pid: Int32) -> Bool {
        guard !seen.contains(pid) else { return false }
        if seen.count >= 1024 { seen.removeAll() }
        seen.insert(pid)
        return true
    }
}
