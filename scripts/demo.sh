#!/usr/bin/env bash
# The main job on the shipped data: QM9 molecules 1–10000 to extxyz, a summary, perceived
# bonds, a small VIMPNN trained for a minute or two and evaluated, and the benchmarks.
# Results land in out/.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
minima=target/release/minima
mkdir -p out

echo "== convert QM9 (../shared/data/qm9) to extxyz"
$minima convert --from qm9 ../shared/data/qm9/qm9_first10k.tar.bz2 -o out/qm9.extxyz
echo "== what is in it"
$minima info out/qm9.extxyz
echo "== bonds of the first molecules (single, double, triple, aromatic)"
$minima bonds -i out/qm9.extxyz | head -n 6
$minima bonds -i out/qm9.extxyz --json >out/qm9_bonds.jsonl
echo "   all 9727 molecules: out/qm9_bonds.jsonl"
echo "== neighbour lists of fcc Cu at 5 Å, one core"
$minima bench neighbors --atoms 10000,100000
echo "== train a small VIMPNN on QM9 1-2000 (U0), 15 epochs; then evaluate it on its test split"
rm -rf out/vimpnn
$minima train --config configs/qm9-vimpnn.toml --set data.limit=2000 --set train.max_epochs=15 \
  --set train.learning_rate=1e-3 --set train.output='"out/vimpnn"'
$minima eval --model out/vimpnn/best.safetensors --data out/vimpnn/test.extxyz --json out/vimpnn/eval.json
$minima predict --model out/vimpnn/best.safetensors -i out/vimpnn/test.extxyz -o out/vimpnn/predicted.extxyz
echo "   learning curve: out/vimpnn/learning_curve.csv; predictions with forces and per-atom energies: out/vimpnn/predicted.extxyz"
echo "== model speed: energy+forces molecules/s and training-step time"
$minima bench model --molecules 640
