"""The minima Python package: its ASE calculators against `minima predict`, ASE's finite
differences and ASE's own EMT; ASE's BFGS, Langevin and velocity Verlet driving a minima model;
`minima md` with a model it trained, its trajectory read back by ASE."""
import csv

import numpy as np
import pytest
from ase import units
from ase.build import bulk, molecule
from ase.calculators.emt import EMT as AseEMT
from ase.calculators.fd import calculate_numerical_forces, calculate_numerical_stress
from ase.io import read, write
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary
from ase.md.verlet import VelocityVerlet
from ase.optimize import BFGS

from conftest import ROOT
from minima import EMT, Calculator

MOLECULES = ROOT / "models" / "molecules.safetensors"


def rattled_copper(repeat=2, a=3.6, sigma=0.05, seed=0):
    atoms = bulk("Cu", "fcc", a=a, cubic=True).repeat(repeat)
    atoms.rattle(sigma, seed=seed)
    return atoms


def labelled(atoms, calc):
    from ase.calculators.singlepoint import SinglePointCalculator

    atoms = atoms.copy()
    calc.calculate(atoms, ["energy", "forces", "stress"])
    atoms.calc = SinglePointCalculator(
        atoms,
        energy=calc.results["energy"],
        forces=calc.results["forces"],
        stress=calc.results["stress"],
    )
    return atoms


@pytest.fixture(scope="session")
def cu_model(minima, tmp_path_factory):
    """A small f64 PaiNN trained by `minima train` on EMT copper: 2×2×2 cubic cells at lattice
    constants 3.45-3.75 Å, rattled by 0.02-0.15 Å."""
    folder = tmp_path_factory.mktemp("cu_model")
    rng = np.random.default_rng(0)
    emt = EMT()
    frames = [
        labelled(rattled_copper(a=a, sigma=s, seed=int(rng.integers(1 << 30))), emt)
        for a in np.linspace(3.45, 3.75, 10)
        for s in (0.02, 0.05, 0.1, 0.15)
        for _ in range(2)
    ]
    data = folder / "cu.extxyz"
    write(data, frames, format="extxyz")
    config = folder / "cu.toml"
    config.write_text(
        f"""
[model]
kind = "painn"
cutoff = 4.5
dtype = "f64"

[model.painn]
features = 16
layers = 2
radial_basis = 8

[data]
file = "{data}"
split = [0.8, 0.1, 0.1]

[train]
output = "{folder / 'run'}"
batch_size = 8
learning_rate = 3e-3
max_epochs = 25
early_stop = 100
seed = 0
threads = 1

[train.loss]
energy = 1.0
forces = 10.0
"""
    )
    minima("train", "--config", config)
    return folder / "run" / "best.safetensors"


def test_emt_equals_ases_emt():
    cluster = rattled_copper(repeat=1, a=3.5, seed=3)[:3]
    cluster.pbc = False
    for atoms in (rattled_copper(), cluster):
        ours, theirs = atoms.copy(), atoms.copy()
        ours.calc, theirs.calc = EMT(), AseEMT()
        assert ours.get_potential_energy() == pytest.approx(theirs.get_potential_energy(), abs=1e-9)
        np.testing.assert_allclose(ours.get_forces(), theirs.get_forces(), atol=1e-9)
        np.testing.assert_allclose(ours.get_potential_energies(), theirs.get_potential_energies(), atol=1e-9)
        if atoms.pbc.all():
            np.testing.assert_allclose(ours.get_stress(), theirs.get_stress(), atol=1e-9)


def predicted(minima, model, frames, tmp_path):
    inp, out = tmp_path / "in.extxyz", tmp_path / "out.extxyz"
    write(inp, frames, format="extxyz")
    minima("predict", "--model", model, "--batch", 1, "-i", inp, "-o", out)
    return read(out, index=":")


def assert_equal_to_predict(calc, frames, reference):
    for atoms, want in zip(frames, reference):
        atoms = atoms.copy()
        atoms.calc = calc
        assert atoms.get_potential_energy() == pytest.approx(want.get_potential_energy(), rel=1e-5)
        np.testing.assert_allclose(atoms.get_forces(), want.get_forces(), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(atoms.get_potential_energies(), want.get_potential_energies(), rtol=1e-5, atol=1e-5)
        if atoms.pbc.all():
            np.testing.assert_allclose(atoms.get_stress(), want.get_stress(), rtol=1e-5, atol=1e-7)


def test_the_calculator_equals_minima_predict(minima, cu_model, tmp_path):
    molecules = [molecule(name) for name in ("CH3CH2OH", "C6H6", "CH3CONH2", "H2O")]
    assert_equal_to_predict(Calculator(MOLECULES), molecules, predicted(minima, MOLECULES, molecules, tmp_path))
    crystals = [rattled_copper(seed=k, a=3.55 + 0.05 * k) for k in range(3)]
    assert_equal_to_predict(Calculator(cu_model), crystals, predicted(minima, cu_model, crystals, tmp_path))


def test_forces_and_stress_equal_ases_finite_differences(cu_model):
    calc = Calculator(cu_model)
    atoms = rattled_copper(seed=5)
    atoms.set_cell(atoms.cell.array @ np.array([[1.0, 0.02, 0.0], [0.0, 0.99, 0.01], [0.0, 0.0, 1.01]]), scale_atoms=True)
    atoms.calc = calc
    np.testing.assert_allclose(atoms.get_forces(), calculate_numerical_forces(atoms, eps=1e-4), atol=1e-6)
    np.testing.assert_allclose(atoms.get_stress(), calculate_numerical_stress(atoms, eps=1e-5), atol=1e-7)


def test_a_committee_gives_the_mean_and_its_spread(cu_model):
    atoms = rattled_copper(seed=2)
    same = Calculator([cu_model, cu_model])
    atoms.calc = same
    alone = Calculator(cu_model).get_potential_energy(atoms)
    assert atoms.get_potential_energy() == pytest.approx(alone, rel=1e-12)
    assert same.results["energy_std"] == 0.0
    assert same.results["forces_std"].shape == (len(atoms),)
    # Two members that differ: the run's best and last checkpoints, or (should they be the
    # same weights) a member whose spread is zero, which the formulas below still check.
    last = cu_model.with_name("last.safetensors")
    members = [Calculator(cu_model), Calculator(last)]
    energies = [m.get_potential_energy(atoms) for m in members]
    forces = np.array([m.get_forces(atoms) for m in members])
    committee = Calculator([cu_model, last])
    committee.calculate(atoms, ["energy"])
    assert committee.results["energy"] == pytest.approx(np.mean(energies), rel=1e-12)
    assert committee.results["energy_std"] == pytest.approx(np.std(energies), abs=1e-12)
    spread = np.sqrt(np.mean(np.sum((forces - forces.mean(axis=0)) ** 2, axis=2), axis=0))
    np.testing.assert_allclose(committee.results["forces_std"], spread, atol=1e-12)
    # Members of other elements are refused when the committee is made, naming both.
    with pytest.raises(ValueError, match="must know the same elements") as refused:
        Calculator([cu_model, MOLECULES])
    assert "molecules.safetensors" in str(refused.value) and "best.safetensors" in str(refused.value)


def test_ase_bfgs_relaxes_a_molecule_with_the_shipped_model():
    atoms = molecule("CH3CH2OH")
    atoms.rattle(0.1, seed=0)
    atoms.calc = Calculator(MOLECULES)
    start = atoms.get_potential_energy()
    assert BFGS(atoms, logfile=None).run(fmax=0.02, steps=300)
    assert atoms.get_potential_energy() < start
    distances = atoms.get_all_distances()[np.triu_indices(len(atoms), 1)]
    assert distances.min() > 0.9, "the molecule kept its shape"


def test_ase_langevin_holds_the_temperature_of_a_minima_model(cu_model):
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)
    atoms.calc = Calculator(cu_model)
    MaxwellBoltzmannDistribution(atoms, temperature_K=500, rng=np.random.default_rng(1))
    dyn = Langevin(atoms, 2 * units.fs, temperature_K=500, friction=0.02 / units.fs, fixcm=False, rng=np.random.default_rng(2))
    temperatures = []
    dyn.attach(lambda: temperatures.append(atoms.get_temperature()), interval=5)
    dyn.run(1000)
    assert np.mean(temperatures[len(temperatures) // 2 :]) == pytest.approx(500, rel=0.1)


def test_nve_over_one_picosecond_conserves_the_energy_in_ase_and_minima_md(minima, cu_model, tmp_path):
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)
    MaxwellBoltzmannDistribution(atoms, temperature_K=600, rng=np.random.default_rng(3))
    Stationary(atoms)
    start = atoms.copy()
    atoms.calc = Calculator(cu_model)
    totals = []
    dyn = VelocityVerlet(atoms, 1 * units.fs)
    dyn.attach(lambda: totals.append(atoms.get_total_energy()), interval=10)
    dyn.run(1000)
    drift = np.max(np.abs(np.array(totals) - totals[0])) / len(atoms)
    assert drift < 1e-3, f"ASE's velocity Verlet: {drift} eV/atom"

    # The same start through `minima md`: its momenta are taken from the file.
    write(tmp_path / "start.extxyz", start, format="extxyz")
    trajectory = tmp_path / "nve.extxyz"
    minima("md", "--model", cu_model, "-i", tmp_path / "start.extxyz", "-o", trajectory,
           "--thermostat", "nve", "--timestep", 1, "--steps", 1000, "--every", 10)
    with open(tmp_path / "nve.csv") as f:
        rows = list(csv.DictReader(f))
    total = np.array([float(r["total_eV"]) for r in rows])
    assert len(rows) == 101
    assert np.max(np.abs(total - total[0])) / len(atoms) < 1e-3
    assert float(rows[0]["total_eV"]) == pytest.approx(totals[0], abs=1e-6)

    # ASE reads the trajectory: positions, momenta, energy and forces of each frame.
    frames = read(trajectory, index=":")
    assert len(frames) == 101
    np.testing.assert_allclose(frames[0].get_momenta(), start.get_momenta(), atol=1e-6)
    last = frames[-1]
    assert last.info["md_step"] == 1000
    kinetic = float(rows[-1]["kinetic_eV"])
    assert last.get_kinetic_energy() == pytest.approx(kinetic, rel=1e-5)
    assert last.get_potential_energy() + kinetic == pytest.approx(total[-1], abs=1e-5)


def test_minima_md_thermostat_reaches_its_temperature_with_a_model(minima, cu_model, tmp_path):
    write(tmp_path / "start.extxyz", bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2), format="extxyz")
    minima("md", "--model", cu_model, "-i", tmp_path / "start.extxyz", "-o", tmp_path / "nvt.extxyz",
           "--thermostat", "bussi", "--temperature", 400, "--thermostat-time", 50,
           "--timestep", 2, "--steps", 1500, "--every", 5)
    with open(tmp_path / "nvt.csv") as f:
        temperatures = [float(r["temperature_K"]) for r in csv.DictReader(f)]
    assert np.mean(temperatures[len(temperatures) // 2 :]) == pytest.approx(400, rel=0.08)
