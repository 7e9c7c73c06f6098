#!/bin/sh
# smoke.sh: `make fuzz-smoke`. Builds every fuzz target with clang's libFuzzer and runs
# each for FUZZ_SECONDS (default 5) on its seed corpus, so that CI keeps them compiling
# and alive. Skips, with a line saying why and exit 0, where clang or libFuzzer is missing
# (CI promises only gcc and make). A crash or a sanitizer report fails (exit 1).
set -u
cd "$(dirname "$0")/../.."
FUZZ_CC=${FUZZ_CC:-clang}
seconds=${FUZZ_SECONDS:-5}
probe=build/fuzz/probe
mkdir -p build/fuzz
printf '#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' > $probe.c
if ! command -v "$FUZZ_CC" >/dev/null 2>&1; then
    echo "fuzz-smoke: skipped: $FUZZ_CC not found (the fuzz targets need clang with libFuzzer)"
    exit 0
fi
if ! "$FUZZ_CC" -fsanitize=fuzzer,address,undefined $probe.c -o $probe >/dev/null 2>&1; then
    echo "fuzz-smoke: skipped: $FUZZ_CC cannot link -fsanitize=fuzzer (libFuzzer missing)"
    exit 0
fi
make --no-print-directory fuzz FUZZ_CC="$FUZZ_CC" >/dev/null || { echo "fuzz-smoke: make fuzz failed"; exit 1; }
status=0
for target in build/fuzz/fuzz_*; do
    [ -x "$target" ] || continue
    name=${target#build/fuzz/fuzz_}
    corpus=build/fuzz/corpus/$name
    mkdir -p "$corpus"
    cp build/fuzz/seeds/$name/* "$corpus"/ 2>/dev/null
    # -close_fd_mask=2 silences the loaders' one-line refusals (and a crash report: on a
    # failure the saved input is rerun below with stderr, to show it)
    if "$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=1024 -close_fd_mask=2 \
           -artifact_prefix=build/fuzz/$name- "$corpus" > build/fuzz/$name.log 2>&1; then
        runs=$(grep -E '^Done [0-9]+ runs' build/fuzz/$name.log | sed -E 's/Done ([0-9]+) runs.*/\1/')
        echo "fuzz-smoke: $name: ${runs:-?} executions in ${seconds} s, no crash"
    else
        echo "fuzz-smoke: $name: FAILED (see build/fuzz/$name.log)"; tail -n 5 build/fuzz/$name.log
        for crash in build/fuzz/$name-*; do
            [ -f "$crash" ] && "$target" "$crash" 2>&1 | tail -n 30
        done
        status=1
    fi
done
exit $status
