import CBuildInfo

/// What `--version` prints and `prefork_build_info` reports: the release and the commit it was built from.
public enum BuildInfo {
    public static let version = "0.17.1"
    public static var commit: String { String(cString: prefork_git_commit()) }

    /// `supervisor 0.17.1 (commit d75216b)`.
    public static func line(_ program: String) -> String { "\(program) \(version) (commit \(commit))" }
}
