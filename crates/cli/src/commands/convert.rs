//! `minima convert --from qm9 SRC -o out.extxyz [--first N] [--after N] [--every K]` (each molecule marked
//! `equilibrium=T`), and `--from extxyz` to rewrite
//! any extxyz (ASE's or another program's) in minima's canonical layout.

use std::io;
use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::ValueEnum;
use minima_atoms::{Atoms, Value};
use minima_io::{extxyz, qm9, ReadError};

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    /// QM9's original layout: a directory of dsgdb9nsd_*.xyz files or its .tar.bz2 archive.
    Qm9,
    /// Extended XYZ, as ASE writes it.
    Extxyz,
}

#[derive(clap::Args)]
pub struct Args {
    /// Input format.
    #[arg(long = "from", value_enum)]
    format: Format,
    /// The source: a file, archive or directory.
    source: PathBuf,
    /// Output extxyz file (written atomically).
    #[arg(short, long)]
    output: PathBuf,
    /// QM9: only molecules with index ≤ N (QM9's "first N molecules"); extxyz: the first N frames.
    #[arg(long)]
    first: Option<u32>,
    /// QM9: only molecules with index > N (e.g. 9000: molecules no shipped data set holds);
    /// extxyz: all but the first N frames.
    #[arg(long, default_value_t = 0)]
    after: u32,
    /// Keep every K-th of those (the 1st, the (K+1)-th, …): a subset spread over the file.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    every: u64,
    /// Keep only frames whose info KEY has one of the values (e.g. `equilibrium=T`,
    /// `seed=4,5`); several are all required. Applied before --first, --after and --every.
    #[arg(long = "where", value_name = "KEY=VALUES")]
    conditions: Vec<Condition>,
}

/// `KEY=V1,V2,…`: the frame's info KEY equals one of the values (numbers compared as numbers,
/// T/F/True/False as booleans).
#[derive(Debug, Clone)]
pub struct Condition {
    key: String,
    values: Vec<String>,
}

impl std::str::FromStr for Condition {
    type Err = String;
    fn from_str(text: &str) -> Result<Condition, String> {
        let (key, values) = text
            .split_once('=')
            .filter(|(k, v)| !k.is_empty() && !v.is_empty())
            .ok_or_else(|| format!("`{text}`: expected KEY=VALUE[,VALUE…]"))?;
        Ok(Condition {
            key: key.to_string(),
            values: values.split(',').map(str::to_string).collect(),
        })
    }
}

impl Condition {
    fn holds(&self, atoms: &Atoms) -> bool {
        let Some(value) = atoms.info.get(&self.key) else {
            return false;
        };
        self.values.iter().any(|wanted| match value {
            Value::Bool(b) => matches!(
                (b, wanted.as_str()),
                (true, "T" | "True" | "true") | (false, "F" | "False" | "false")
            ),
            Value::Int(i) => wanted.parse::<f64>() == Ok(*i as f64),
            Value::Float(x) => wanted.parse::<f64>() == Ok(*x),
            Value::Str(s) => s == wanted,
            _ => false,
        })
    }
}

pub fn run(args: Args) -> Result<()> {
    let written = match args.format {
        Format::Qm9 => {
            let selection = qm9::Selection {
                max_index: args.first,
                after: args.after,
            };
            let mut frames = qm9::read(&args.source, selection)?;
            // QM9's geometries are relaxed with the DFT that gives its energies: minima of the
            // reference that labels them.
            for atoms in &mut frames {
                atoms
                    .info
                    .insert(minima_data::sampling::EQUILIBRIUM.into(), Value::Bool(true));
            }
            let frames: Vec<Atoms> = frames
                .into_iter()
                .filter(|a| args.conditions.iter().all(|c| c.holds(a)))
                .step_by(args.every as usize)
                .collect();
            let bar = super::progress(frames.len() as u64, "writing");
            write(&args.output, frames.into_iter().map(Ok), &bar)?
        }
        // Streams: a file of any size converts in the memory of one frame.
        Format::Extxyz => {
            let limit = args.first.map_or(usize::MAX, |n| n as usize);
            let conditions = args.conditions.clone();
            // A frame that does not read passes on, so that its error stops the conversion.
            let frames = extxyz::ExtxyzReader::open(&args.source)?
                .filter(move |frame| frame.as_ref().map_or(true, |a| conditions.iter().all(|c| c.holds(a))))
                .take(limit)
                .skip(args.after as usize)
                .step_by(args.every as usize);
            write(&args.output, frames, &super::progress(0, "writing"))?
        }
    };
    eprintln!("wrote {written} frames to {}", args.output.display());
    Ok(())
}

/// Writes frames atomically, stopping at the first bad one (the output is then not created).
fn write(
    output: &Path,
    frames: impl Iterator<Item = Result<Atoms, ReadError>>,
    bar: &minima_io::progress::Task,
) -> Result<usize> {
    let mut read_error = None;
    let mut count = 0;
    extxyz::write_with(output, |out| {
        for frame in frames {
            let atoms = frame.map_err(|e| {
                let message = e.to_string();
                read_error = Some(e);
                io::Error::other(message)
            })?;
            extxyz::write_frame(out, &atoms)?;
            count += 1;
            bar.inc(1);
        }
        Ok(())
    })
    .map_err(|e| match read_error.take() {
        Some(read) => anyhow::Error::from(read),
        // The write error names the output already.
        None => anyhow::Error::from(e),
    })?;
    bar.finish_and_clear();
    Ok(count)
}
