#!/usr/bin/env bash
# The main job on the shipped data: QM9 molecules 1–10000 to extxyz, a summary, perceived
# bonds; datasets generated and labelled (EMT); a small VIMPNN trained for a few minutes on
# the shipped out-of-equilibrium QM9 scans (xtb), evaluated, its energy curve of a held-out
# molecule drawn against xtb's with both minima marked, the molecule relaxed; the same for an
# fcc Cu crystal against EMT; the recommended molecular potential (a shipped checkpoint of
# configs/molecules.toml) relaxing held-out molecules against xtb's minima; the benchmarks.
# Results land in out/.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh --xtb
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
echo "== datasets: crystal growth (the paper's Stable subset, 4,000 clusters), labelled with EMT"
$minima data growth -o out/growth.extxyz
$minima data growth --seeds 1 --max-size 30 -o out/growth_small.extxyz
$minima label --calc emt -i out/growth_small.extxyz -o out/growth_small_emt.extxyz --jobs 2
$minima data split -i out/growth.extxyz --out-dir out/growth_split
echo "== train a small VIMPNN on the shipped QM9 scans (1,000 molecules x 10 scales, xtb energies and forces), 12 epochs"
rm -rf out/vimpnn
$minima train --config configs/qm9xtb-vimpnn.toml --set train.max_epochs=12 \
  --set train.learning_rate=1e-3 --set train.loss.forces=1.0 --set train.output='"out/vimpnn"'
$minima eval --model out/vimpnn/best.safetensors --data out/vimpnn/test.extxyz --json out/vimpnn/eval.json --by-size
$minima predict --model out/vimpnn/best.safetensors -i out/vimpnn/test.extxyz -o out/vimpnn/predicted.extxyz
echo "   learning curve: out/vimpnn/learning_curve.csv; predictions with forces and per-atom energies: out/vimpnn/predicted.extxyz"
echo "== energy curve of a held-out molecule (ethanol, test frame 10): the model and xtb, both minima marked"
$minima curve --model out/vimpnn/best.safetensors --reference xtb -i out/vimpnn/test.extxyz --frame 10 -o out/curve_molecule
echo "== relax that ethanol from its compressed (scale 0.90) and stretched (1.50) geometries: the model, then xtb"
for frame in 10 19; do
  $minima relax --model out/vimpnn/best.safetensors -i out/vimpnn/test.extxyz --frame $frame \
    -o out/relaxed_model_$frame.extxyz --fmax 0.01 --trajectory out/relax_trajectory_$frame.extxyz
  $minima relax --reference xtb -i out/vimpnn/test.extxyz --frame $frame -o out/relaxed_xtb_$frame.extxyz --fmax 0.01
done
echo "== the recommended molecular potential (PaiNN + ZBL; models/molecules.safetensors, made by configs/molecules.toml):"
echo "   5 held-out QM9 molecules (index > 9000) relaxed from rattled, compressed and stretched starts, against xtb's minima"
$minima convert --from qm9 ../shared/data/qm9/qm9_first10k.tar.bz2 --after 9000 -o out/held_out.extxyz
# A molecule whose xtb minimum cannot be found is listed in out/bench_minima.failed; the others are reported.
$minima bench-minima --model models/molecules.safetensors --reference xtb -i out/held_out.extxyz \
  --molecules 5 --steps 2000 -o out/bench_minima || echo "   (see out/bench_minima.failed)"
echo "== fcc Cu: VIMPNN on 40 scales per crystal (EMT), its energy curve against EMT's"
$minima data split -i data/fcc_emt.extxyz.bz2 --train-points 40 --out-dir out/fcc_split
rm -rf out/fcc-vimpnn
$minima train --config configs/fcc-vimpnn.toml
$minima curve --model out/fcc-vimpnn/best.safetensors --reference emt -i out/fcc_split/test.extxyz --frame 96 -o out/curve_cu
echo "   figures: out/curve_molecule.png, out/curve_cu.png, out/vimpnn/eval_by_size.png (SVG beside each)"
echo "== EMT speed (ASE comparison: .venv/bin/python python/bench_emt_vs_ase.py)"
$minima bench emt
echo "== model speed: energy+forces molecules/s and training-step time"
$minima bench model --data ../shared/data/qm9/qm9_first10k.tar.bz2 --molecules 640
