import Glibc

/// libFuzzer's driver, declared here once for every target.
@_silgen_name("LLVMFuzzerRunDriver")
private func runDriver(_ argc: UnsafeMutablePointer<Int32>,
                       _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
                       _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt) -> CInt

/// Hands the process to libFuzzer with `target` as the test function. libFuzzer's own `main` is not linked,
/// because SwiftPM already gives each fuzz executable one; this is what that `main` calls.
public func fuzz(_ target: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt) -> Never {
    var argumentCount = CommandLine.argc
    var argumentValues = CommandLine.unsafeArgv
    exit(runDriver(&argumentCount, &argumentValues, target))
}
