#!/bin/sh
# run.sh: runs each test binary given, echoes its output, and sums the lines
# "name: N passed, M failed" into the closing line "total: N passed, M failed".
# Exits 1 if any test failed or any binary crashed (non-zero exit without a summary).
passed=0; failed=0; status=0
for bin in "$@"; do
    out=$("./$bin" 2>&1); rc=$?
    printf '%s\n' "$out"
    line=$(printf '%s\n' "$out" | grep -E '^[a-z_0-9]+: [0-9]+ passed, [0-9]+ failed$' | tail -n 1)
    if [ -z "$line" ]; then
        echo "$bin: exited $rc without a summary line (crash?)"; failed=$((failed + 1)); status=1
        continue
    fi
    p=$(printf '%s' "$line" | sed -E 's/.*: ([0-9]+) passed.*/\1/')
    f=$(printf '%s' "$line" | sed -E 's/.* ([0-9]+) failed$/\1/')
    passed=$((passed + p)); failed=$((failed + f))
    [ "$rc" -ne 0 ] && status=1
done
echo "total: $passed passed, $failed failed"
[ "$failed" -eq 0 ] || status=1
exit $status
