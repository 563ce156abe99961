"""Tables of scripts/reproduce.sh beside the papers' figures, as Markdown on stdout, and Fig. 6
(energy MAE by cluster size, trained on all sizes and on <= 25 atoms) as fig6.png.

    python3 scripts/reproduce_report.py runs/reproduce/full [docs/results] > runs/reproduce/full/tables.md

Each row is read from the first folder that holds it (rows/ROW/eval.json): the run's own,
then the record kept in git (docs/results). Fig. 6 is written into the first folder. Rows not
yet run show "–". The papers' numbers are copied from ../shared/papers; the VIMPNN
paper's energies are most likely Hartree (CP2K), ours are eV (xtb, EMT): MAE and MSE do not
compare across the two columns, RE and DSC do.
"""

import json
import pathlib
import sys

ROOTS = [pathlib.Path(arg) for arg in sys.argv[1:]]
OUT = ROOTS[0]

# VIMPNN paper, Table 2: MAE, MSE, RE, DSC as (mean, std); None where the paper has "-".
PAPER_T2 = {
    ("mpnn", "qm9"): ((0.091, 0.476), (0.235, 6.679), (0.0012, 0.005), (0.039, 0.056)),
    ("mpnn", "fcc"): ((0.034, 0.032), (0.002, 0.005), (0.0012, 0.002), (0.201, 0.211)),
    ("mpnn", "stable75"): ((2.906, 4.200), (26.069, 71.750), (0.0047, 0.005), None),
    ("mpnn", "unstable75"): ((3.447, 4.401), (31.231, 71.743), (0.0058, 0.006), (0.497, 0.499)),
    ("vimpnn", "qm9"): ((0.065, 0.197), (0.043, 1.093), (0.0008, 0.002), (0.033, 0.047)),
    ("vimpnn", "fcc"): ((0.034, 0.044), (0.003, 0.009), (0.0015, 0.002), (0.048, 0.035)),
    ("vimpnn", "stable75"): ((0.513, 0.537), (0.552, 1.162), (0.0016, 0.002), None),
    ("vimpnn", "unstable75"): ((2.387, 3.557), (18.336, 56.050), (0.0042, 0.004), (0.162, 0.237)),
}
DATASETS = [
    ("qm9", "Augmented QM9"),
    ("fcc", "Infinite crystal"),
    ("stable75", "Stable CG, 15–75"),
    ("unstable75", "Unstable CG, 15–75"),
    ("stable114", "Stable CG, 15–114"),
    ("unstable114", "Unstable CG, 15–114"),
]
# VIMPNN paper, Table 1: MAE, MSE, RE.
PAPER_T1 = [
    ("t1-no-bond-types", "No bond type (BT) information", ((0.220, 1.169), (1.416, 17.913), (0.0027, 0.013))),
    ("t1-mpnn", "MPNN (BT specialised messages)", ((0.091, 0.476), (0.235, 6.679), (0.0012, 0.005))),
    ("t1-aii", "BT specialised node updates (a.ii)", ((0.067, 0.141), (0.024, 0.406), (0.0009, 0.002))),
    ("t1-atoms", "Auxiliary # atoms", ((0.171, 0.986), (1.002, 13.940), (0.0021, 0.011))),
    ("t1-orbitals", "Auxiliary # orbitals", ((0.195, 0.545), (0.335, 7.223), (0.0025, 0.006))),
    ("t1-scaling", "Auxiliary BT distance scaling", ((0.119, 0.698), (0.501, 9.548), (0.0015, 0.008))),
]
# Physics-transformer paper, Table 1 (QM9): MAE_E meV, MAE_F eV/Å, ΔP Å.
PAPER_X1 = [("x1-energy", "Ours (L_energy only)", (8.35, 1.28, 1.23)), ("x1-full", "Ours (full model)", (15.16, 0.005, 0.025))]
# Table 2: [CLS], LJP, Mask, Force, Bound, then MAE_E, MAE_F, ΔP.
PAPER_X2 = [
    (1, "", "", "", "", "", (11.83, 0.77, 1.76)),
    (2, "✓", "", "", "", "", (9.03, 0.90, 1.11)),
    (3, "✓", "✓", "✓", "", "", (9.70, 1.91, 0.814)),
    (4, "✓", "✓", "", "✓", "", (10.18, 0.016, 0.141)),
    (5, "✓", "✓", "", "", "✓", (16.34, 0.007, 0.038)),
    (6, "✓", "", "✓", "✓", "✓", (20.67, 0.004, 0.022)),
    (7, "✓", "✓", "", "✓", "✓", (17.50, 0.005, 0.027)),
    (8, "✓", "✓", "✓", "", "✓", (17.34, 0.013, 0.044)),
    (9, "✓", "✓", "✓", "✓", "", (9.65, 0.015, 0.083)),
    (10, "✓", "✓", "✓", "✓", "✓", (15.16, 0.005, 0.025)),
]
DASH = "–"


def row_dir(row):
    """The folder of a finished row: the first root that has its eval.json."""
    return next((root / "rows" / row for root in ROOTS if (root / "rows" / row / "eval.json").exists()), None)


def load(row):
    found = row_dir(row)
    return json.loads((found / "eval.json").read_text()) if found else None


def trained(row):
    """Epochs and CPU minutes of a row's training run, from its learning curve."""
    found = row_dir(row)
    curve = found / "run" / "learning_curve.csv" if found else None
    if not curve or not curve.exists():
        return DASH
    lines = curve.read_text().splitlines()
    header = lines[0].split(",")
    cpu = header.index("cpu_seconds")
    minutes = sum(float(line.split(",")[cpu]) for line in lines[1:]) / 60
    return f"{len(lines) - 1} ep, {minutes:.2f} CPU-min"


def mean_std(value, digits):
    return DASH if value is None else f"{value[0]:.{digits}f} ({value[1]:.{digits}f})"


def ours(stats, digits):
    return mean_std((stats["mean"], stats["std"]), digits)


def dsc(report):
    d = report.get("dsc")
    if not d or not d.get("angstrom"):
        return DASH
    left_out = d["without_predicted_minimum"]
    note = f", {left_out} without a minimum" if left_out else ""
    return f"{ours(d['angstrom'], 3)} Å{note}"


def table2():
    lines = [
        "| model | dataset | MAE eV (paper: Ha?) | MSE | RE | DSC | training | paper MAE | paper MSE | paper RE | paper DSC |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for model in ["mpnn", "vimpnn"]:
        for key, name in DATASETS:
            row = f"t2-{key}-{model}"
            r = load(row)
            paper = PAPER_T2.get((model, key), (None,) * 4)
            measured = (
                [ours(r["energy"]["mae"], 3), ours(r["energy"]["mse"], 3), ours(r["energy"]["re"], 4), dsc(r)]
                if r
                else [DASH] * 4
            )
            papers = [mean_std(paper[0], 3), mean_std(paper[1], 3), mean_std(paper[2], 4), mean_std(paper[3], 3)]
            lines.append(f"| {model.upper()} | {name} | " + " | ".join(measured + [trained(row)] + papers) + " |")
    return "\n".join(lines)


def table1():
    lines = [
        "| strategy | MAE eV | MSE | RE | training | paper MAE | paper MSE | paper RE |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row, name, paper in PAPER_T1:
        r = load(row)
        measured = [ours(r["energy"]["mae"], 3), ours(r["energy"]["mse"], 3), ours(r["energy"]["re"], 4)] if r else [DASH] * 3
        papers = [mean_std(p, 3 if k < 2 else 4) for k, p in enumerate(paper)]
        lines.append(f"| {name} | " + " | ".join(measured + [trained(row)] + papers) + " |")
    return "\n".join(lines)


def transformer_metrics(r):
    if not r:
        return [DASH] * 4
    relax = r.get("relax", {})
    delta_p = relax.get("delta_p", {})
    delta_e = relax.get("abs_delta_e", {})
    force = r.get("force_mae")
    return [
        f"{1000 * r['energy']['mae']['mean']:.1f}",
        f"{force['mean']:.3f}" if force else DASH,
        f"{delta_p['mean']:.3f} (median {delta_p['median']:.3f})" if delta_p else DASH,
        f"{delta_e['median']:.2e}" if delta_e else DASH,
    ]


def transformer_table1():
    lines = [
        "| model | MAE_E meV | MAE_F eV/Å | ΔP Å, mean | median abs ΔE_g eV | training | paper MAE_E | paper MAE_F | paper ΔP |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row, name, paper in PAPER_X1:
        cells = transformer_metrics(load(row)) + [trained(row)] + [str(p) for p in paper]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def transformer_table2():
    lines = [
        "| No. | [CLS] | LJP | Mask | Force | Bound | MAE_E meV | MAE_F eV/Å | ΔP Å, mean | median abs ΔE_g eV | training | paper MAE_E | paper MAE_F | paper ΔP |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for n, *flags, paper in PAPER_X2:
        row = f"x2-row{n}"
        cells = [str(n)] + flags + transformer_metrics(load(row)) + [trained(row)] + [str(p) for p in paper]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def figure6():
    """Energy MAE by size of the Stable-growth VIMPNN trained on all sizes and on <= 25 atoms."""
    series = [("t2-stable75-vimpnn", "trained on 15–75 atoms"), ("f6-size25-vimpnn", "trained on ≤ 25 atoms")]
    loaded = [(load(row), label) for row, label in series]
    if not any(r for r, _ in loaded):
        return "Fig. 6: not yet run."
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "Fig. 6: matplotlib is missing (scripts/setup.sh installs it into .venv)."
    fig, ax = plt.subplots(figsize=(6, 4))
    for r, label in loaded:
        if r:
            sizes = sorted(r["by_size"], key=int)
            ax.plot([int(s) for s in sizes], [r["by_size"][s]["mae"]["mean"] for s in sizes], label=label)
    ax.axvline(25, color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("atoms per cluster")
    ax.set_ylabel("energy MAE (eV)")
    ax.set_title("VIMPNN, Stable crystal growth (EMT), test clusters")
    ax.legend()
    fig.tight_layout()
    fig.savefig(OUT / "fig6.png", dpi=120)
    return f"Fig. 6: {OUT / 'fig6.png'}"


print(f"# Reproduction tables ({OUT})\n")
print("Measured figures as mean (std) over the test split; training as epochs and CPU-minutes.\n")
print("## VIMPNN paper, Table 2\n")
print(table2())
print("\n## VIMPNN paper, Table 1 (augmented QM9, the shipped molecules 1–1,000)\n")
print(table1())
print("\n## Physics-transformer paper, Table 1 (QM9)\n")
print(transformer_table1())
print("\n## Physics-transformer paper, Table 2 (QM9)\n")
print(transformer_table2())
print()
print(figure6())
contributions = next(
    (c for root in ROOTS if (c := root / "rows" / "f7-contributions" / "contributions.png").exists()), None
)
print(f"Fig. 7: {contributions}" if contributions else "Fig. 7: not yet run.")
