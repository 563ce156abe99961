//! `minima pairs`: the physics head's pair parameters β0..β4 and pair energies of a structure
//! (physics-transformer paper, Eq. 5), to see whether the model learnt physical pairs: β4 an
//! equilibrium distance near the bond length, β3 an exponent, β2 a well depth.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use minima_data::{BondClass, Sample};
use minima_model::transformer::pair_minimum;
use serde::Serialize;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: super::ModelArgs,
    /// Structure: extxyz, or QM9 (archive or folder; --frame 0 is methane).
    #[arg(short, long)]
    input: PathBuf,
    #[arg(long, default_value_t = 0)]
    frame: usize,
    /// Only pairs bonded at the reference geometry.
    #[arg(long)]
    bonded: bool,
    /// Also write every pair as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Serialize)]
struct Pair {
    i: usize,
    j: usize,
    elements: String,
    bond: &'static str,
    distance: f64,
    /// β0 (charge product), β1 (eV), β2 (eV), β3, β4 (Å).
    beta: [f64; 5],
    /// E_ij, eV.
    energy: f64,
    /// ∂E_ij/∂d, eV/Å: zero where the pair sits at the minimum of its potential.
    slope: f64,
    /// Where Eq. 5 with this pair's β is lowest (Å): β4 when β0 = 0, shifted by the Coulomb
    /// term otherwise; `None` when it has no minimum below 5 Å.
    minimum: Option<f64>,
}

pub fn run(args: Args) -> Result<()> {
    let potential = args.model.load()?;
    let atoms = super::read_frame(&args.input, args.frame)?;
    let source = args.input.display().to_string();
    let sample = Sample::from_atoms(&atoms, args.frame, &source, &potential.config.graph_spec())?;
    potential.check_elements(&sample.graph, args.frame)?;
    let g = &sample.graph;
    let (edge, beta, energy, slope) = tch::no_grad(|| -> Result<_> {
        let batch = potential.batch(&[g], false);
        let Some(pairs) = potential.predict(&batch, minima_model::Mode::Energy).pairs else {
            bail!(
                "{}: this {:?} model has no physics head (model.transformer.physics)",
                args.model.model.display(),
                potential.config.kind
            );
        };
        let double = |t: &tch::Tensor| Vec::<f64>::try_from(t.to_kind(tch::Kind::Double).flatten(0, -1));
        Ok((
            Vec::<i64>::try_from(&pairs.edge)?,
            double(&pairs.beta)?,
            double(&pairs.energy)?,
            double(&pairs.slope)?,
        ))
    })?;
    let symbol = |a: usize| minima_atoms::element::by_number(g.numbers[a]).map_or("?", |e| e.symbol);
    let mut pairs = Vec::new();
    for (k, &e) in edge.iter().enumerate() {
        let e = e as usize;
        let (i, j) = (g.center[e] as usize, g.neighbor[e] as usize);
        // One direction of each pair: i < j, or for an atom and its own image the positive
        // lattice offset.
        let first = i < j || (i == j && g.offset[e].iter().find(|x| x.abs() > 1e-9).is_some_and(|&x| x > 0.0));
        let bonded = g.bond[e] != BondClass::None;
        if !first || (args.bonded && !bonded) {
            continue;
        }
        let vector: [f64; 3] = std::array::from_fn(|c| g.positions[j][c] + g.offset[e][c] - g.positions[i][c]);
        let pair_beta: [f64; 5] = std::array::from_fn(|c| beta[5 * k + c]);
        pairs.push(Pair {
            i,
            j,
            elements: format!("{}-{}", symbol(i), symbol(j)),
            bond: BondClass::NAMES[g.bond[e] as usize],
            distance: minima_atoms::cell::norm(vector),
            beta: pair_beta,
            energy: energy[k],
            slope: slope[k],
            minimum: pair_minimum(&pair_beta),
        });
    }
    pairs.sort_by(|a, b| a.distance.total_cmp(&b.distance));
    report!(
        "{} ({}), frame {} of {}: {} pairs",
        atoms.formula(),
        args.model.model.display(),
        args.frame,
        source,
        pairs.len()
    );
    report!(
        "{:>4} {:>4} {:>6} {:>9} {:>8} {:>9} {:>9} {:>9} {:>7} {:>8} {:>10} {:>11} {:>9}",
        "i",
        "j",
        "pair",
        "bond",
        "d Å",
        "β0",
        "β1 eV",
        "β2 eV",
        "β3",
        "β4 Å",
        "E_ij eV",
        "dE/dd eV/Å",
        "min Å"
    );
    for p in &pairs {
        let [b0, b1, b2, b3, b4] = p.beta;
        report!(
            "{:>4} {:>4} {:>6} {:>9} {:>8.4} {b0:>9.4} {b1:>9.4} {b2:>9.4} {b3:>7.3} {b4:>8.4} {:>10.4} {:>11.4} {:>9}",
            p.i,
            p.j,
            p.elements,
            p.bond,
            p.distance,
            p.energy,
            p.slope,
            p.minimum.map_or("-".into(), |m| format!("{m:.4}"))
        );
    }
    // Bonded pairs by element pair: mean distance against mean β4.
    let mut kinds: Vec<(&str, &str)> = pairs
        .iter()
        .filter(|p| p.bond != "none")
        .map(|p| (p.elements.as_str(), p.bond))
        .collect();
    kinds.sort_unstable();
    kinds.dedup();
    for (elements, bond) in kinds {
        let group: Vec<&Pair> = pairs
            .iter()
            .filter(|p| p.elements == elements && p.bond == bond)
            .collect();
        let mean = |f: &dyn Fn(&Pair) -> f64| group.iter().map(|p| f(p)).sum::<f64>() / group.len() as f64;
        let minima: Vec<f64> = group.iter().filter_map(|p| p.minimum).collect();
        let minimum = if minima.is_empty() {
            "no well".to_string()
        } else {
            format!("{:.4} Å", minima.iter().sum::<f64>() / minima.len() as f64)
        };
        report!(
            "{elements} {bond} bonds ({}): mean d {:.4} Å, mean β4 {:.4} Å, mean β3 {:.3}, mean pair minimum {minimum}",
            group.len(),
            mean(&|p| p.distance),
            mean(&|p| p.beta[4]),
            mean(&|p| p.beta[3])
        );
    }
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&pairs)?;
        minima_io::write_atomic(path, |w| std::io::Write::write_all(w, text.as_bytes()))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
