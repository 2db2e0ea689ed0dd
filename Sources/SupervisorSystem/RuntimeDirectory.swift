import Glibc

/// Where the supervisor keeps its sockets: the one rule for the notify socket, the workers' metrics sockets
/// and the control socket. systemd's `RuntimeDirectory=a b` sets `RUNTIME_DIRECTORY=/run/a:/run/b`: the
/// first is ours (two of the three places once took the whole list as one path).
package enum RuntimeDirectory {
    /// `$RUNTIME_DIRECTORY` (its first path), else `$XDG_RUNTIME_DIR`; nil when neither is set.
    package static func configured(_ environment: [String: String]) -> (path: String, fromSystemd: Bool)? {
        if let first = environment["RUNTIME_DIRECTORY"]?.split(separator: ":").first, !first.isEmpty {
            return (String(first), true)
        }
        if let directory = environment["XDG_RUNTIME_DIR"], !directory.isEmpty { return (directory, false) }
        return nil
    }

    /// The control socket: `$RUNTIME_DIRECTORY/supervisor.sock` under systemd's `RuntimeDirectory=`, else
    /// under `$XDG_RUNTIME_DIR/prefork/`, `/run/prefork/` for root, `/tmp/prefork-UID/` for anyone else.
    package static func controlSocketPath(_ environment: [String: String]) -> String {
        if let directory = configured(environment) {
            return directory.fromSystemd ? "\(directory.path)/supervisor.sock" : "\(directory.path)/prefork/supervisor.sock"
        }
        return geteuid() == 0 ? "/run/prefork/supervisor.sock" : "/tmp/prefork-\(getuid())/supervisor.sock"
    }

    /// A fresh private (0700) folder for sockets only this supervisor and its workers use: under the configured
    /// directory when it is writable, else under /tmp.
    package static func makePrivate(_ prefix: String, environment: [String: String]) throws(SystemError) -> String {
        var base = "/tmp"
        if let configured = configured(environment), access(configured.path, W_OK | X_OK) == 0 { base = configured.path }
        var template = Array("\(base)/\(prefix).XXXXXX".utf8CString)
        guard let created = mkdtemp(&template) else { throw SystemError("mkdtemp \(base)") }
        let path = String(cString: created)
        chmod(path, 0o700)
        return path
    }
}
