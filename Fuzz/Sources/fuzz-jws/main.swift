import CFuzzDriver
import FuzzTargets
#if canImport(Glibc)
import Glibc
#endif

// The libFuzzer binary of the 'jws' target (Fuzz/README.md). SwiftPM gives the executable its own
// entry point, so this hands over to libFuzzer's driver, which reads the usual -flags.
FuzzTarget.jws.prepare()
var argc = CommandLine.argc
var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in
    FuzzTarget.jws.run(data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
    return 0
})
