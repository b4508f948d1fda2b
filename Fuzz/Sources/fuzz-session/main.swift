import CFuzzDriver
import FuzzTargets
#if canImport(Glibc)
import Glibc
#endif

// The libFuzzer binary of the 'session' target (Fuzz/README.md). SwiftPM gives the executable its own
// entry point, so this hands over to libFuzzer's driver, which reads the usual -flags.
FuzzTarget.session.prepare()
var argc = CommandLine.argc
var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in
    FuzzTarget.session.run(data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
    return 0
})
