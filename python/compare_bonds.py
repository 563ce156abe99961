"""Agreement of minima's bond perception with RDKit's DetermineBonds (charge 0).

Usage: python compare_bonds.py RDKIT.json MINIMA.jsonl QM9.extxyz [--report OUT.json]

A molecule agrees when both give the same set of (i, j, order). Molecules RDKit cannot
perceive (it raises) are counted apart: there is nothing to agree with. The differing
molecules are listed with their SMILES and a coarse kind, for the closing note.
"""
import json
import sys
from collections import Counter


def smiles_of(extxyz_path):
    smiles = []
    with open(extxyz_path) as f:
        while True:
            count = f.readline()
            if not count:
                break
            comment = f.readline()
            value = comment.split(" smiles=", 1)[1].split(" ", 1)[0] if " smiles=" in comment else "?"
            smiles.append(value.strip('"'))
            for _ in range(int(count)):
                f.readline()
    return smiles


def kind(smiles, ours, theirs):
    ours_types = Counter(o for *_, o in ours)
    their_types = Counter(o for *_, o in theirs)
    if {(i, j) for i, j, _ in ours} != {(i, j) for i, j, _ in theirs}:
        return "connectivity"
    if ours_types.get(1.5, 0) != their_types.get(1.5, 0):
        return "aromaticity"
    if "+" in smiles or "-]" in smiles:
        return "charged (zwitterion) resonance"
    return "Kekulé / bond-order placement"


def bond_type_counts_match_smiles(smiles, ours):
    """Whether minima's bonds have the bond-type counts of the molecule's SMILES graph: an
    independent check where RDKit's perception from geometry fails."""
    from rdkit import Chem

    mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
    return Counter(b.GetBondTypeAsDouble() for b in mol.GetBonds()) == Counter(float(b[2]) for b in ours)


def compare(rdkit_path, ours_path, extxyz_path):
    rdkit = json.load(open(rdkit_path))
    ours = [json.loads(line) for line in open(ours_path)]
    smiles = smiles_of(extxyz_path)
    assert len(rdkit) == len(ours) == len(smiles), (len(rdkit), len(ours), len(smiles))
    agree, rdkit_failed, differ = 0, [], []
    for entry, mine, smi in zip(rdkit, ours, smiles):
        if "error" in entry:
            rdkit_failed.append({"qm9_index": entry["qm9_index"], "smiles": smi, "rdkit_error": entry["error"][:80],
                                 "minima_matches_smiles": bond_type_counts_match_smiles(smi, mine)})
            continue
        theirs = {(i, j, float(o)) for i, j, o in entry["bonds"]}
        mine_set = {(b[0], b[1], float(b[2])) for b in mine}
        if theirs == mine_set:
            agree += 1
        else:
            differ.append({"qm9_index": entry["qm9_index"], "smiles": smi, "kind": kind(smi, mine_set, theirs),
                           "only_minima": sorted(mine_set - theirs), "only_rdkit": sorted(theirs - mine_set)})
    compared = agree + len(differ)
    return {
        "molecules": len(rdkit),
        "rdkit_perceived": compared,
        "rdkit_failed": len(rdkit_failed),
        "rdkit_failed_minima_matches_smiles": sum(f["minima_matches_smiles"] for f in rdkit_failed),
        "agree": agree,
        "agreement": agree / compared,
        "differ_by_kind": Counter(d["kind"] for d in differ),
        "differ": differ,
        "rdkit_failures": rdkit_failed,
    }


def main():
    report = compare(*sys.argv[1:4])
    print(f"molecules {report['molecules']}, RDKit perceives {report['rdkit_perceived']} "
          f"(fails on {report['rdkit_failed']})")
    print(f"minima agrees on {report['agree']} of {report['rdkit_perceived']}: {100 * report['agreement']:.2f} %")
    print(f"where RDKit fails, minima's bond types match the SMILES on "
          f"{report['rdkit_failed_minima_matches_smiles']} of {report['rdkit_failed']}")
    for k, n in report["differ_by_kind"].most_common():
        print(f"  differ, {k}: {n}")
    if "--report" in sys.argv:
        with open(sys.argv[sys.argv.index("--report") + 1], "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
