"""EMT speed, minima (Rust) against ASE (Python), on the same 1,000-atom periodic Cu cell.

    .venv/bin/python python/bench_emt_vs_ase.py [--cells 5,5,10]

Runs `minima bench emt`, which times minima on 1 and 2 threads and writes the cell it used,
then times ASE's EMT (energy and forces, the neighbour list rebuilt each call as in a fresh
calculation) on it.
"""
import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

from ase.calculators.emt import EMT
from ase.io import read

ROOT = Path(__file__).resolve().parents[1]

parser = argparse.ArgumentParser()
parser.add_argument("--cells", default="5,5,10")
parser.add_argument("--repeat", type=int, default=3)
parser.add_argument("--minima", default=str(ROOT / "target" / "release" / "minima"))
args = parser.parse_args()

with tempfile.TemporaryDirectory() as folder:
    cell = Path(folder) / "cell.extxyz"
    out = subprocess.run(
        [args.minima, "bench", "emt", "--cells", args.cells, "--write", str(cell)],
        check=True, capture_output=True, text=True,
    ).stdout
    ours = json.loads(out.strip().splitlines()[-1])
    atoms = read(cell)

times = []
for _ in range(args.repeat):
    atoms.calc = EMT()
    start = time.perf_counter()
    energy = atoms.get_potential_energy()
    atoms.get_forces()
    times.append(time.perf_counter() - start)
ase_best = min(times)
print(f"{len(atoms)} atoms, ASE (one thread) {ase_best * 1e3:.1f} ms")
for run in ours["runs"]:
    print(f"  minima, {run['threads']} thread(s): {run['best_s'] * 1e3:.2f} ms, "
          f"{ase_best / run['best_s']:.0f}x faster; |ΔE| = {abs(energy - run['energy']):.1e} eV")
