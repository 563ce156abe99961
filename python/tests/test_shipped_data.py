"""The labelled data shipped in data/ loads in ASE unchanged, with the labels and provenance
its generators and calculators wrote."""
import bz2
import io
from pathlib import Path

import numpy as np
from ase.io import read as ase_read

DATA = Path(__file__).resolve().parents[2] / "data"


def read(path, index):
    """ASE's extxyz reader on the decompressed text. (ase.io.read opens .bz2 itself, but it
    seeks to every frame, which costs quadratic time in a compressed stream.)"""
    with bz2.open(path, "rt") as compressed:
        return ase_read(io.StringIO(compressed.read()), index=index, format="extxyz")


def test_qm9_xtb_scans():
    frames = read(DATA / "qm9_xtb.extxyz.bz2", index=":")
    assert len(frames) == 10_000
    molecules = {a.info["qm9_index"] for a in frames}
    assert len(molecules) == 1000
    scales = sorted({round(a.info["scale"], 6) for a in frames})
    assert np.allclose(scales, np.linspace(0.9, 1.5, 10))
    for atoms in frames[:50]:
        assert atoms.info["calculator"] == "xtb" and isinstance(atoms.info["bonds"], str)
        assert np.isfinite(atoms.get_potential_energy())
        assert atoms.get_forces().shape == (len(atoms), 3)
        assert not atoms.pbc.any()


def test_metal_scans_and_growths():
    fcc = read(DATA / "fcc_emt.extxyz.bz2", index=":")
    assert len(fcc) == 400 and all(a.pbc.all() for a in fcc)
    assert {a.info["element"] for a in fcc} == {"Al", "Cu"}
    assert all(len(a.get_stress()) == 6 for a in fcc[:10])
    growth = read(DATA / "growth_emt.extxyz.bz2", index=":")
    assert len(growth) == 1040
    assert {len(a) for a in growth} == set(range(15, 41))
    assert all(a.info["calculator"] == "emt" for a in growth)
