#!/usr/bin/env bash
# Builds the libFuzzer binaries and runs them (Fuzz/README.md).
#
#   bash Fuzz/run.sh [SECONDS] [TARGET...]   fuzz each target (default: all) for SECONDS (default 60), one
#                                            after the other, from the committed seeds and the coverage
#                                            corpus .build-fuzz/corpus/<target>, where new inputs go
#   bash Fuzz/run.sh replay [TARGET...]      run the seeds, the regressions and the coverage corpus once
#                                            through the fuzz binaries
#   bash Fuzz/run.sh merge [TARGET...]       shrink the coverage corpus to the fewest inputs that keep
#                                            every feature (libFuzzer -set_cover_merge=1)
#
# Only the seeds (Fuzz/Corpus/<target>/seed-*) and the crash reproducers (Fuzz/Regressions) are
# committed; the coverage corpus is rebuilt by fuzzing (Fuzz/README.md, "Corpora and regressions").
#   bash Fuzz/run.sh build                   only build
#
# Environment: FUZZ_JOBS (parallel fuzzing jobs per target, default 1), FUZZ_ARGS (more libFuzzer
# flags), FUZZ_LOCK (a file to flock around the build, for machines where builds must not overlap),
# FUZZ_NO_BUILD=1 (use the binaries as they are), SWIFT (default swift).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SWIFT="${SWIFT:-swift}"
SCRATCH="$ROOT/.build-fuzz"
BIN="$SCRATCH/release"
ALL_TARGETS=(jws claims jwks discovery form cookie session state logout)

build() {
    [[ -n "${FUZZ_NO_BUILD:-}" ]] && return
    # lld: gold (the default linker) fails on these binaries with an internal error.
    local cmd=("$SWIFT" build -c release --package-path Fuzz --scratch-path "$SCRATCH"
               --toolset Fuzz/lld-toolset.json -Xswiftc -sanitize=fuzzer,address)
    local start=$SECONDS
    # SwiftPM does not notice a source file added to or removed from a path dependency (the main
    # package): without its saved build plan it plans afresh, which takes a few seconds.
    rm -f "$SCRATCH/release.yaml"
    if [[ -n "${FUZZ_LOCK:-}" ]]; then flock "$FUZZ_LOCK" "${cmd[@]}"; else "${cmd[@]}"; fi
    echo "fuzz build: $((SECONDS - start)) s"
}

targets() {
    if [[ $# -eq 0 ]]; then printf '%s\n' "${ALL_TARGETS[@]}"; return; fi
    for t in "$@"; do
        [[ " ${ALL_TARGETS[*]} " == *" $t "* ]] || { echo "unknown fuzz target '$t' (known: ${ALL_TARGETS[*]})" >&2; exit 2; }
        echo "$t"
    done
}

# libFuzzer checks every input for leaks. The check at exit is off: it reports the same ~1 KB in 10
# allocations whether 300 or 3000 inputs ran, objects that live as long as the process (the provider's
# parsed keys, whose references sit in Swift enums with tag bits LeakSanitizer cannot see through).
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:leak_check_at_exit=0}"
# Swift's own crash handler would run inside ASan and bury the trap under a report about itself: off,
# so a trap shows as libFuzzer's "deadly signal" with the Swift stack.
export SWIFT_BACKTRACE="${SWIFT_BACKTRACE:-enable=no}"

common_flags() {
    local t=$1
    mkdir -p "$SCRATCH/artifacts/$t"
    local flags=(-timeout=5 -print_final_stats=1 -artifact_prefix="$SCRATCH/artifacts/$t/")
    [[ -f "$ROOT/Fuzz/Dictionaries/$t.dict" ]] && flags+=(-dict="$ROOT/Fuzz/Dictionaries/$t.dict")
    printf '%s\n' "${flags[@]}"
}

summary_line() {
    local t=$1 log=$2
    local units rate cov ft
    units=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | tail -1 | awk '{print $2}')
    rate=$(grep -oE 'stat::average_exec_per_sec: *[0-9]+' "$log" | tail -1 | awk '{print $2}')
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | awk '{print $2}')
    ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | awk '{print $2}')
    printf '%-10s %12s %8s %7s %7s\n' "$t" "${units:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}"
}

mode="${1:-60}"
case "$mode" in
build)
    build
    ;;
replay)
    shift
    build
    status=0
    for t in $(targets "$@"); do
        mapfile -t flags < <(common_flags "$t")
        dirs=("Fuzz/Corpus/$t")
        [[ -d "Fuzz/Regressions/$t" ]] && dirs+=("Fuzz/Regressions/$t")
        [[ -d "$SCRATCH/corpus/$t" ]] && dirs+=("$SCRATCH/corpus/$t")
        echo "== replay $t: $(find "${dirs[@]}" -type f | wc -l) files"
        "$BIN/fuzz-$t" "${flags[@]}" -runs=0 "${dirs[@]}" 2>&1 | grep -E 'INITED|DONE|ERROR|SUMMARY|panic|Fatal' || status=1
    done
    exit $status
    ;;
merge)
    shift
    build
    for t in $(targets "$@"); do
        [[ -d "$SCRATCH/corpus/$t" ]] || continue
        mkdir -p "$SCRATCH/logs"
        before=$(ls "$SCRATCH/corpus/$t" | wc -l)
        mapfile -t flags < <(common_flags "$t")
        # The fewest found inputs that, with the seeds, keep every feature (libFuzzer -set_cover_merge).
        out="$SCRATCH/merge/$t"
        rm -rf "$out" && mkdir -p "$out"
        "$BIN/fuzz-$t" "${flags[@]}" -set_cover_merge=1 "$out" "Fuzz/Corpus/$t" "$SCRATCH/corpus/$t" \
            >"$SCRATCH/logs/$t.merge.log" 2>&1
        rm -rf "$SCRATCH/corpus/$t" && mv "$out" "$SCRATCH/corpus/$t"
        echo "== merge $t: $before -> $(ls "$SCRATCH/corpus/$t" | wc -l) files, $(cat "$SCRATCH/corpus/$t"/* 2>/dev/null | wc -c) bytes"
    done
    ;;
*)
    [[ "$mode" =~ ^[0-9]+$ ]] || { sed -n '2,14p' "$0"; exit 2; }
    shift
    build
    mkdir -p "$SCRATCH/logs"
    status=0
    results=()
    for t in $(targets "$@"); do
        mkdir -p "$SCRATCH/corpus/$t" "$SCRATCH/artifacts/$t"
        mapfile -t flags < <(common_flags "$t")
        log="$SCRATCH/logs/$t.log"
        echo "== fuzz $t for $mode s (log: $log)"
        jobs=()
        # With -jobs, libFuzzer runs workers whose output goes to fuzz-<n>.log in the current folder.
        [[ "${FUZZ_JOBS:-1}" -gt 1 ]] && jobs=(-jobs="$FUZZ_JOBS" -workers="$FUZZ_JOBS")
        # The first folder receives what the run finds; the committed seeds are only read.
        # shellcheck disable=SC2086
        if ! (cd "$SCRATCH/logs" && "$BIN/fuzz-$t" "${flags[@]}" -max_total_time="$mode" "${jobs[@]}" ${FUZZ_ARGS:-} \
                "$SCRATCH/corpus/$t" "$ROOT/Fuzz/Corpus/$t" >"$log" 2>&1); then
            status=1
            echo "!! $t failed: see $log and $SCRATCH/artifacts/$t/"
            grep -E 'ERROR|SUMMARY|Fatal error|artifact_prefix|Test unit written' "$log" | head -20 || true
        fi
        results+=("$(summary_line "$t" "$log")")
    done
    printf '\n%-10s %12s %8s %7s %7s\n' target executions exec/s cov ft
    printf '%s\n' "${results[@]}"
    exit $status
    ;;
esac
