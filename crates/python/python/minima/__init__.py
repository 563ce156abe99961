"""minima in Python: ASE calculators for minima models and for minima's EMT.

    from minima import Calculator
    atoms.calc = Calculator("models/molecules.safetensors")
    atoms.get_potential_energy(), atoms.get_forces()

``Calculator`` gives ``energy``, ``free_energy`` (the same: no electronic entropy), ``forces``,
``energies`` (per atom) and, for cells periodic along all three axes, ``stress`` (Voigt order,
eV/Å³, ASE's sign). Given several checkpoints, or a committee's folder (``minima train`` with
``train.committee``), it is a committee: the results are the members' mean, and ``calc.results`` also holds ``energy_std`` (eV) and ``forces_std`` (per atom, eV/Å).
Graphs and neighbour lists are built in Rust; libtorch comes from the torch wheel installed
beside this package.
"""

import os
import weakref

import numpy as np
from ase.calculators.calculator import Calculator as _AseCalculator
from ase.calculators.calculator import PropertyNotImplementedError, all_changes

from . import _minima

__version__ = _minima.__version__
__all__ = ["Calculator", "EMT"]


def _structure(atoms):
    """Atomic numbers, positions, cell (or None) and periodicity as the Rust side takes them."""
    cell = atoms.cell.array
    return (
        [int(z) for z in atoms.numbers],
        atoms.positions.tolist(),
        cell.tolist() if cell.any() else None,
        [bool(p) for p in atoms.pbc],
    )


class _Base(_AseCalculator):
    implemented_properties = ["energy", "free_energy", "forces", "energies", "stress"]

    def _evaluate(self, atoms, system_changes):
        """The Rust side's dict of results for ``atoms``."""
        raise NotImplementedError

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        out = self._evaluate(self.atoms, system_changes)
        n = len(self.atoms)
        self.results = {
            "energy": out["energy"],
            "free_energy": out["energy"],
            "forces": np.asarray(out["forces"], dtype=float).reshape(n, 3),
        }
        if "energies" in out:
            self.results["energies"] = np.asarray(out["energies"], dtype=float)
        if "stress" in out:
            self.results["stress"] = np.asarray(out["stress"], dtype=float)
        elif "stress" in properties:
            raise PropertyNotImplementedError(
                "stress needs a cell periodic along all three axes"
            )
        for key in ("energy_std", "forces_std"):
            if key in out:
                self.results[key] = np.asarray(out[key], dtype=float)


class Calculator(_Base):
    """A minima model (``checkpoint``: a ``.safetensors`` file with its ``.toml`` beside it),
    a run folder (its ``best.safetensors``), or a committee (a list of checkpoints, or the folder
    of a committee run, whose ``member-K`` runs are its members), on ``device`` ("cpu", "cuda", "cuda:N")
    with ``threads`` libtorch intra-op threads.

    Bond types, for the models that read them, are perceived when the calculator is first
    asked about an ``Atoms`` object and kept while that same object moves (an optimiser or a
    dynamics run moves it in place), so that a relaxation or a trajectory does not change
    them; another ``Atoms`` object, or other atomic numbers, gets its own, as `minima
    predict` gives each frame. A structure that records its bonds (``atoms.info["bonds"]``, as
    minima's data sets do) uses those. ``reset()`` forgets them.
    """

    def __init__(self, checkpoint, device="cpu", threads=1, **kwargs):
        super().__init__(**kwargs)
        if isinstance(checkpoint, (str, os.PathLike)):
            checkpoints = [checkpoint]
        else:
            checkpoints = list(checkpoint)
        self.checkpoints = [os.fspath(c) for c in checkpoints]
        self._model = _minima.Model(self.checkpoints, device, threads)
        self._bonds_of = None  # a weak reference to the Atoms the kept bonds belong to

    @property
    def names(self):
        return self._model.names

    def reset(self):
        super().reset()
        self._model.reset_bonds()

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        if atoms is not None and (self._bonds_of is None or self._bonds_of() is not atoms):
            self._model.reset_bonds()
            self._bonds_of = weakref.ref(atoms)
        super().calculate(atoms, properties, system_changes)

    def _evaluate(self, atoms, system_changes):
        if "numbers" in system_changes:
            self._model.reset_bonds()
        bonds = atoms.info.get("bonds")
        return self._model.calculate(*_structure(atoms), bonds if isinstance(bonds, str) else None)


class EMT(_Base):
    """minima's Effective Medium Theory, equal to ASE's ``EMT`` (same parameters, cutoff and
    conventions), computed in Rust."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._emt = _minima.Emt()

    def _evaluate(self, atoms, system_changes):
        return self._emt.calculate(*_structure(atoms))
