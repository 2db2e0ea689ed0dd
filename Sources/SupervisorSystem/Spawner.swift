import Settings
import SystemdProtocol
import CShims
import Glibc

/// Starts workers through the C shim, with the socket as fd 3 and the systemd variables that say so.
///
/// `LISTEN_PID` and `WATCHDOG_PID` must hold the worker's own pid, which only exists after fork, so the
/// environment is prepared here with room for the digits and the child writes them before `execve`.
package struct Spawner {
    package struct Command: Sendable, Equatable {
        /// Resolved path of the executable.
        package var path: String
        /// argv, the first element being the name as given.
        package var arguments: [String]

        package init(path: String, arguments: [String]) {
            self.path = path
            self.arguments = arguments
        }
    }

    package var command: Command
    package var listenFD: Int32
    package var backlog: Int32
    /// nil with `--no-notify`: the worker gets neither `NOTIFY_SOCKET` nor `WATCHDOG_*`.
    package var notifySocket: String?
    package var watchdogMicroseconds: UInt64?
    /// The supervisor's environment without the variables that describe the supervisor's own manager.
    package var baseEnvironment: [String]

    typealias Variable = SystemdProtocol.Variable

    /// Variables the supervisor received from its own manager (systemd) that must not reach a worker.
    static let inheritedOnlyBySupervisor = SystemdProtocol.Variable.all + [WorkerContract.listenBacklog]

    package init(command: Command, listenFD: Int32, backlog: Int32, notifySocket: String?,
                watchdogMicroseconds: UInt64?, environment: [String]) {
        self.command = command
        self.listenFD = listenFD
        self.backlog = backlog
        self.notifySocket = notifySocket
        self.watchdogMicroseconds = watchdogMicroseconds
        self.baseEnvironment = environment.filter { entry in
            let name = entry.split(separator: "=", maxSplits: 1).first.map(String.init) ?? entry
            return !Self.inheritedOnlyBySupervisor.contains(name)
        }
    }

    /// The variables a worker of `slot` gets on top of the base environment; `pidPlaceholder` marks where the
    /// child writes its pid.
    func workerVariables(slot: Int, generation: Int) -> [String] {
        var variables = [
            "\(Variable.listenFDs)=1",
            "\(Variable.listenPID)=" + Self.pidPlaceholder,
            "\(Variable.listenFDNames)=http",
            // Not systemd's: lets a worker whose server library re-listens the socket restore our backlog.
            "\(WorkerContract.listenBacklog)=\(backlog)",
            "\(WorkerContract.slot)=\(slot)",
            "\(WorkerContract.generation)=\(generation)",
        ]
        if let notifySocket {
            variables.append("\(Variable.notifySocket)=\(notifySocket)")
            if let watchdogMicroseconds {
                variables.append("\(Variable.watchdogMicroseconds)=\(watchdogMicroseconds)")
                variables.append("\(Variable.watchdogPID)=" + Self.pidPlaceholder)
            }
        }
        return variables
    }

    /// Room for any pid's digits and the terminating NUL.
    static let pidPlaceholder = String(repeating: "0", count: 20)

    /// Forks and execs one worker; returns its pid. Runs on the supervisor's only thread, so that the
    /// child's `PR_SET_PDEATHSIG` follows the supervisor's life and not a thread's.
    ///
    /// - Parameter extraEnvironment: variables for this worker alone (its automatic pool size, its private
    ///   metrics socket); they replace the supervisor's own values of the same names.
    /// - Parameter cgroup: a cgroup directory (`WorkerCgroups.make`) the worker joins before exec.
    package func spawn(slot: Int, generation: Int, extraEnvironment: [String] = [], cgroup: String? = nil) throws(SystemError) -> Int32 {
        let overridden = Set(extraEnvironment.map { $0.split(separator: "=", maxSplits: 1)[0] })
        let base = overridden.isEmpty ? baseEnvironment
            : baseEnvironment.filter { !overridden.contains($0.split(separator: "=", maxSplits: 1)[0]) }
        return try Self.launch(command, environment: base + workerVariables(slot: slot, generation: generation) + extraEnvironment,
                               listenFD: listenFD, cgroup: cgroup)
    }

    /// Starts the cleanup job: no socket, no notify variables; its own process group (and cgroup, when given),
    /// and it dies with the supervisor like a worker.
    package func spawnJob(_ job: Command, extraEnvironment: [String], cgroup: String? = nil) throws(SystemError) -> Int32 {
        let overridden = Set(extraEnvironment.map { $0.split(separator: "=", maxSplits: 1)[0] })
        let base = baseEnvironment.filter { !overridden.contains($0.split(separator: "=", maxSplits: 1)[0]) }
        return try Self.launch(job, environment: base + extraEnvironment, listenFD: -1, cgroup: cgroup)
    }

    private static func launch(_ command: Command, environment: [String], listenFD: Int32,
                               cgroup: String?) throws(SystemError) -> Int32 {
        var owned: [UnsafeMutablePointer<CChar>] = []
        defer { owned.forEach { free($0) } }
        func duplicate(_ text: String) -> UnsafeMutablePointer<CChar> {
            let pointer = strdup(text)!
            owned.append(pointer)
            return pointer
        }
        var argv: [UnsafeMutablePointer<CChar>?] = command.arguments.map(duplicate) + [nil]
        var envp: [UnsafeMutablePointer<CChar>?] = []
        var listenPIDDigits: UnsafeMutablePointer<CChar>?
        var watchdogPIDDigits: UnsafeMutablePointer<CChar>?
        for entry in environment {
            let pointer = duplicate(entry)
            // The pid's digits start after `NAME=`.
            if entry.hasPrefix(Variable.listenPID + "=") { listenPIDDigits = pointer + Variable.listenPID.utf8.count + 1 }
            if entry.hasPrefix(Variable.watchdogPID + "=") { watchdogPIDDigits = pointer + Variable.watchdogPID.utf8.count + 1 }
            envp.append(pointer)
        }
        envp.append(nil)
        let path = duplicate(command.path)
        let cgroupProcs = cgroup.map { UnsafePointer(duplicate($0 + "/cgroup.procs")) }

        var error: Int32 = 0
        let pid = argv.withUnsafeMutableBufferPointer { argvBuffer in
            envp.withUnsafeMutableBufferPointer { envpBuffer in
                var request = prefork_spawn_request(
                    path: path,
                    argv: argvBuffer.baseAddress,
                    envp: envpBuffer.baseAddress,
                    listen_fd: listenFD,
                    listen_pid_digits: listenPIDDigits,
                    watchdog_pid_digits: watchdogPIDDigits,
                    death_signal: SIGKILL,
                    new_process_group: 1,
                    parent_pid: getpid(),
                    cgroup_procs: cgroupProcs
                )
                return prefork_spawn(&request, &error)
            }
        }
        guard pid > 0 else { throw SystemError("spawn \(command.path)", errno: error) }
        return pid
    }

    /// Finds an executable the way a shell would: a name with a slash is a path, anything else is looked up
    /// in `PATH`. Done once at start, so a typo fails the deploy at once with exit 127 instead of a crash loop.
    package static func resolve(_ name: String, path: String?) -> String? {
        // A directory passes access(X_OK) (it can be searched) but cannot be executed: without the regular-file
        // check, `supervisor /tmp` spawned five workers that each failed with EACCES, then exited 3.
        if name.contains("/") { return isExecutableFile(name) ? name : nil }
        let directories = (path ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":")
        for directory in directories {
            let candidate = "\(directory)/\(name)"
            if isExecutableFile(candidate) { return candidate }
        }
        return nil
    }

    package static func isExecutableFile(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG && access(path, X_OK) == 0
    }
}
