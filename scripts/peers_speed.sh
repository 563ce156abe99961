#!/usr/bin/env bash
# Energy + forces throughput of minima's PaiNN and SchNetPack's, side by side in one run, on the
# same QM9 molecules, one thread each (not run in CI). Both models are untrained and of the
# recommended size (64 features, 3 layers, 20 radial functions, cutoff 5 Å): speed does not
# depend on the weights. Rows, measured one after another, twice in turn:
#   minima bench model --batch 8, 64  (neighbour lists built inside the timing)
#   minima bench model --batch 1      (one molecule per call, in Rust)
#   minima.Calculator through ASE, one molecule per call (models/molecules.safetensors: ZBL too)
#   SchNetPack batched (8, 64; inputs and neighbour lists built beforehand) and one ASE call each
#   scripts/peers_speed.sh [EVERY]   (default 8: every 8th of QM9 molecules 1-10000 of ../shared)
#   scripts/peers_speed.sh FILE      (any extxyz of molecules, such as a split of the xtb scans)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/peers-env.sh
if [[ -f ${1:-} ]]; then
  data=$1
else
  every=${1:-8}
  data=out/peers_speed_every$every.extxyz
  mkdir -p out
  [[ -f $data ]] || target/release/minima convert --from qm9 ../shared/data/qm9/qm9_first10k.tar.bz2 \
    --every "$every" -o "$data"
fi
for round in 1 2; do
  echo "round $round"
  for batch in 8 64 1; do
    echo -n "minima PaiNN, batch $batch: "
    target/release/minima bench model --kinds painn --cutoff 5 --threads 1 --batch "$batch" --data "$data" | tail -n1
  done
  .venv/bin/python - "$data" <<'PY'
import sys, time
from ase.io import read
from minima import Calculator
frames = read(sys.argv[1], index=":")
calc = Calculator("models/molecules.safetensors", threads=1)
for atoms in frames[:5]:
    calc.get_forces(atoms)
start = time.perf_counter()
for atoms in frames[:300]:
    atoms = atoms.copy()
    atoms.calc = calc
    atoms.get_forces()
print(f"minima.Calculator through ASE, one per call: {300 / (time.perf_counter() - start):.0f} molecules/s")
PY
  echo -n "SchNetPack PaiNN: "
  .venv-peers/bin/python python/peers/painn_schnetpack.py --speed "$data"
done
