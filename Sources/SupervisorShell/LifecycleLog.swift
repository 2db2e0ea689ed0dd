import SupervisorSystem
import TimeUnits
import Arbiter
import Logging

/// Turns the arbiter's reports into one log line each, with slot and pid as metadata.
struct LifecycleLog {
    var logger: Logger
    /// Readiness is `READY=1` over sd_notify (not `--no-notify`): a boot that times out may be a worker that
    /// does not speak it, which the messages then say.
    var notifyReadiness = true

    private var readinessHint: String {
        notifyReadiness ? " (no READY=1 came: a worker that does not send it, such as plain uvicorn, needs --no-notify)" : ""
    }

    func record(_ report: Arbiter<ContinuousClock.Instant>.Report) {
        switch report {
        case .spawned(let slot, let pid, let generation):
            logger.info("spawned", metadata: meta(slot, pid, ["generation": "\(generation)"]))
        case .spawnFailed(let slot, let error):
            logger.error("spawn failed: \(error)", metadata: meta(slot, nil))
        case .ready(let slot, let pid, let after):
            logger.info("ready", metadata: meta(slot, pid, ["boot": "\(milliseconds(after))"]))
        case .allReady(let workers, let after):
            logger.notice("all \(workers) workers ready", metadata: ["after": "\(milliseconds(after))"])
        case .exited(let slot, let pid, let status, let expected):
            let message = "exited with \(status)"
            if expected || status == .exited(0) {
                logger.info("\(message)", metadata: meta(slot, pid))
            } else {
                logger.warning("\(message)", metadata: meta(slot, pid))
            }
        case .restartScheduled(let slot, let after, let failures):
            logger.warning("restarting after backoff",
                           metadata: meta(slot, nil, ["delay": "\(milliseconds(after))", "failures": "\(failures)"]))
        case .restarted:
            break  // the exit, the timeout or the heartbeat that caused it is logged on its own
        case .heartbeatMissed(let slot, let pid, let silence):
            logger.error("heartbeat missed, aborting", metadata: meta(slot, pid, ["silent": "\(milliseconds(silence))"]))
        case .bootTimedOut(let slot, let pid):
            logger.error("not ready within the boot timeout, killing\(readinessHint)", metadata: meta(slot, pid))
        case .killing(let pid, let reason):
            logger.warning("sending SIGKILL: \(reason)", metadata: ["pid": "\(pid)"])
        case .stopping(let fast, let workers):
            logger.notice(fast ? "fast stop" : "graceful stop", metadata: ["workers": "\(workers)"])
        case .reloadStarted(let generation):
            logger.notice("rolling restart", metadata: ["generation": "\(generation)"])
        case .reloadFinished(let generation):
            logger.notice("rolling restart done", metadata: ["generation": "\(generation)"])
        case .reloadAborted(let slot, let reason) where reason.hasPrefix("superseded"):
            logger.notice("rolling restart \(reason); starting over with the newest code", metadata: meta(slot, nil))
        case .reloadAborted(let slot, let reason):
            logger.error("rolling restart aborted, keeping the old workers: \(reason)", metadata: meta(slot, nil))
        case .ignored(let what):
            logger.info("ignored: \(what)")
        case .stalled(let duration):
            logger.warning("the supervisor did not run for up to \(milliseconds(duration)) (stopped, traced or starved): heartbeat deadlines start over")
        case .relayed(let signal, let workers, let spared):
            let sparedText = spared > 0 ? " (\(spared) booting or draining spared)" : ""
            logger.info("relayed SIG\(signal.rawValue) to \(workers) ready worker\(workers == 1 ? "" : "s")\(sparedText)")
        case .scaled(let workers):
            logger.notice("scaled", metadata: ["workers": "\(workers)"])
        case .workerRefusedConfiguration(let slot, let pid):
            logger.critical("the worker exited 78 (a configuration error) before it was ready: retrying cannot help, stopping with exit 78",
                            metadata: meta(slot, pid))
        case .bootFailed(let slot, let attempts):
            logger.critical("first generation cannot boot: slot failed \(attempts) times before READY, giving up",
                            metadata: meta(slot, nil))
        case .cleanup(let report):
            cleanup(report)
        case .cleanupFinished(let pid, let result, let code, let milliseconds):
            logger.log(level: code == 0 ? .info : .warning, "cleanup finished with \(result)",
                       metadata: ["pid": "\(pid)", "duration": "\(milliseconds)ms"])
        case .strangerNotify(let pid):
            logger.warning("ignoring notify datagrams from pid \(pid): not a worker of ours")
        case .malformedNotify(let pid):
            logger.warning("malformed notify datagram (reported once per sender)", metadata: ["pid": "\(pid)"])
        case .orphanReaped(let pid, let status):
            logger.info("reaped orphan (\(status))", metadata: ["pid": "\(pid)"])
        case .orphanSignalled(let pid, let killing):
            let name = ProcessTree.name(of: pid).map { " (\($0))" } ?? ""
            logger.warning("orphan of a gone worker\(name): \(killing ? "SIGKILL, the stop's deadline has passed" : "SIGTERM, SIGKILL after the graceful timeout")",
                           metadata: ["pid": "\(pid)"])
        case .refused(let why):
            logger.warning("refused: \(why)")
        case .retireFirst(let slot, let pid, let needed, let held, let peak):
            logger.notice("surge does not fit the connection budget (\(held) held + \(needed) > \(peak)): retiring the old worker first",
                          metadata: meta(slot, pid))
        case .waitingForConnections(let slot, let needed, let held, let peak):
            logger.notice("waiting for a draining worker's connections before spawning (\(held) held + \(needed) > \(peak))",
                          metadata: meta(slot, nil))
        case .recycleRequested(let slot, let pid, let reason):
            logger.info("recycle requested: \(reason)", metadata: meta(slot, pid))
        case .recycling(let slot, let pid, let reason, let surge):
            logger.notice("recycling (\(reason)), \(surge ? "new worker first" : "retire-first")", metadata: meta(slot, pid))
        case .recycled(let slot, let pid, let after):
            logger.notice("recycled", metadata: meta(slot, pid, ["took": "\(milliseconds(after))"]))
        case .recycleAborted(let slot, let reason):
            logger.error("recycle aborted, keeping the old worker for now: \(reason)", metadata: meta(slot, nil))
        case .recycleDeferred(let slot, let pid, let why, let delay):
            logger.warning("\(why); recycling it in \(Int(delay.inSeconds.rounded())) s, not at once", metadata: meta(slot, pid))
        case .resizing(let workers, let connections):
            logger.notice("DB_POOL_SIZE=auto: \(connections) connections per worker for \(workers) workers; replacing every worker",
                          metadata: ["workers": "\(workers)"])
        }
    }

    private func meta(_ slot: Int?, _ pid: Int32?, _ extra: Logger.Metadata = [:]) -> Logger.Metadata {
        var metadata = extra
        if let slot { metadata["slot"] = "\(slot)" }
        if let pid { metadata["pid"] = "\(pid)" }
        return metadata
    }

    private func milliseconds(_ duration: Duration) -> String {
        let ms = duration.inSeconds * 1000
        return ms < 10 ? "\((ms * 10).rounded() / 10)ms" : "\(Int(ms.rounded()))ms"
    }

    private func cleanup(_ report: CleanupJob.Report) {
        switch report {
        case .scheduled(let at):
            logger.info("cleanup scheduled", metadata: ["next": "\(CleanupJob.format(at))"])
        case .skippedStillRunning(let pid, let running, let next):
            logger.notice("cleanup still running, this run is skipped", metadata: [
                "pid": "\(pid)", "running": "\(running)ms", "next": "\(next.map(CleanupJob.format) ?? "never")",
            ])
        case .started(let pid):
            logger.info("cleanup started", metadata: ["pid": "\(pid)"])
        case .startFailed(let error):
            logger.error("cleanup could not start", metadata: ["error": "\(error)"])
        case .finished:
            break  // reported as `cleanupFinished`, with how it ended
        case .timedOut(let pid, let milliseconds):
            logger.warning("cleanup timed out, terminating its process group", metadata: [
                "pid": "\(pid)", "after": "\(milliseconds)ms",
            ])
        case .killed(let pid):
            logger.warning("cleanup did not stop after SIGTERM, killed its process group", metadata: ["pid": "\(pid)"])
        }
    }
}
