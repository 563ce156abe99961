//! `minima convert --from qm9 SRC -o out.extxyz [--first N]`, and `--from extxyz` to rewrite
//! any extxyz (ASE's or another program's) in minima's canonical layout.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::ValueEnum;
use minima_io::{extxyz, qm9, write_atomic};

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
}

pub fn run(args: Args) -> Result<()> {
    let frames = match args.format {
        Format::Qm9 => qm9::read(&args.source, qm9::Selection { max_index: args.first })?,
        Format::Extxyz => {
            let limit = args.first.map_or(usize::MAX, |n| n as usize);
            extxyz::ExtxyzReader::open(&args.source)?
                .take(limit)
                .collect::<Result<Vec<_>, _>>()?
        }
    };
    let bar = super::progress(frames.len() as u64, "writing");
    write_atomic(&args.output, |out| {
        for atoms in &frames {
            extxyz::write_frame(out, atoms)?;
            bar.inc(1);
        }
        Ok(())
    })
    .with_context(|| format!("cannot write {}", args.output.display()))?;
    bar.finish_and_clear();
    eprintln!("wrote {} frames to {}", frames.len(), args.output.display());
    Ok(())
}
