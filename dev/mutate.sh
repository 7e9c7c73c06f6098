#!/bin/sh
# dev/mutate.sh: mutation testing of the formulas. Each mutant is one small, deliberate
# bug (a sign, t − 1 for t, a dropped √, 0.5 for 1, ...) put into a scratch COPY of the
# tree; the mutant is KILLED if some test fails, SURVIVED if the full suite passes.
# A surviving mutant is either equivalent (it cannot change behaviour), dead code, or a
# formula without a test that can fail. dev/MUTATION.md holds the results.
#
#   dev/mutate.sh                   every mutant of dev/mutants.txt
#   dev/mutate.sh M03 M17           only these
#   dev/mutate.sh -f FILE ...       another list
#   dev/mutate.sh -r ...            reuse the scratch tree and its build (skip the baseline)
#   dev/mutate.sh -n ...            dry run: show each mutant's diff, build and run nothing
#
# The scratch tree is $MUTATE_DIR (default /tmp/mutate.$USER): a copy of the tracked files
# of this working tree as they are now (uncommitted tests included), built once, and the
# full suite run once on it first (a mutant means nothing against a failing baseline).
# Then, one mutant at a time (the machine is shared: nice -n 10, make -j2, one test
# binary at a time): apply the sed command to the copy, rebuild (only the mutated file's
# objects are recompiled), run the test binaries -- first those the line names, then the
# rest cheapest first, test_notebooks last -- and stop at the first that fails; restore the
# file. Each binary has a time limit ($MUTATE_TIMEOUT s, default 300): a mutant that
# hangs a test counts as killed ("timeout"). A mutant that does not compile is
# "stillborn" and counts as neither.
#
# test_notebooks checks that quoted code is verbatim: every mutant of a quoted line
# breaks that check without any formula being tested, so its "snippet ... no longer
# matches" failures are ignored; any other failure of test_notebooks (a quoted output that
# changed) kills, and is reported as "test_notebooks(output)": a regression check against
# printed numbers, weaker than a test of the formula.
#
# The list (dev/mutants.txt): one mutant per line, fields separated by '|', '#' starts a
# comment line:
#     ID | FILE | ADDRESS | SED-COMMAND | FIRST TESTS | WHAT
# ADDRESS is a sed address: a line number or, better (lines move), /a regex/ matching the
# one line to mutate; SED-COMMAND is applied there (sed "ADDRESS SED-COMMAND"), normally
# s/old/new/ (no '|' anywhere in it). The script refuses a mutant that changes nothing.
# FIRST TESTS: test names without "test_" to run first (may be empty).
# Output: one line per mutant, "ID FILE:LINE killed by test_x (12 s)" or "SURVIVED",
# also appended to $MUTATE_DIR/results.txt; the diff of each mutant in $MUTATE_DIR/log.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
list=$here/dev/mutants.txt
reuse=0
dry=0
while [ $# -gt 0 ]; do
    case $1 in
        -f) list=$2; shift 2 ;;
        -r) reuse=1; shift ;;
        -n) dry=1; shift ;;
        -h|--help) sed -n '2,40p' "$0"; exit 0 ;;
        -*) echo "mutate.sh: unknown option $1 (see --help)"; exit 2 ;;
        *) break ;;
    esac
done
[ -f "$list" ] || { echo "mutate.sh: no list $list"; exit 2; }
dir=${MUTATE_DIR:-/tmp/mutate.${USER:-$(id -un)}}
tree=$dir/tree
tmo=${MUTATE_TIMEOUT:-300}
NICE="nice -n 10"

# every test binary `make test` runs, cheapest first (measured), test_notebooks last
FAST="schedule learned_var frechet fuzz_crashes cli crc32 eval nan mlp classifier ode
      derivations checkpoint bound matmul io plot gz data bad_inputs matmul_float tensor
      threads"
SLOW="kill guidance unet toy2d ddpm notebooks"

build() {
    ( cd "$tree" && $NICE make -j2 bins build/nb_cells $(ls tests/test_*.c |
        sed 's,^tests/,build/test/,; s,\.c$,,') build/test/test_matmul_float ) \
        < /dev/null > "$dir/build.log" 2>&1
}

# run_one NAME: 0 if the binary passes
run_one() {
    b=build/test/test_$1
    [ -x "$tree/$b" ] || return 0
    out=$(cd "$tree" && timeout "$tmo" $NICE "./$b" < /dev/null 2>&1); rc=$?
    if [ "$rc" -eq 124 ]; then why="timeout in test_$1"; return 1; fi
    if [ "$1" = notebooks ]; then
        # ignore "snippet no longer matches" (the quoted code is the mutated line itself)
        real_fail=$(printf '%s\n' "$out" | grep '^FAIL' | grep -v 'no longer matches')
        [ -z "$real_fail" ] && return 0
        why="test_notebooks(output)"; printf '%s\n' "$real_fail" | head -n 3 >> "$dir/log"
        return 1
    fi
    [ "$rc" -eq 0 ] && return 0
    why="test_$1"; printf '%s\n' "$out" | grep '^FAIL' | head -n 3 >> "$dir/log"
    return 1
}

# run_all FIRST...: sets why; 0 if every binary passes
run_all() {
    all=$(ls "$tree"/build/test/ | sed -n 's/^test_//p')
    order="$* $FAST"
    for t in $all; do
        case " $FAST $SLOW $* " in *" $t "*) ;; *) order="$order $t" ;; esac
    done
    order="$order $SLOW"
    seen=" "
    for t in $order; do
        case $seen in *" $t "*) continue ;; esac
        seen="$seen$t "
        run_one "$t" || return 1
    done
    return 0
}

if [ "$dry" -eq 1 ]; then
    grep -v '^[[:space:]]*#' "$list" | grep '|' | while IFS='|' read -r id file addr cmd first what; do
        addr=$(echo "$addr" | sed 's/^ *//; s/ *$//'); cmd=$(echo "$cmd" | sed 's/^ *//; s/ *$//')
        file=$(echo $file); echo "== $(echo $id) $file: $what"
        sed -e "$addr$cmd" "$here/$file" | diff "$here/$file" - || :
    done
    exit 0
fi
if [ "$reuse" -eq 0 ] || [ ! -d "$tree" ]; then
    rm -rf "$tree"; mkdir -p "$tree"
    (cd "$here" && git ls-files -z | xargs -0 tar -cf - ) | (cd "$tree" && tar -xf -)
    echo "mutate: baseline build in $tree"
    build || { echo "mutate: the baseline does not build (see $dir/build.log)"; exit 1; }
    why=""
    run_all || { echo "mutate: the baseline fails ($why): fix that first"; exit 1; }
    echo "mutate: baseline passes"
fi

ids=" $* "
grep -v '^[[:space:]]*#' "$list" | grep '|' | while IFS='|' read -r id file addr cmd first what; do
    id=$(echo $id); file=$(echo $file); addr=$(echo "$addr" | sed 's/^ *//; s/ *$//')
    cmd=$(echo "$cmd" | sed 's/^ *//; s/ *$//')
    [ "$ids" = "  " ] || case $ids in *" $id "*) ;; *) continue ;; esac
    f=$tree/$file
    [ -f "$f" ] || { echo "$id $file: no such file"; continue; }
    cp -p "$f" "$dir/orig"
    sed -e "$addr$cmd" "$dir/orig" > "$f"
    changed=$(diff "$dir/orig" "$f" | sed -n 's/^\([0-9,]*\)c.*/\1/p' | head -n 1)
    if [ -z "$changed" ]; then
        echo "$id $file: the mutation changes nothing (stale address or pattern?)" |
            tee -a "$dir/results.txt"
        cp -p "$dir/orig" "$f"; continue
    fi
    { echo "== $id $file:$changed  $what"; diff "$dir/orig" "$f"; } >> "$dir/log"
    start=$(date +%s)
    if ! build; then
        res="stillborn (does not compile)"
    else
        why=""
        if run_all $first; then res="SURVIVED"; else res="killed by $why"; fi
    fi
    cp "$dir/orig" "$f"; touch "$f"         # a new time: the next build recompiles it
    line="$id $file:$changed $res ($(($(date +%s) - start)) s)  $what"
    echo "$line" | tee -a "$dir/results.txt"
done
