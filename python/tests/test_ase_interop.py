"""extxyz written by minima loads in ASE with the same numbers, and the other way round."""
import tarfile

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import read, write

from conftest import QM9_ARCHIVE

HARTREE = 27.211386245988


def qm9_reference():
    """Positions and U0 parsed straight from the archive, independently of minima."""
    reference = {}
    with tarfile.open(QM9_ARCHIVE) as tar:
        for member in tar:
            lines = tar.extractfile(member).read().decode().splitlines()
            n = int(lines[0])
            fields = lines[1].split()
            number = lambda text: float(text.replace("*^", "e"))
            positions = [[number(x) for x in line.split()[1:4]] for line in lines[2 : 2 + n]]
            reference[int(fields[1])] = (np.array(positions), number(fields[12]) * HARTREE)
    return reference


def test_ase_reads_every_converted_qm9_molecule_identically(qm9_extxyz):
    frames = read(qm9_extxyz, index=":")
    reference = qm9_reference()
    assert len(frames) == len(reference) == 9727
    for atoms in frames:
        positions, u0 = reference[atoms.info["qm9_index"]]
        assert np.array_equal(atoms.positions, positions)
        assert atoms.get_potential_energy() == u0
        assert not atoms.pbc.any()


def ase_frames():
    rng = np.random.default_rng(0)
    crystal = Atoms("Cu4", scaled_positions=rng.random((4, 3)), cell=[[3.6, 0, 0], [0.4, 3.5, 0], [-0.2, 0.3, 3.7]], pbc=[True, True, False])
    crystal.calc = SinglePointCalculator(crystal, energy=-14.123456789012345, forces=rng.normal(size=(4, 3)))
    crystal.info.update({"scale": 1.05, "seed": 7, "element": "Cu", "converged": True, "vector": np.array([1.5, 2.5, -3.0])})
    crystal.arrays["tags_int"] = np.array([1, 2, 3, 4])
    molecule = Atoms("CH4", positions=rng.normal(size=(5, 3)))
    molecule.info["comment_text"] = "two words"
    return [crystal, molecule]


def test_ase_written_file_round_trips_through_minima(minima, tmp_path):
    written = tmp_path / "ase.extxyz"
    write(written, ase_frames(), format="extxyz")
    # ASE writes positions to 8 decimals: the reference is what ASE reads from its own file.
    original = read(written, index=":")
    rewritten = tmp_path / "minima.extxyz"
    minima("convert", "--from", "extxyz", written, "-o", rewritten)
    back = read(rewritten, index=":")
    assert len(back) == len(original)
    for a, b in zip(original, back):
        assert a.get_chemical_symbols() == b.get_chemical_symbols()
        assert np.array_equal(a.positions, b.positions)
        assert np.array_equal(a.cell.array, b.cell.array)
        assert list(a.pbc) == list(b.pbc)
        for key, value in a.info.items():
            assert np.array_equal(np.asarray(b.info[key]), np.asarray(value)), key
        for name in set(a.arrays) - {"numbers", "positions"}:
            assert np.array_equal(a.arrays[name], b.arrays[name]), name
    assert back[0].get_potential_energy() == original[0].get_potential_energy()
    assert np.array_equal(back[0].get_forces(), original[0].get_forces())


def test_minima_info_reads_what_ase_writes(minima, tmp_path):
    path = tmp_path / "ase.extxyz"
    write(path, ase_frames(), format="extxyz")
    report = minima("info", path).stdout
    assert "frames    2 (1 periodic, 1 open)" in report
    assert "energy    -14.123457 to -14.123457 eV" in report


def test_gzip_files_pass_both_ways(minima, tmp_path):
    """ASE reads and writes `.gz` by its extension; so does minima."""
    ase_gz = tmp_path / "ase.extxyz.gz"
    write(ase_gz, ase_frames(), format="extxyz")
    original = read(ase_gz, index=":")
    minima_gz = tmp_path / "minima.extxyz.gz"
    minima("convert", "--from", "extxyz", ase_gz, "-o", minima_gz)
    back = read(minima_gz, index=":")
    assert [a.get_chemical_symbols() for a in back] == [a.get_chemical_symbols() for a in original]
    for a, b in zip(original, back):
        assert np.array_equal(a.positions, b.positions)
    assert back[0].get_potential_energy() == original[0].get_potential_energy()
