"""Where a model's minimum lies off the reference's, and along which modes (not run in CI).

For every reference minimum (e.g. the `.minima.extxyz` of a `minima bench-minima --reference
xtb` run) it relaxes the model from that minimum itself (ASE's FIRE to --fmax), reports the
mean displacement after Kabsch superposition (all atoms, hydrogens, heavy atoms) and the
model's energy change, and projects the displacement the model's forces ask for to first order,
H⁻¹F with xtb's GFN2 Hessian at the minimum (`xtb --hess`, cached in --hessians), on the modes
softer than --soft eV/Å².

    .venv/bin/python python/minimum_offset.py --model models/molecules.safetensors \
        --minima out/xtb.minima.extxyz
"""
import argparse
import os
import subprocess

import numpy as np
from ase.io import read, write
from ase.optimize import FIRE

from minima import Calculator

HARTREE, BOHR = 27.211386245988, 0.529177210903


def superposed_displacements(moved, target):
    a, b = moved - moved.mean(0), target - target.mean(0)
    u, _, vt = np.linalg.svd(a.T @ b)
    rotation = u @ np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))]) @ vt
    return np.linalg.norm(a @ rotation - b, axis=1)


def hessian(atoms, folder):
    """xtb's GFN2 Hessian in eV/Å², (3N, 3N)."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "hessian")
    if not os.path.exists(path):
        write(os.path.join(folder, "minimum.xyz"), atoms)
        subprocess.run(["xtb", "minimum.xyz", "--hess", "--gfn", "2"], cwd=folder, capture_output=True, check=True)
    n = 3 * len(atoms)
    return np.array(open(path).read().split()[1:], float).reshape(n, n) * HARTREE / BOHR**2


parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--model", required=True)
parser.add_argument("--minima", required=True)
parser.add_argument("--hessians", default="out/hessians")
parser.add_argument("--fmax", type=float, default=0.01)
parser.add_argument("--soft", type=float, default=1.0)
args = parser.parse_args()

calc = Calculator(args.model, threads=1)
rows = []
print("frame atoms  |F| eV/Å  ΔP Å (all, H, heavy)   ΔE eV  soft share of H⁻¹F")
for i, minimum in enumerate(read(args.minima, index=":")):
    atoms = minimum.copy()
    atoms.calc = calc
    forces, start = atoms.get_forces().ravel(), atoms.get_potential_energy()
    w, modes = np.linalg.eigh(hessian(minimum, os.path.join(args.hessians, str(i))))
    vibrations = w > 1e-2  # translations and rotations have none
    along = (modes[:, vibrations].T @ forces) / w[vibrations]
    soft = (along[w[vibrations] < args.soft] ** 2).sum() / (along**2).sum()
    FIRE(atoms, logfile=None).run(fmax=args.fmax, steps=2000)
    d = superposed_displacements(atoms.positions, minimum.positions)
    hydrogen = minimum.numbers == 1
    row = (np.abs(forces).mean(), d.mean(), d[hydrogen].mean(), d[~hydrogen].mean(), atoms.get_potential_energy() - start, soft)
    rows.append(row)
    print(f"{i:5d} {len(minimum):5d}  {row[0]:.3f}     {row[1]:.3f} {row[2]:.3f} {row[3]:.3f}      {row[4]:+.3f}  {row[5]:.3f}")
median = np.median(np.array(rows), axis=0)
print(f"median       {median[0]:.3f}     {median[1]:.3f} {median[2]:.3f} {median[3]:.3f}      {median[4]:+.3f}  {median[5]:.3f}")
