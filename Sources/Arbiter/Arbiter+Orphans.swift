extension Arbiter {
    /// A process that outlived its place in a worker's tree: it was re-parented to the supervisor (PID 1, or the
    /// subreaper) because its parent ended, and it is neither a worker nor the cleanup job. gunicorn's workers
    /// after their master was killed, the server behind a shell wrapper that did not `exec`, a daemon that
    /// double-forked: left alone they keep serving on the shared socket next to their replacement, and hold their
    /// database connections after the supervisor is gone.
    package struct Orphan: Sendable, Equatable {
        package var pid: Int32
        /// SIGKILL goes out at this moment unless it is gone; nil once it was sent.
        package var killAt: Instant?
    }

    /// The shell found `pid` among the supervisor's children, and it is not the cleanup job (which the shell
    /// knows). Unless it is a worker already counted, it is an orphan: TERM at once (to its process group when it
    /// leads one), KILL after the graceful timeout, as a worker would get, and no later than a stop's deadline.
    /// Found after that deadline (a worker's children re-parented when its KILL came), it is killed at once.
    ///
    /// - Parameter deadline: the KILL deadline of the tree it was part of when that tree was told to go (the
    ///   shell saw it below a worker or orphan that got TERM): a chain of processes that each ignore TERM and
    ///   are re-parented one after another is given one graceful timeout in all, not one each.
    package mutating func adopted(pid: Int32, deadline: Instant? = nil, now: Instant) -> [Action] {
        guard locate(pid) == nil, !orphans.contains(where: { $0.pid == pid }) else { return [] }
        orphansSignalled += 1
        var killAt = min(now + configuration.gracefulTimeout, deadline ?? now + configuration.gracefulTimeout)
        switch phase {
        case .stopping(let deadline, _, _): killAt = min(killAt, deadline)
        case .stopped: killAt = now
        case .booting, .running: break
        }
        guard killAt > now else {
            orphans.append(Orphan(pid: pid, killAt: nil))
            return [.report(.orphanSignalled(pid: pid, killing: true)), .signal(pid: pid, .kill)]
        }
        orphans.append(Orphan(pid: pid, killAt: killAt))
        return [.report(.orphanSignalled(pid: pid, killing: false)), .signal(pid: pid, .terminate)]
    }

    /// KILL for the orphans whose grace is over.
    mutating func killOverdueOrphans(now: Instant) -> [Action] {
        var actions: [Action] = []
        for index in orphans.indices {
            guard let killAt = orphans[index].killAt, now >= killAt else { continue }
            orphans[index].killAt = nil
            actions.append(.report(.killing(pid: orphans[index].pid, reason: "orphan still running after SIGTERM")))
            actions.append(.signal(pid: orphans[index].pid, .kill))
        }
        return actions
    }

    /// A stop's deadline applies to orphans too: a fast stop kills them now, a graceful one no later than it.
    mutating func bringOrphans(toDeadline deadline: Instant, fast: Bool) -> [Action] {
        var actions: [Action] = []
        for index in orphans.indices {
            guard let killAt = orphans[index].killAt else { continue }
            if fast {
                orphans[index].killAt = nil
                actions.append(.signal(pid: orphans[index].pid, .kill))
            } else if killAt > deadline {
                orphans[index].killAt = deadline
            }
        }
        return actions
    }

    /// When `pid`, a worker told to go or an orphan, gets SIGKILL; `now` once it was sent, nil for a worker that
    /// was not told to go (or a pid that is none of these). What was below it when it got TERM inherits this.
    package func killDeadline(of pid: Int32, now: Instant) -> Instant? {
        if let retiree = retirees.first(where: { $0.pid == pid }) { return retiree.killAt ?? now }
        if let orphan = orphans.first(where: { $0.pid == pid }) { return orphan.killAt ?? now }
        return nil
    }

    /// Orphans signalled and not yet reaped; the supervisor exits only once there are none.
    package var orphanCount: Int { orphans.count }

    /// The pids of the orphans still running, for the shell (status, the final sweep).
    package var orphanPIDs: [Int32] { orphans.map(\.pid) }
}
