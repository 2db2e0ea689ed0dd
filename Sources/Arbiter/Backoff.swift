/// Exponential restart delay for a slot whose workers keep failing before READY.
///
/// The first failure waits `base`, each next one twice as long, up to `cap`; 100 ms doubling to 30 s
/// means a crash-looping worker costs a handful of forks in its first seconds and then one every
/// 30 s, while a worker that failed once because of a passing fault is back almost at once.
package struct Backoff: Sendable, Equatable {
    package var base: Duration = .milliseconds(100)
    package var cap: Duration = .seconds(30)

    package init(base: Duration = .milliseconds(100), cap: Duration = .seconds(30)) {
        self.base = base
        self.cap = cap
    }

    /// The delay after `failures` consecutive failures (1 or more).
    package func delay(afterFailures failures: Int) -> Duration {
        guard failures >= 1 else { return .zero }
        var delay = base
        for _ in 1..<min(failures, 40) {
            delay *= 2
            if delay >= cap { return cap }
        }
        return min(delay, cap)
    }
}
