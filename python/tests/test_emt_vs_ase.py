"""minima's Rust EMT equals ASE's EMT: energies to 1e-6 eV, forces to 1e-5 eV/Å, stress too,
on random clusters and distorted periodic cells of every EMT metal, pure and mixed."""
import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.io import read, write

METALS = ["Al", "Cu", "Ag", "Au", "Ni", "Pd", "Pt"]


def random_cluster(rng, symbols, n):
    """n atoms in a ball, no two closer than 2.0 Å (EMT's repulsion is finite but steep)."""
    positions = []
    while len(positions) < n:
        trial = rng.uniform(-1, 1, 3) * (1.6 * n ** (1 / 3) + 1.0)
        if all(np.linalg.norm(trial - p) > 2.0 for p in positions):
            positions.append(trial)
    return Atoms(rng.choice(symbols, n), positions=positions)


def distorted_crystal(rng, symbols, repeat, strain):
    crystal = bulk("Cu", "fcc", a=3.9, cubic=True).repeat(repeat)
    crystal.set_chemical_symbols(rng.choice(symbols, len(crystal)))
    deformation = np.eye(3) + rng.uniform(-strain, strain, (3, 3))
    crystal.set_cell(crystal.cell @ deformation, scale_atoms=True)
    crystal.rattle(0.1, seed=int(rng.integers(1 << 30)))
    return crystal


def structures():
    rng = np.random.default_rng(42)
    frames = []
    for metal in METALS:
        frames.append(random_cluster(rng, [metal], 13))
        frames.append(distorted_crystal(rng, [metal], (2, 2, 2), 0.08))
    frames.append(random_cluster(rng, ["Cu", "Au", "Ni"], 30))
    frames.append(distorted_crystal(rng, ["Al", "Pt", "Ag", "Pd"], (2, 3, 2), 0.1))
    # A one-atom primitive cell: every neighbour is an image of the atom itself.
    frames.append(bulk("Al", "fcc", a=4.0))
    # A thin slab, periodic in two directions only.
    slab = distorted_crystal(rng, ["Cu"], (3, 3, 2), 0.02)
    slab.pbc = [True, True, False]
    frames.append(slab)
    return frames


@pytest.fixture(scope="module")
def labelled(minima, tmp_path_factory):
    folder = tmp_path_factory.mktemp("emt")
    frames = structures()
    write(folder / "in.extxyz", frames)
    minima("label", "--calc", "emt", "-i", folder / "in.extxyz", "-o", folder / "out.extxyz")
    return frames, read(folder / "out.extxyz", index=":")


def test_energies_and_forces_equal_ase(labelled):
    frames, ours = labelled
    assert len(ours) == len(frames)
    for reference, atoms in zip(frames, ours):
        reference.calc = EMT()
        assert np.array_equal(atoms.numbers, reference.numbers)
        assert abs(atoms.get_potential_energy() - reference.get_potential_energy()) < 1e-6
        assert np.abs(atoms.get_forces() - reference.get_forces()).max() < 1e-5
        assert np.abs(atoms.get_potential_energies() - reference.get_potential_energies()).max() < 1e-6


def test_stress_equals_ase(labelled):
    frames, ours = labelled
    for reference, atoms in zip(frames, ours):
        if not reference.pbc.all():
            continue
        reference.calc = EMT()
        assert np.abs(atoms.get_stress() - reference.get_stress()).max() < 1e-6
