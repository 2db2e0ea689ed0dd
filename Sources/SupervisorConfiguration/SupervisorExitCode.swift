import Arbiter
import Glibc

/// The supervisor's exit codes (sysexits.h where one fits); the table in docs/signals.md.
package enum SupervisorExitCode {
    package static let bootFailed: Int32 = BootFailure.exitCode
    package static let usage: Int32 = EX_USAGE
    package static let configuration: Int32 = EX_CONFIG
    package static let systemError: Int32 = EX_OSERR
    package static let commandNotFound: Int32 = 127
}
