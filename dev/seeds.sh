#!/bin/sh
# dev/seeds.sh: one ./toy2d configuration over several seeds, mean ± spread.
#
#   sh dev/seeds.sh "OPTIONS" SEED...      e.g.  sh dev/seeds.sh "--oracle --var beta" 1 2 3 4 5
#
# Runs `./toy2d OPTIONS --seed S --out out/seeds/...` for each seed (build ./toy2d first
# with `make`) and prints, per seed and then as mean ± sample standard deviation over the
# seeds: the energy-distance ratio (samples vs fresh true points, over the noise floor)
# and the gap of the variational bound above the true NLL (nats per point). A claim that
# compares two configurations quotes two such lines, never two single runs.
[ $# -ge 3 ] || { echo "usage: sh dev/seeds.sh \"OPTIONS\" SEED SEED..." >&2; exit 2; }
[ -x ./toy2d ] || { echo "error: no ./toy2d here: run make first, from the repo root" >&2; exit 2; }
opts=$1
shift
mkdir -p out/seeds
for seed in "$@"; do
    ./toy2d $opts --seed "$seed" --out "out/seeds/$$-$seed" > "out/seeds/$$-$seed.txt" 2>&1 || {
        echo "error: ./toy2d $opts --seed $seed failed:" >&2; cat "out/seeds/$$-$seed.txt" >&2; exit 1; }
    ratio=$(sed -n 's/.*ratio \([0-9.]*\) (means.*/\1/p' "out/seeds/$$-$seed.txt")
    gap=$(sed -n 's/.*gap \([0-9.-]*\) nats.*/\1/p' "out/seeds/$$-$seed.txt")
    rm -rf "out/seeds/$$-$seed.txt" "out/seeds/$$-$seed"
    echo "$seed $ratio $gap"
done | awk -v opts="$opts" '
    { n++; r[n] = $2; g[n] = $3; sr += $2; sg += $3; line = line sprintf(" %s", $2) }
    END {
        mr = sr / n; mg = sg / n
        for (i = 1; i <= n; i++) { vr += (r[i] - mr) ^ 2; vg += (g[i] - mg) ^ 2 }
        printf "./toy2d %s, %d seeds\n", opts, n
        printf "  ratio per seed:%s\n", line
        printf "  ratio %.2f +- %.2f, bound gap %.3f +- %.3f nats (mean +- std over seeds)\n",
               mr, sqrt(vr / (n - 1)), mg, sqrt(vg / (n - 1))
    }'
