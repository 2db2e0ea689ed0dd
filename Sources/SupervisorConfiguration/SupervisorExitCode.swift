import Arbiter

/// The supervisor's exit codes (sysexits.h where one fits); the README's table.
public enum SupervisorExitCode {
    public static let bootFailed: Int32 = BootFailure.exitCode
    public static let usage: Int32 = 64
    public static let configuration: Int32 = 78
    public static let systemError: Int32 = 71
    public static let commandNotFound: Int32 = 127
}
