"""The Python calculator's cost per call against `minima predict --batch 1` per structure, on
the same held-out QM9 molecules, one libtorch thread, energy and forces.

    .venv/bin/python python/bench_calculator.py [--model models/molecules.safetensors] [--molecules 500]

`minima predict` is timed on all the molecules and on one, and the difference divided by the
molecules in between, so its start-up and model loading are left out; the calculator is timed
over one ASE call per molecule (`get_forces` after `reset`, which also computes the energy),
its loading left out too.
"""
import argparse
import subprocess
import tempfile
import time
from pathlib import Path

from ase.io import read, write

from minima import Calculator

ROOT = Path(__file__).resolve().parents[1]
QM9 = ROOT.parent / "shared" / "data" / "qm9" / "qm9_first10k.tar.bz2"

parser = argparse.ArgumentParser()
parser.add_argument("--model", default=str(ROOT / "models" / "molecules.safetensors"))
parser.add_argument("--molecules", type=int, default=500)
parser.add_argument("--minima", default=str(ROOT / "target" / "release" / "minima"))
args = parser.parse_args()


def minima(*words):
    subprocess.run([args.minima, *map(str, words)], check=True, capture_output=True)


def predict_seconds(frames, folder):
    path = folder / f"in{len(frames)}.extxyz"
    write(path, frames, format="extxyz")
    start = time.perf_counter()
    minima("predict", "--model", args.model, "--batch", 1, "--threads", 1, "-i", path, "-o", folder / "out.extxyz")
    return time.perf_counter() - start


with tempfile.TemporaryDirectory() as name:
    folder = Path(name)
    held_out = folder / "held_out.extxyz"
    minima("convert", "--from", "qm9", QM9, "--after", 9000, "--first", 9000 + args.molecules, "-o", held_out)
    frames = read(held_out, index=":")
    predict = (predict_seconds(frames, folder) - predict_seconds(frames[:1], folder)) / (len(frames) - 1)

    calc = Calculator(args.model, threads=1)
    for atoms in frames[:5]:  # warm-up
        calc.get_forces(atoms)
    start = time.perf_counter()
    for atoms in frames:
        atoms = atoms.copy()
        atoms.calc = calc
        calc.reset()
        atoms.get_forces()
    python = (time.perf_counter() - start) / len(frames)

atoms_per = sum(len(a) for a in frames) / len(frames)
print(f"{len(frames)} QM9 molecules 9001+ (mean {atoms_per:.1f} atoms), energy + forces, 1 thread")
print(f"minima predict --batch 1: {predict * 1e3:.3f} ms per structure ({1 / predict:.0f} molecules/s)")
print(f"minima.Calculator (ASE):  {python * 1e3:.3f} ms per call ({1 / python:.0f} molecules/s)")
print(f"ratio: {python / predict:.2f} (target ≤ 1.5)")
