//! `minima pairs`: the physics head's pair parameters β0..β4 and pair energies of a structure
//! (physics-transformer paper, Eq. 5), to see whether the model learnt physical pairs: β4 an
//! equilibrium distance near the bond length, β3 an exponent, β2 a well depth.

use std::path::PathBuf;

use anyhow::{Context, Result};
use minima_data::Sample;
use minima_model::pair_analysis::{bond_kinds, pairs_of};

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

pub fn run(args: Args) -> Result<()> {
    let potential = args.model.load()?;
    let atoms = super::read_frame(&args.input, args.frame)?;
    let source = args.input.display().to_string();
    let sample = Sample::from_atoms(&atoms, args.frame, &source, &potential.config.graph_spec())?;
    potential.check_elements(&sample.graph, args.frame)?;
    let pairs =
        pairs_of(&potential, &sample.graph, args.bonded).with_context(|| args.model.model[0].display().to_string())?;
    report!(
        "{} ({}), frame {} of {}: {} pairs",
        atoms.formula(),
        args.model.model[0].display(),
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
    for kind in bond_kinds(&pairs) {
        let minimum = kind.mean_minimum.map_or("no well".to_string(), |m| format!("{m:.4} Å"));
        report!(
            "{} {} bonds ({}): mean d {:.4} Å, mean β4 {:.4} Å, mean β3 {:.3}, mean pair minimum {minimum}",
            kind.elements,
            kind.bond,
            kind.count,
            kind.mean_distance,
            kind.mean_beta4,
            kind.mean_beta3
        );
    }
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&pairs)?;
        minima_io::write_atomic(path, |w| std::io::Write::write_all(w, text.as_bytes()))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
