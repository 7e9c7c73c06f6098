#!/bin/sh
# cell.sh NAME: builds notebooks_md/cells.c with the library (real = double; -O0 because
# it compiles fastest and, without fast-math or contraction, computes the same bits) and
# runs one cell: schedules, markov, posterior, weights or kl. The binary is private to this
# run, so parallel runs do not collide.
set -e
mkdir -p build out/nb
bin=build/nb_cells.$$
cc -std=c11 -O0 -ffp-contract=off -Wall -Wextra -Wpedantic -DDDPM_DOUBLE \
   -o "$bin" notebooks_md/cells.c schedule.c ddpm.c tensor.c plot.c -lm
status=0
"./$bin" "$@" || status=$?
rm -f "$bin"
exit $status
