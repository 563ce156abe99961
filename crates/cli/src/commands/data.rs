//! `minima data …`: the VIMPNN paper's datasets from raw geometries (unlabelled; label them
//! with `minima label`), and its splits.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use minima_atoms::Atoms;
use minima_data::generate::{self, FccCell, Grid, PAPER_SCALES};
use minima_data::Scheme;
use minima_io::extxyz;
use serde_json::json;

#[derive(clap::Subcommand)]
pub enum Data {
    /// Augmented QM9: the first N molecules, each at K isotropic scales about its centroid.
    Qm9Scan {
        /// QM9 in its original layout (directory, .tar or .tar.bz2).
        #[arg(long, default_value = "../shared/data/qm9/qm9_first10k.tar.bz2")]
        qm9: PathBuf,
        /// How many molecules, in QM9 index order (the paper: 10,000).
        #[arg(long, default_value_t = 10_000)]
        molecules: usize,
        /// Scales start:stop:count, both ends included.
        #[arg(long, default_value = "0.9:1.5:10")]
        scales: Grid,
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Infinite (periodic) fcc crystals with isotropically scaled cells.
    Fcc {
        #[arg(long, value_delimiter = ',', default_value = "Al,Cu")]
        elements: Vec<String>,
        /// Equilibrium lattice constants, e.g. Al=4.05,Cu=3.615 (default: experiment).
        #[arg(long, value_delimiter = ',')]
        lattice: Vec<String>,
        /// primitive (1 atom) or cubic (4 atoms).
        #[arg(long, default_value = "cubic")]
        cell: FccCell,
        /// Scales per element (the paper: 20,000 points in all; 10000 per element).
        #[arg(long, default_value = "0.9:1.5:1000")]
        scales: Grid,
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Crystal growth: fcc clusters of 15 to 114 atoms grown from a 14-atom seed.
    Growth {
        /// stable: 20 growths per element at scale 1 (4,000 clusters); unstable: 5 growths per
        /// element at 10 scales 0.90–1.50 (10,000).
        #[arg(long, default_value = "stable")]
        subset: String,
        #[arg(long, value_delimiter = ',', default_value = "Al,Cu")]
        elements: Vec<String>,
        #[arg(long, value_delimiter = ',')]
        lattice: Vec<String>,
        /// Growths per element (default by subset); growth k uses random seed k.
        #[arg(long)]
        seeds: Option<u64>,
        /// Scales (default by subset).
        #[arg(long)]
        scales: Option<Grid>,
        #[arg(long, default_value_t = 114)]
        max_size: usize,
        #[arg(short, long)]
        output: PathBuf,
    },
    /// The paper's splits by base structure, written as train/validation/test extxyz files
    /// and split.json (indices, scheme, seed).
    Split {
        #[arg(short, long)]
        input: PathBuf,
        /// qm9 (80/10/10), fcc (8 training scales per crystal), growth (60/20/20), size
        /// (growth, training on clusters of at most --max-train-size atoms); default: detected.
        #[arg(long)]
        scheme: Option<String>,
        #[arg(long, default_value_t = 8)]
        train_points: usize,
        #[arg(long, default_value_t = 25)]
        max_train_size: usize,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Train, validation and test fractions of the base structures, e.g. 0.7,0.15,0.15, in
        /// place of the scheme's own (qm9, growth, size); they must sum to 1.
        #[arg(long, value_delimiter = ',', allow_hyphen_values = true)]
        fractions: Option<Vec<f64>>,
        /// Folder for train.extxyz, validation.extxyz, test.extxyz and split.json.
        #[arg(long)]
        out_dir: PathBuf,
    },
}

pub fn run(data: Data) -> Result<()> {
    match data {
        Data::Qm9Scan {
            qm9,
            molecules,
            scales,
            output,
        } => {
            let mut all = minima_io::qm9::read(&qm9, Default::default())?;
            all.sort_by_key(|a| a.info.get("qm9_index").and_then(|v| v.as_i64()));
            if all.len() < molecules {
                eprintln!(
                    "note: {} holds {} molecules, fewer than the {molecules} asked for",
                    qm9.display(),
                    all.len()
                );
            }
            all.truncate(molecules);
            let frames = generate::qm9_scan(&all, &scales, &qm9.display().to_string())?;
            write(&output, &frames)
        }
        Data::Fcc {
            elements,
            lattice,
            cell,
            scales,
            output,
        } => {
            let elements = with_lattice_constants(&elements, &lattice)?;
            let frames = generate::fcc_scan(&elements, cell, &scales).map_err(anyhow::Error::msg)?;
            write(&output, &frames)
        }
        Data::Growth {
            subset,
            elements,
            lattice,
            seeds,
            scales,
            max_size,
            output,
        } => {
            let (default_seeds, default_scales) = match subset.as_str() {
                "stable" => (
                    20,
                    Grid {
                        start: 1.0,
                        stop: 1.0,
                        count: 1,
                    },
                ),
                "unstable" => (5, PAPER_SCALES),
                other => bail!("subset {other:?}: choose stable or unstable"),
            };
            if max_size < 15 {
                bail!("--max-size {max_size}: the seed has 14 atoms, so at least 15");
            }
            let scales = scales.unwrap_or(default_scales);
            let mut frames = Vec::new();
            for (symbol, a) in with_lattice_constants(&elements, &lattice)? {
                for seed in 0..seeds.unwrap_or(default_seeds) {
                    frames.extend(generate::growth(&symbol, a, seed, max_size, &scales).map_err(anyhow::Error::msg)?);
                }
            }
            write(&output, &frames)
        }
        Data::Split {
            input,
            scheme,
            train_points,
            max_train_size,
            seed,
            fractions,
            out_dir,
        } => {
            let fractions = fractions
                .map(|given| {
                    <[f64; 3]>::try_from(given.as_slice()).map_err(|_| {
                        anyhow::anyhow!(
                            "--fractions takes three numbers (train,validation,test), not {}",
                            given.len()
                        )
                    })
                })
                .transpose()?;
            if let Some(fractions) = fractions {
                minima_data::split::check_fractions(fractions).context("--fractions")?;
            }
            let frames = extxyz::read_all(&input)?;
            let scheme = match scheme.as_deref() {
                // A detected scheme still takes the options given.
                None => match Scheme::detect(&frames).with_context(|| {
                    format!(
                        "{}: cannot tell the dataset (no qm9_index, element or seed); give --scheme",
                        input.display()
                    )
                })? {
                    Scheme::Fcc { .. } => Scheme::Fcc { train_points },
                    detected => detected,
                },
                Some("qm9") => Scheme::Qm9,
                Some("fcc") => Scheme::Fcc { train_points },
                Some("growth") => Scheme::Growth,
                Some("size") => Scheme::Size { max_train_size },
                Some(other) => bail!("scheme {other:?}: choose qm9, fcc, growth or size"),
            };
            let split = scheme.split(&frames, seed, fractions).map_err(anyhow::Error::msg)?;
            std::fs::create_dir_all(&out_dir).with_context(|| format!("cannot create {}", out_dir.display()))?;
            for (name, indices) in [
                ("train", &split.train),
                ("validation", &split.validation),
                ("test", &split.test),
            ] {
                let part: Vec<Atoms> = indices.iter().map(|&i| frames[i].clone()).collect();
                extxyz::write_all(&out_dir.join(format!("{name}.extxyz")), &part)?;
                writeln!(std::io::stdout(), "{name}: {} frames", part.len())?;
            }
            let record = json!({
                "input": input.display().to_string(),
                "scheme": format!("{scheme:?}"),
                "seed": seed,
                "fractions": fractions.or(scheme.fractions()),
                "train": split.train,
                "validation": split.validation,
                "test": split.test,
            });
            minima_io::write_atomic(&out_dir.join("split.json"), |out| {
                serde_json::to_writer_pretty(&mut *out, &record).map_err(std::io::Error::other)
            })?;
            Ok(())
        }
    }
}

/// Each element with its lattice constant: from `X=a` overrides, else experiment.
fn with_lattice_constants(elements: &[String], overrides: &[String]) -> Result<Vec<(String, f64)>> {
    let mut given = std::collections::HashMap::new();
    for item in overrides {
        let (symbol, a) = item
            .split_once('=')
            .with_context(|| format!("--lattice {item:?}: expected X=a, e.g. Cu=3.615"))?;
        let a: f64 = a
            .parse()
            .with_context(|| format!("--lattice {item:?}: {a:?} is not a number"))?;
        if !(a.is_finite() && a > 0.0) {
            bail!("--lattice {item:?}: the lattice constant must be positive");
        }
        given.insert(symbol.to_string(), a);
    }
    elements
        .iter()
        .map(|symbol| {
            let a = given
                .get(symbol)
                .copied()
                .or_else(|| generate::fcc_lattice_constant(symbol))
                .with_context(|| format!("no lattice constant known for {symbol}: give --lattice {symbol}=a"))?;
            Ok((symbol.clone(), a))
        })
        .collect()
}

fn write(output: &std::path::Path, frames: &[Atoms]) -> Result<()> {
    extxyz::write_all(output, frames)?;
    writeln!(std::io::stdout(), "{}: {} frames", output.display(), frames.len())?;
    Ok(())
}
