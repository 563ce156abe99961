"""SchNetPack's PaiNN beside minima, on the same data, CPU budget and relaxation starts.

Not part of CI: run by scripts/peers.sh, which makes the separate environment (Python 3.12,
PyPI's schnetpack, torch, ase). It

1. trains SchNetPack 2's PaiNN (64 features, 3 interactions, 20 Gaussian radial functions,
   cosine cutoff 5 Å: the size of configs/molecules.toml) on energies and forces of the given
   extxyz files, for a wall-clock budget on one thread, molecules kept whole in the split
   (by qm9_index), loss 0.01·MSE(E) + 0.99·MSE(F) as SchNetPack's force-field recipe, Adam;
   energies are fitted as residuals after per-element references (least squares), which a
   relaxation never sees;
2. relaxes every start of a `minima bench-minima` run (STEM.starts.extxyz) with ASE's FIRE to
   the same fmax and step limit, and compares each end with the reference minimum
   (STEM.minima.extxyz) exactly as bench-minima does: blown up (atoms closer than 0.5 Å, a
   non-finite energy, or an energy 5 eV below the model's own at the minimum), converged, ΔP
   as the mean displacement after Kabsch superposition;
3. measures energy + forces throughput, batched (64) and one molecule per call.

    python painn_schnetpack.py --data A.extxyz B.extxyz --minutes 55 --bench STEM --out DIR

With `--speed FILE` it only measures the throughput of an untrained model of the same size (speed
does not depend on the weights) on the molecules of FILE and prints it as JSON: what
scripts/peers_speed.sh sets beside `minima bench model` on the same molecules.
"""

import argparse
import json
import math
import os
import random
import time
from collections import defaultdict

import numpy as np
import torch
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import read
from ase.optimize import FIRE

import schnetpack as spk
import schnetpack.transform as trn


def build_model(cutoff):
    radial = spk.nn.GaussianRBF(n_rbf=20, cutoff=cutoff)
    painn = spk.representation.PaiNN(
        n_atom_basis=64, n_interactions=3, radial_basis=radial, cutoff_fn=spk.nn.CosineCutoff(cutoff)
    )
    return spk.model.NeuralNetworkPotential(
        representation=painn,
        input_modules=[spk.atomistic.PairwiseDistances()],
        output_modules=[
            spk.atomistic.Atomwise(n_in=64, output_key="energy"),
            spk.atomistic.Forces(energy_key="energy", force_key="forces"),
        ],
    )


def atom_references(frames):
    """Per-element energies by least squares (eV), as minima's atomrefs."""
    elements = sorted({z for a in frames for z in a.numbers})
    counts = np.array([[np.sum(a.numbers == z) for z in elements] for a in frames], float)
    energies = np.array([a.get_potential_energy() for a in frames])
    refs, *_ = np.linalg.lstsq(counts, energies, rcond=None)
    return dict(zip(elements, refs))


def split_by_molecule(frames, validation, seed):
    groups = defaultdict(list)
    for i, a in enumerate(frames):
        groups[a.info.get("qm9_index", f"frame{i}")].append(i)
    keys = sorted(groups, key=str)
    random.Random(seed).shuffle(keys)
    n_validation = max(1, round(validation * len(keys)))
    pick = lambda ks: [i for k in ks for i in groups[k]]
    return pick(keys[n_validation:]), pick(keys[:n_validation])


class Batches:
    """Inputs with neighbour lists built once per batch of the given frames."""

    def __init__(self, frames, refs, cutoff, size):
        self.converter = spk.interfaces.AtomsConverter(
            neighbor_list=trn.ASENeighborList(cutoff=cutoff), dtype=torch.float32
        )
        self.batches = []
        for start in range(0, len(frames), size):
            chunk = frames[start : start + size]
            inputs = self.converter(chunk)
            residual = [a.get_potential_energy() - sum(refs[z] for z in a.numbers) for a in chunk]
            energy = torch.tensor(residual, dtype=torch.float32)
            forces = torch.tensor(np.concatenate([a.get_forces() for a in chunk]), dtype=torch.float32)
            self.batches.append((inputs, energy, forces))


def evaluate(model, batches):
    e_err, f_err, n_f = 0.0, 0.0, 0
    for inputs, energy, forces in batches.batches:
        out = model(dict(inputs))
        e_err += (out["energy"].detach() - energy).abs().sum().item()
        f_err += (out["forces"].detach() - forces).abs().sum().item()
        n_f += forces.numel()
    n_e = sum(len(b[1]) for b in batches.batches)
    return e_err / n_e, f_err / n_f


def train(model, train_batches, validation_batches, minutes, learning_rate, log):
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    started, epoch, best = time.time(), 0, (math.inf, None)
    while time.time() - started < minutes * 60:
        epoch += 1
        order = list(range(len(train_batches.batches)))
        random.shuffle(order)
        for k in order:
            inputs, energy, forces = train_batches.batches[k]
            out = model(dict(inputs))
            loss = 0.01 * (out["energy"] - energy).square().mean() + 0.99 * (out["forces"] - forces).square().mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if time.time() - started >= minutes * 60:
                break
        mae_e, mae_f = evaluate(model, validation_batches)
        if mae_f < best[0]:
            best = (mae_f, {k: v.clone() for k, v in model.state_dict().items()})
        log(f"epoch {epoch}: validation energy MAE {mae_e:.4f} eV, force MAE {mae_f:.4f} eV/Å, {time.time() - started:.0f} s")
    model.load_state_dict(best[1])
    return epoch, best[0]


class PaiNNCalculator(Calculator):
    implemented_properties = ["energy", "forces"]

    def __init__(self, model, refs, cutoff):
        super().__init__()
        self.model, self.refs = model, refs
        self.converter = spk.interfaces.AtomsConverter(
            neighbor_list=trn.ASENeighborList(cutoff=cutoff), dtype=torch.float32
        )

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        out = self.model(self.converter(self.atoms))
        reference = sum(self.refs[z] for z in self.atoms.numbers)
        self.results = {
            "energy": float(out["energy"].detach().double().sum()) + reference,
            "forces": out["forces"].detach().double().numpy(),
        }


def superposed_displacement(moved, target):
    """Mean distance after the Kabsch superposition of `moved` onto `target` (proper rotation)."""
    a, b = moved - moved.mean(0), target - target.mean(0)
    u, _, vt = np.linalg.svd(a.T @ b)
    d = np.sign(np.linalg.det(u @ vt))
    rotation = u @ np.diag([1.0, 1.0, d]) @ vt
    return float(np.linalg.norm(a @ rotation - b, axis=1).mean())


def shortest_distance(positions):
    d = np.linalg.norm(positions[:, None] - positions[None], axis=-1)
    return float(d[np.triu_indices(len(positions), 1)].min()) if len(positions) > 1 else math.inf


def land(calculator, start, minimum, fmax, steps):
    reference = minimum.copy()
    reference.calc = calculator
    at_minimum = reference.get_potential_energy()
    atoms = start.copy()
    atoms.calc = calculator
    try:
        converged = FIRE(atoms, logfile=None).run(fmax=fmax, steps=steps)
        energy = atoms.get_potential_energy()
    except Exception as error:  # the model failed on a structure it reached
        return {"blown_up": True, "converged": False, "delta_p": None, "why": str(error)}
    shortest = shortest_distance(atoms.positions)
    blown = bool(not math.isfinite(energy) or shortest < 0.5 or energy - at_minimum < -5.0)
    return {
        "blown_up": blown,
        "converged": bool(converged) and not blown,
        "delta_p": None if blown else superposed_displacement(atoms.positions, minimum.positions),
        "delta_e": energy - at_minimum,
    }


def per_call_throughput(calculator, frames):
    """Molecules/s of energy + forces, one ASE call per molecule."""
    start = time.time()
    for a in frames:
        a = a.copy()
        a.calc = calculator
        a.get_forces()
    return len(frames) / (time.time() - start)


def batched_throughput(model, frames, refs, cutoff, batch):
    """Molecules/s of energy + forces in batches (inputs and neighbour lists built beforehand,
    after one untimed batch)."""
    batches = Batches(frames, refs, cutoff, batch)
    model(dict(batches.batches[0][0]))
    start = time.time()
    for inputs, _, _ in batches.batches:
        model(dict(inputs))
    return len(frames) / (time.time() - start)


def speed(path, cutoff, batches):
    frames = read(path, index=":")
    for a in frames:  # Batches reads energies and forces; an untrained model's speed needs none
        a.calc = SinglePointCalculator(a, energy=0.0, forces=np.zeros((len(a), 3)))
    model = build_model(cutoff)
    refs = {z: 0.0 for z in {int(z) for a in frames for z in a.numbers}}
    per_call = per_call_throughput(PaiNNCalculator(model, refs, cutoff), frames[:300])
    report = {"molecules": len(frames), "atoms": sum(len(a) for a in frames) / len(frames)}
    for batch in batches:
        report[f"batch_{batch}"] = round(batched_throughput(model, frames, refs, cutoff, batch))
    report["one_per_call_ase"] = round(per_call)
    print(json.dumps(report))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--speed", help="only measure an untrained model's throughput on this extxyz")
    parser.add_argument("--speed-batches", type=int, nargs="+", default=[8, 64], help="with --speed")
    parser.add_argument("--data", nargs="+", help="labelled extxyz (energy, forces)")
    parser.add_argument("--minutes", type=float, default=55.0, help="training wall-clock budget")
    parser.add_argument("--bench", help="STEM of a minima bench-minima run")
    parser.add_argument("--fmax", type=float, default=0.01)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--cutoff", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="folder for the report and the model")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.speed:
        return speed(args.speed, args.cutoff, args.speed_batches)
    if not (args.data and args.bench and args.out):
        parser.error("--data, --bench and --out are required (or --speed FILE alone)")

    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    log_file = open(os.path.join(args.out, "log.txt"), "a")

    def log(line):
        print(line, flush=True)
        log_file.write(line + "\n")
        log_file.flush()

    frames = [a for path in args.data for a in read(path, index=":")]
    refs = atom_references(frames)
    train_idx, validation_idx = split_by_molecule(frames, 0.05, args.seed)
    log(f"{len(train_idx)} training, {len(validation_idx)} validation frames from {args.data}")
    train_batches = Batches([frames[i] for i in train_idx], refs, args.cutoff, 20)
    validation_batches = Batches([frames[i] for i in validation_idx], refs, args.cutoff, 64)
    model = build_model(args.cutoff)
    epochs, best_force_mae = train(model, train_batches, validation_batches, args.minutes, 5e-4, log)
    torch.save(model.state_dict(), os.path.join(args.out, "painn_schnetpack.pt"))

    calculator = PaiNNCalculator(model, refs, args.cutoff)
    starts = read(args.bench + ".starts.extxyz", index=":")
    minima = read(args.bench + ".minima.extxyz", index=":")
    chosen = json.load(open(args.bench + ".json"))["frames"]
    minimum_of = dict(zip(chosen, minima))
    rows = defaultdict(list)
    for start in starts:
        result = land(calculator, start, minimum_of[start.info["frame"]], args.fmax, args.steps)
        rows[start.info["start"]].append(result)
    table = {}
    for kind, results in rows.items():
        delta_p = sorted(r["delta_p"] for r in results if r["delta_p"] is not None)
        table[kind] = {
            "runs": len(results),
            "blown_up": int(sum(bool(r["blown_up"]) for r in results)),
            "converged": int(sum(bool(r["converged"]) for r in results)),
            "delta_p_median": float(np.median(delta_p)) if delta_p else None,
            "delta_p_p90": delta_p[round((len(delta_p) - 1) * 0.9)] if delta_p else None,
        }
        log(f"SchNetPack PaiNN {kind}: {table[kind]}")
    batched = batched_throughput(model, minima, refs, args.cutoff, 64)
    per_call = per_call_throughput(calculator, minima)
    log(f"energy + forces: {batched:.0f} molecules/s batched (64), {per_call:.0f} one per call, 1 thread")
    report = {
        "epochs": epochs,
        "validation_force_mae": best_force_mae,
        "minutes": args.minutes,
        "relaxations": table,
        "molecules_per_second": {"batched": batched, "one_per_call": per_call},
    }
    json.dump(report, open(os.path.join(args.out, "report.json"), "w"), indent=2)


if __name__ == "__main__":
    main()
