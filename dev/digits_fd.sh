#!/bin/sh
# dev/digits_fd.sh: the built-in digits' FD at several training lengths and seeds, all
# measured with one classifier on the same held-out digits (README, "FID in miniature").
#
#   sh dev/digits_fd.sh "STEPS..." "SEEDS..."     e.g.  sh dev/digits_fd.sh "1500 3000" "1 2 3"
#
# For each length and seed: `./images --steps N --seed S --save ...` (the make images
# model), then `--sample-only ... --eval 256 --seed 1`, so every model is judged on the same
# held-out digits and floor. The classifier is trained once, by the first measurement,
# into out/digits_fd/classifier.ckpt, and reused (delete it to train a new one; the
# README's rows used the classifier of the first run, 500 steps, seed 1). Prints
# one line per run and mean ± sample standard deviation per length. Two runs at a time on
# two cores: about 2 minutes of CPU per 1,000 training steps, plus 35 s per measurement.
[ $# -eq 2 ] || { echo "usage: sh dev/digits_fd.sh \"STEPS...\" \"SEEDS...\"" >&2; exit 2; }
[ -x ./images ] || { echo "error: no ./images here: run make first, from the repo root" >&2; exit 2; }
dir=out/digits_fd
cls=$dir/classifier.ckpt
mkdir -p $dir
run() {   # steps seed: train, then measure (the first measurement makes the classifier)
    d=$dir/s$1_seed$2
    ./images --steps $1 --seed $2 --save $d/model.ckpt --out $d > $d.train.txt 2>&1 || {
        echo "error: ./images --steps $1 --seed $2 failed: see $d.train.txt" >&2; return 1; }
    use=; [ -f $cls ] && use="--classifier $cls"
    ./images --sample-only $d/model.ckpt --eval 256 --seed 1 $use --out $d/eval > $d.eval.txt 2>&1 || {
        echo "error: measuring $d failed: see $d.eval.txt" >&2; return 1; }
}
done0=
if [ ! -f $cls ]; then   # the first measurement alone: it trains the classifier
    n0=$(echo $1 | cut -d' ' -f1); s0=$(echo $2 | cut -d' ' -f1)
    run $n0 $s0 && cp $dir/s${n0}_seed$s0/eval/classifier.ckpt $cls || exit 1
    done0="$n0 $s0"
fi
for n in $1; do
    for s in $2; do
        [ "$n $s" = "$done0" ] && continue
        while [ "$(jobs -p | wc -l)" -ge 2 ]; do sleep 1; done
        run $n $s &
    done
done
wait
for n in $1; do
    for s in $2; do
        sed -n "s/^eval: FD \([0-9.]*\) .* floor [^)]*) \([0-9.]*\); ratio \([0-9.]*\)/steps $n seed $s: FD \1, floor \2, ratio \3/p" \
            $dir/s${n}_seed$s.eval.txt
    done
    for s in $2; do sed -n 's/^eval: FD \([0-9.]*\) .*/\1/p' $dir/s${n}_seed$s.eval.txt; done |
        awk -v n=$n '{ x[NR] = $1; m += $1 } END { m /= NR; for (i = 1; i <= NR; i++) v += (x[i] - m) ^ 2;
            printf "steps %s: FD %.1f +- %.1f over %d seeds\n", n, m, (NR > 1 ? sqrt(v / (NR - 1)) : 0), NR }'
done
