"""RDKit's bond perception (DetermineBonds, charge 0) on QM9 molecules, as minima's JSON.

Usage: python rdkit_bonds.py QM9_ARCHIVE_OR_DIR OUT.json [--first N]

Each entry is {"qm9_index": i, "bonds": [[i, j, order], ...], "charges": [...]}, with order
1, 2, 3 or 1.5 (aromatic), i < j, sorted; or {"qm9_index": i, "error": "..."} where RDKit fails.
"""
import json
import sys
import tarfile
from pathlib import Path

from rdkit import Chem, RDLogger
from rdkit.Chem import rdDetermineBonds

RDLogger.DisableLog("rdApp.*")


def molecules(source: Path, first: int):
    if source.is_dir():
        items = ((p.name, p.read_text()) for p in sorted(source.glob("dsgdb9nsd_*.xyz")))
    else:
        tar = tarfile.open(source)
        items = ((m.name, tar.extractfile(m).read().decode()) for m in tar if m.isfile())
    for name, text in items:
        index = int(Path(name).stem.split("_")[1])
        if index <= first:
            yield index, text


def rdkit_bonds(text: str):
    lines = text.splitlines()
    n = int(lines[0])
    def number(text):
        # RDKit's XYZ parser accepts fixed-point numbers only.
        return f"{float(text.replace('*^', 'e')):.12f}"

    atoms = []
    for line in lines[2 : 2 + n]:
        symbol, *xyz = line.split()[:4]
        atoms.append(" ".join([symbol, *map(number, xyz)]))
    mol = Chem.MolFromXYZBlock(f"{n}\n\n" + "\n".join(atoms) + "\n")
    rdDetermineBonds.DetermineBonds(mol, charge=0)
    bonds = sorted(
        [min(b.GetBeginAtomIdx(), b.GetEndAtomIdx()), max(b.GetBeginAtomIdx(), b.GetEndAtomIdx()), b.GetBondTypeAsDouble()]
        for b in mol.GetBonds()
    )
    return bonds, [a.GetFormalCharge() for a in mol.GetAtoms()]


def main():
    source, out = Path(sys.argv[1]), Path(sys.argv[2])
    first = int(sys.argv[sys.argv.index("--first") + 1]) if "--first" in sys.argv else 10**9
    result = []
    for index, text in sorted(molecules(source, first)):
        try:
            bonds, charges = rdkit_bonds(text)
            result.append({"qm9_index": index, "bonds": bonds, "charges": charges})
        except Exception as e:  # RDKit's own failures are part of the comparison
            result.append({"qm9_index": index, "error": str(e)})
    out.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
