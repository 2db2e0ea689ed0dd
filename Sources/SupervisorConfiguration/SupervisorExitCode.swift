import Arbiter

/// The supervisor's exit codes (sysexits.h where one fits); the README's table.
package enum SupervisorExitCode {
    package static let bootFailed: Int32 = BootFailure.exitCode
    package static let usage: Int32 = 64
    package static let configuration: Int32 = 78
    package static let systemError: Int32 = 71
    package static let commandNotFound: Int32 = 127
}
