import Arbiter
import Glibc
import SupervisorSystem

/// The loop's hold on every worker's process tree: signals to the whole tree, the orphans a gone worker leaves,
/// and nothing left when the supervisor exits. The decisions (when TERM, when KILL, who waits for whom) are the
/// arbiter's; here is what the kernel can tell and do.
extension SupervisorLoop {
    /// TERM and ABRT go to the process group the worker (or orphan) leads; what is below it then inherits its KILL
    /// deadline. KILL goes to the group, to every process below it (found through their parents, so a `setsid`
    /// does not hide one) and to its cgroup. USR1/USR2 are for the worker alone.
    func send(_ signal: Machine.WorkerSignal, to pid: Int32) {
        switch signal {
        case .terminate:
            signalledTrees.append(pid)
            signalTree(pid, SIGTERM)
        case .abort:
            signalledTrees.append(pid)
            signalTree(pid, SIGABRT)
        case .kill:
            cgroups?.kill(treeOf: pid)
            let below = procIsOurs ? ProcessTree.descendants(of: pid) : []
            signalTree(pid, SIGKILL)
            for process in below where ProcessTree.identity(of: process.pid) == process { signalTree(process.pid, SIGKILL) }
        case .user(.usr1): kill(pid, SIGUSR1)
        case .user(.usr2): kill(pid, SIGUSR2)
        }
    }

    /// To the process group `pid` leads, else to `pid` alone. A group's id is its leader's pid, and Linux does not
    /// give a pid to a new process while a group of that number exists: so a group numbered `pid` is this one's.
    func signalTree(_ pid: Int32, _ signal: Int32) {
        if kill(-pid, signal) != 0 { kill(pid, signal) }
    }

    /// The trees of the workers and orphans just sent TERM or ABRT. Not from `send`: the runner that calls it is in
    /// the middle of changing the arbiter, which may not be read then.
    func rememberSignalledTrees() {
        guard !signalledTrees.isEmpty else { return }
        let pids = signalledTrees
        signalledTrees.removeAll()
        for pid in pids { remember(treeOf: pid) }
    }

    /// What is below `pid` now shares its KILL deadline, should it be re-parented to the supervisor later.
    private func remember(treeOf pid: Int32) {
        guard procIsOurs, let deadline = arbiter.killDeadline(of: pid, now: clock.now) else { return }
        for process in ProcessTree.descendants(of: pid) {
            treeDeadlines[process] = min(treeDeadlines[process] ?? deadline, deadline)
        }
    }

    /// Forgets the remembered processes that are gone (once a second, with the sweep).
    func forgetGoneTrees() {
        guard !treeDeadlines.isEmpty else { return }
        treeDeadlines = treeDeadlines.filter { ProcessTree.identity(of: $0.key.pid) == $0.key }
    }

    /// Where a child of the supervisor that is neither a worker, a known orphan nor the job came from.
    enum Origin {
        /// A worker's or the job's tree, and that worker is alive (a helper it double-forked, in its cgroup).
        case liveTree
        /// A tree whose worker is gone: an orphan.
        case goneTree
        /// Not from any tree the supervisor started: a child it had before it started anything, or what such a
        /// child left behind. Never signalled.
        case elsewhere
    }

    /// With a cgroup per worker the cgroup says it, exactly. With process groups alone: a child the supervisor had
    /// at start, or one in the supervisor's own process group (which no worker's tree shares: every worker leads a
    /// group of its own), is from elsewhere; anything else is taken for an orphan, as it cannot be told apart.
    func origin(of child: Int32, live: Set<Int32>) -> Origin {
        if let cgroups {
            if let tree = cgroups.cgroup(of: child) {
                if let owner = cgroups.owner(of: tree), live.contains(owner) { return .liveTree }
                return .goneTree
            }
            if cgroups.complete { return .elsewhere }
        }
        if inheritedChildren.contains(child) || getpgid(child) == getpgrp() { return .elsewhere }
        return .goneTree
    }

    /// Every child that came out of a gone worker's tree is an orphan: the arbiter has it signalled.
    ///
    /// - Parameter reaped: pids reaped just now whose exits the arbiter has not heard yet: gone already.
    func sweepOrphans(reaped: Set<Int32> = []) {
        guard procIsOurs else { return }
        var live = Set(arbiter.workerPIDs)
        if let job = arbiter.cleanup?.runningPID { live.insert(job) }
        live.subtract(reaped)
        let known = live.union(arbiter.orphanPIDs).union(reaped)
        for child in ProcessTree.children() where !known.contains(child) && origin(of: child, live: live) == .goneTree {
            cgroups?.found(child)
            let deadline = ProcessTree.identity(of: child).flatMap { treeDeadlines[$0] }
            // Its TERM records its own tree's deadline: a chain re-parented level by level gets one grace in all.
            perform(arbiter.adopted(pid: child, deadline: deadline, now: clock.now))
        }
    }

    /// Nothing the supervisor started outlives it. The arbiter waited for every orphan it knew of; whatever of
    /// a worker's tree is still a child now (re-parented in the last instant) is killed and reaped, for a second
    /// at most. What came from elsewhere is left alone.
    func killLeftovers() {
        cgroups?.killEverything()
        guard procIsOurs else { return }
        let deadline = clock.now + .seconds(1)
        var left = ProcessTree.children().filter { origin(of: $0, live: []) == .goneTree }
        for child in left { signalTree(child, SIGKILL) }
        while !left.isEmpty, clock.now < deadline {
            for (pid, _) in SignalChannel.reap() { left.removeAll { $0 == pid } }
            left = left.filter { kill($0, 0) == 0 }
            if !left.isEmpty { usleep(10_000) }
        }
    }
}
