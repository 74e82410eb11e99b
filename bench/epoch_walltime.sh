#!/usr/bin/env bash
# Whole-epoch wall time and peak memory of two mapgate binaries, alternating (issue 11,
# items 4 and 5): each round trains one dense DenseNet-22 epoch on all of CIFAR-10 with
# each binary (training, the per-epoch test pass, the checkpoint), then evaluates the run
# it made with `mapgate eval` (default flags: what a user gets), the order swapped every
# round. Prints one line per measurement and the medians.
#
#   MAPGATE_DATA=../shared/data/cifar-10-batches-bin \
#     bench/epoch_walltime.sh OLD_BINARY NEW_BINARY [ROUNDS=2] [OUT=runs/epoch-walltime]
#
# Pause other work on the machine while it runs: the figures are wall times.
# TRAIN_ARGS / EVAL_ARGS (environment) append flags, e.g. "--train-limit 256 --test-limit 256"
# and "--test-limit 256" for a quick rehearsal.
set -euo pipefail

if [[ $# -lt 2 ]]; then
  echo "usage: $0 OLD_BINARY NEW_BINARY [ROUNDS] [OUT_DIR]" >&2
  exit 2
fi
old=$1 new=$2 rounds=${3:-2} out=${4:-runs/epoch-walltime}
for b in "$old" "$new"; do
  [[ -x $b ]] || { echo "$0: $b: not an executable binary" >&2; exit 2; }
done
[[ -n ${MAPGATE_DATA:-} ]] || { echo "$0: MAPGATE_DATA must name the CIFAR-10 directory" >&2; exit 2; }
mkdir -p "$out"
log=$out/times.tsv
: > "$log"

# measure NAME WHAT COMMAND...: appends "name what wall_s max_rss_mib sys_s" to the log.
measure() {
  local name=$1 what=$2
  shift 2
  local t
  t=$(mktemp)
  /usr/bin/time -f '%e %M %S' -o "$t" "$@" > "$out/$name-$what.log" 2>&1
  read -r wall rss_kb sys < "$t"
  rm -f "$t"
  printf '%s\t%s\t%s\t%d\t%s\n' "$name" "$what" "$wall" $((rss_kb / 1024)) "$sys" | tee -a "$log"
}

run_one() {
  local name=$1 binary=$2 round=$3
  local dir=$out/$name-r$round
  rm -rf "$dir"
  measure "$name" epoch "$binary" train --dataset cifar10 --depth 22 --growth 12 --epochs 1 \
    --threads 2 --seed 1 --out "$dir" ${TRAIN_ARGS:-}
  measure "$name" eval "$binary" eval --model "$dir" ${EVAL_ARGS:-}
}

printf 'binary\twhat\twall_s\tmax_rss_mib\tsys_s\n'
for ((r = 1; r <= rounds; r++)); do
  if ((r % 2)); then
    run_one old "$old" "$r"
    run_one new "$new" "$r"
  else
    run_one new "$new" "$r"
    run_one old "$old" "$r"
  fi
done

python3 - "$log" <<'PY'
import statistics, sys
rows = [line.split("\t") for line in open(sys.argv[1]) if line.strip()]
print("medians: wall s, max RSS MiB, system s")
for name in ("old", "new"):
    for what in ("epoch", "eval"):
        r = [x for x in rows if x[0] == name and x[1] == what]
        if r:
            med = [statistics.median(float(x[k]) for x in r) for k in (2, 3, 4)]
            print(f"  {name} {what}: {med[0]:.1f} s, {med[1]:.0f} MiB, {med[2]:.1f} s ({len(r)} runs)")
PY
