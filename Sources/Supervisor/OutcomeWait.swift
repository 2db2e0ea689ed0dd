import Settings
import Glibc
import SupervisorControl
import SupervisorSystem

/// `supervisor reload` and `stop` wait for what they started, so that a deploy script learns the outcome:
/// a reload that returned at once said nothing of a new build that could not boot, and `reload && status`
/// reported a deploy that never happened. Both poll the control socket rather than hold a connection open,
/// so the supervisor's loop keeps nothing per waiting client.
enum OutcomeWait {
    typealias Code = Commands.Code

    /// Sends `request` and prints what the supervisor said it will do; the exit code when it refused or is not
    /// there.
    /// - Parameter wait: the command's `--timeout`, which also bounds how long the supervisor may take to answer.
    static func send(_ request: ControlRequest, reader: SettingsReader, wait: Duration?) -> Result<String, Failure> {
        var accepted = ""
        let code = Commands.control(request, reader: reader, timeout: min(wait ?? .seconds(10), .seconds(10))) { accepted = $0 }
        guard code == Code.ok else { return .failure(Failure(code: code)) }
        print(accepted, terminator: "")
        return .success(accepted)
    }

    struct Failure: Error {
        var code: Int32
    }

    static func reload(reader: SettingsReader, wait: Duration?) -> Int32 {
        let accepted: String
        switch send(.reload, reader: reader, wait: wait) {
        case .success(let text): accepted = text
        case .failure(let failure): return failure.code
        }
        guard let wait else { return Code.ok }
        // "rolling restart to generation 4"
        guard var target = accepted.split(whereSeparator: { $0 == " " || $0 == "\n" }).last.flatMap({ Int($0) }) else {
            Commands.report("unexpected answer to reload: \(accepted.prefix(80))")
            return Code.usage
        }
        let path = Commands.controlPath(reader)
        let clock = ContinuousClock()
        let deadline = clock.now + wait
        while clock.now < deadline {
            usleep(200_000)
            switch ControlSocket.request(ControlRequest.lastReload.line, path: path, timeout: .seconds(5)) {
            case .failure(let error) where gone(error):
                Commands.report("the supervisor went away during the rolling restart to generation \(target)")
                return Code.refused
            case .failure:
                continue  // busy, or a moment between accept queues: ask again
            case .success(let response):
                guard case .ok(let body) = ControlSocket.parse(response) else {
                    Commands.report("unexpected answer to last-reload: \(response.prefix(80))")
                    return Code.usage
                }
                let line = body.split(separator: "\n").first.map(String.init) ?? ""
                let words = line.split(separator: " ", maxSplits: 1)
                guard let generation = words.first.flatMap({ Int($0) }), words.count == 2 else { continue }
                if generation > target {
                    print("superseded by a newer reload to generation \(generation); waiting for that one")
                    target = generation
                    continue
                }
                guard generation == target else { continue }
                if words[1].hasPrefix("finished") {
                    print("generation \(target) serves in every slot")
                    return Code.ok
                }
                if words[1].hasPrefix("aborted") {
                    let reason = words[1].split(separator: ":", maxSplits: 1).dropFirst().first.map { $0.drop { $0 == " " } } ?? ""
                    Commands.report("the rolling restart to generation \(target) was aborted, the old workers keep serving: \(reason)")
                    return Code.refused
                }
            }
        }
        Commands.report("still rolling to generation \(target) after \(wait) (see supervisor status)")
        return Code.timedOut
    }

    static func stop(reader: SettingsReader, wait: Duration?) -> Int32 {
        let path = Commands.controlPath(reader)
        // Which process to wait for: the one that answers now. Its socket goes away before its last log line is
        // written and its listeners are closed, so the socket alone says too early that it is gone.
        var supervisor: Int32?
        if let wait {
            switch ControlSocket.exchange("ping", path: path, timeout: min(wait, .seconds(5))) {
            case .success(let answer) where answer.peer > 0:
                supervisor = answer.peer
            case .failure(let error) where error.errno == EAGAIN || error.errno == EWOULDBLOCK:
                // Stopped or starved: a stop sent now would wait as long again, and act when it resumes.
                Commands.report("the supervisor at \(path) did not answer within \(ValueSyntax.describe(min(wait, .seconds(5)))) "
                    + "(stopped, or busy?); nothing was sent")
                return Code.timedOut
            default:
                break
            }
        }
        if case .failure(let failure) = send(.stop, reader: reader, wait: wait) { return failure.code }
        guard let wait else { return Code.ok }
        let clock = ContinuousClock()
        let deadline = clock.now + wait
        while clock.now < deadline {
            usleep(50_000)
            if let supervisor {
                if !running(supervisor) {
                    print("stopped")
                    return Code.ok
                }
            } else if case .failure(let error) = ControlSocket.request(ControlRequest.ping.line, path: path, timeout: .seconds(2)), gone(error) {
                // No pid (a peer in another PID namespace): the socket removed at exit is the sign.
                print("stopped")
                return Code.ok
            }
        }
        Commands.report("still stopping after \(wait) (see supervisor status)")
        return Code.timedOut
    }

    /// Alive and not a zombie (a zombie has closed everything; only its parent's `wait` is missing).
    static func running(_ pid: Int32) -> Bool {
        guard kill(pid, 0) == 0 || errno == EPERM else { return false }
        let fd = open("/proc/\(pid)/stat", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return true }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 512)
        let count = read(fd, &buffer, buffer.count)
        guard count > 0, let paren = buffer[..<count].lastIndex(of: UInt8(ascii: ")")), paren + 2 < count else { return true }
        return buffer[paren + 2] != UInt8(ascii: "Z")
    }

    /// Nobody listens at the path any more: the socket was removed, or its listener closed.
    static func gone(_ error: SystemError) -> Bool {
        error.errno == ENOENT || error.errno == ECONNREFUSED
    }
}
