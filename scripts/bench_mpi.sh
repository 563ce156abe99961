#!/usr/bin/env bash
# Data-parallel scaling on this machine: the recommended molecular potential
# (configs/molecules.toml, PaiNN 64×3 + ZBL, energies and forces, global batch 20) trained for
# EPOCHS epochs on the first FRAMES frames of the shipped scans, with one process and with
# `mpirun -np 2` (one thread per rank), from the same start. Prints seconds per epoch and the
# speed-up. Needs the MPI build (scripts/setup.sh --mpi). Not part of the tests.
#   scripts/bench_mpi.sh [FRAMES] [EPOCHS]     (defaults 2000 and 2)
set -euo pipefail
cd "$(dirname "$0")/.."
frames=${1:-2000}
epochs=${2:-2}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
minima=target/release/minima
common=(--config configs/molecules.toml --set "data.file=[\"data/qm9_xtb.extxyz.bz2\"]" --set "data.limit=$frames"
  --set "train.max_epochs=$epochs" --set train.threads=1 --set train.max_minutes=1000)
"$minima" train "${common[@]}" --set "train.output=\"$work/one\"" >/dev/null 2>&1
mpirun --allow-run-as-root --oversubscribe -np 2 "$minima" train "${common[@]}" --set "train.output=\"$work/two\"" >/dev/null 2>&1
per_epoch() { awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "seconds") c = i } NR > 1 { s += $c; n++ } END { printf "%.2f", s / n }' "$1/learning_curve.csv"; }
one=$(per_epoch "$work/one")
two=$(per_epoch "$work/two")
echo "frames $frames (90 % training), global batch 20, $epochs epochs"
echo "1 process:  $one s per epoch"
echo "2 ranks:    $two s per epoch"
awk -v a="$one" -v b="$two" 'BEGIN { printf "speed-up:   %.2f× (efficiency %.0f %%)\n", a / b, 50 * a / b }'
