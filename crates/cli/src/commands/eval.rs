//! `minima eval`: the papers' metrics of a trained model on labelled data.

use std::path::PathBuf;

use anyhow::{Context, Result};
use minima_explore::plot::size_figures;
use minima_train::RelativeTo;

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: super::ModelArgs,
    /// Labelled structures (extxyz with energies, or QM9's archive).
    #[arg(long)]
    data: PathBuf,
    /// Where to write the metrics as JSON.
    #[arg(long, default_value = "eval.json")]
    json: PathBuf,
    /// Also draw energy MAE against the number of atoms (the VIMPNN paper's Fig. 6) to
    /// STEM.svg and STEM.png, STEM being the JSON path without its extension + `_by_size`.
    #[arg(long)]
    by_size: bool,
    /// Take RE against each structure's energy relative to its free atoms, in place of the
    /// labelled energy itself: `emt` (the free atoms by EMT) or SYMBOL=ENERGY pairs in eV
    /// (`Cu=3.51,Al=3.28`). For references whose zero is not the free atoms, as EMT's (the fcc
    /// crystal is ≈ 0 eV), where RE against the label explodes.
    #[arg(long, value_name = "emt|LIST")]
    cohesive: Option<String>,
    /// Also run the re-optimisation benchmark (physics-transformer paper, section 4.3) on the
    /// equilibrium structures of --data: perturb, relax with the model, report ΔP and ΔE_g
    /// (written to STEM_relax.json/.svg/.png, STEM from --json, and into the metrics' JSON).
    #[arg(long)]
    relax: bool,
    #[command(flatten)]
    relax_settings: super::bench_relax::Settings,
}

pub fn run(args: Args) -> Result<()> {
    let potential = args.model.load()?;
    let frames = minima_data::read_frames(&args.data)?;
    let source = args.data.display().to_string();
    let samples = minima_data::samples_of(&frames, &source, &potential.config.graph_spec(), true, || {})?;
    let relative_to = match args.cohesive.as_deref() {
        None => RelativeTo::Total,
        Some("emt") => RelativeTo::Cohesive {
            free_atoms: minima_label::free_atom_energies(&minima_label::Emt::new(), &potential.config.elements)?,
        },
        Some(list) if list.contains('=') => RelativeTo::cohesive_from_list(list).context("--cohesive")?,
        Some(other) => anyhow::bail!(
            "--cohesive {other:?}: give emt, or the free atoms' energies as SYMBOL=ENERGY pairs (eV); other references need the free atoms' spin states, so give their energies"
        ),
    };
    let report =
        minima_train::evaluate(&potential, &samples, args.model.batch, &relative_to).with_context(|| source.clone())?;
    // A closed stdout (`| head`) stops the printing, not the evaluation: its files are written.
    let mut stdout = minima_train::console::Stdout::default();
    stdout.print(&report.summary())?;
    let mut json = serde_json::to_value(&report)?;
    if args.relax {
        let molecules: Vec<minima_atoms::Atoms> = frames
            .into_iter()
            .zip(&samples)
            .filter(|(_, sample)| sample.is_equilibrium())
            .map(|(atoms, _)| atoms)
            .collect();
        if molecules.is_empty() {
            anyhow::bail!("--relax: {} holds no equilibrium structures", args.data.display());
        }
        let name = args.model.model[0]
            .parent()
            .and_then(|p| p.file_name())
            .and_then(|n| n.to_str());
        let calculator = minima_model::ModelCalculator::new(potential, name.unwrap_or("model"));
        let output = stem(&args.json, "relax");
        let source = format!("{} (equilibrium structures)", args.data.display());
        json["relax"] = super::bench_relax::benchmark(&calculator, &molecules, &source, &args.relax_settings, &output)?;
    }
    let text = serde_json::to_string_pretty(&json)?;
    minima_io::write_atomic(&args.json, |w| std::io::Write::write_all(w, text.as_bytes()))?;
    stdout.print(&format!("metrics: {}\n", args.json.display()))?;
    if args.by_size {
        let stem = stem(&args.json, "by_size");
        stdout.print(&format!(
            "{:>6} {:>10} {:>14}\n",
            "atoms", "structures", "energy MAE eV"
        ))?;
        for (size, stats) in &report.by_size {
            stdout.print(&format!("{size:>6} {:>10} {:>14.4}\n", stats.count, stats.mae.mean))?;
        }
        let by_size: Vec<(usize, usize, f64)> = report.by_size.iter().map(|(&n, s)| (n, s.count, s.mae.mean)).collect();
        let [svg, png, count_svg, count_png] = size_figures(&stem, &by_size, report.structures)?;
        stdout.print(&format!(
            "MAE by size: {}, {}; structures by size: {}, {}\n",
            svg.display(),
            png.display(),
            count_svg.display(),
            count_png.display()
        ))?;
    }
    Ok(())
}

/// `dir/eval.json` → `dir/eval_SUFFIX`.
fn stem(json: &std::path::Path, suffix: &str) -> PathBuf {
    let name = json.file_stem().and_then(|s| s.to_str()).unwrap_or("eval");
    json.with_file_name(format!("{name}_{suffix}"))
}
