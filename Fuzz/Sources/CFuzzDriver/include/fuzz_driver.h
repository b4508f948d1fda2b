#ifndef IDT_FUZZ_DRIVER_H
#define IDT_FUZZ_DRIVER_H
#include <stddef.h>
#include <stdint.h>

/* libFuzzer's driver (compiler-rt, linked by -sanitize=fuzzer): parses the usual -flags and runs the
   callback on every input. Called from each target's main.swift because SwiftPM gives an executable
   its own entry point, so libFuzzer's main() is never the one that runs. */
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

#endif
