//! QM9 in its original layout (Ramakrishnan et al., Sci. Data 1, 140022, 2014): a directory
//! of `dsgdb9nsd_NNNNNN.xyz` files, or the `.tar.bz2` (or plain `.tar`) archive of them.
//!
//! Each file: atom count; `gdb N` and 15 tab-separated properties; one line per atom
//! (element, x, y, z in Å, Mulliken charge in e); harmonic frequencies (cm⁻¹); the GDB and
//! relaxed SMILES; the GDB and relaxed InChI. Numbers may be written `1.2*^-6`.
//!
//! Units on load: the Hartree-valued properties (homo, lumo, gap, zpve, U0, U, H, G) are
//! converted once to eV; the others keep QM9's units (A, B, C in GHz, mu in Debye, alpha in
//! bohr³, r2 in bohr², Cv in cal/(mol K)). `energy` is U0 in eV, ASE's key for the label.

use std::fs::{self, File};
use std::io::{BufReader, Read};
use std::path::Path;

use minima_atoms::{element, ArrayData, Atoms, Value, HARTREE_EV};

use crate::number::parse_finite;
use crate::{excerpt, ReadError};

/// The largest molecule file read. QM9's files hold at most 29 atoms, about 2 KB; a bigger
/// file is not one of them, and is refused before it is read into memory.
pub const MAX_MOLECULE_BYTES: u64 = 1 << 20;

/// QM9's 15 properties in file order.
pub const PROPERTIES: [&str; 15] = [
    "A", "B", "C", "mu", "alpha", "homo", "lumo", "gap", "r2", "zpve", "U0", "U", "H", "G", "Cv",
];

/// The properties QM9 gives in Hartree, converted to eV on load.
pub const HARTREE_PROPERTIES: [&str; 8] = ["homo", "lumo", "gap", "zpve", "U0", "U", "H", "G"];

/// Which molecules to load.
#[derive(Debug, Clone, Copy, Default)]
pub struct Selection {
    /// Only molecules with QM9 index ≤ this (QM9's "first N molecules"; indices QM9 lists as
    /// failed are simply absent, so `Some(10000)` gives the 9,727 files of molecules 1–10000).
    pub max_index: Option<u32>,
    /// Only molecules with QM9 index > this (0: from the first).
    pub after: u32,
}

impl Selection {
    fn admits(&self, index: u32) -> bool {
        index > self.after && self.max_index.is_none_or(|max| index <= max)
    }
}

/// The QM9 index encoded in a file name `dsgdb9nsd_NNNNNN.xyz`, if it is one.
pub fn index_from_name(name: &str) -> Option<u32> {
    let base = name.rsplit('/').next()?;
    base.strip_prefix("dsgdb9nsd_")?.strip_suffix(".xyz")?.parse().ok()
}

/// Reads the selected molecules from a directory or an archive, ordered by QM9 index.
pub fn read(path: &Path, selection: Selection) -> Result<Vec<Atoms>, ReadError> {
    let source = path.display().to_string();
    let mut molecules = if path.is_dir() {
        read_directory(path, &source, selection)?
    } else {
        let file = File::open(path).map_err(|e| ReadError::new(&source, format!("cannot open: {e}")))?;
        let name = path.to_string_lossy();
        if name.ends_with(".tar.bz2") || name.ends_with(".tbz2") {
            read_archive(
                bzip2::read::MultiBzDecoder::new(BufReader::new(file)),
                &source,
                selection,
            )?
        } else if name.ends_with(".tar") {
            read_archive(BufReader::new(file), &source, selection)?
        } else {
            return Err(ReadError::new(
                source,
                "not a QM9 source: expected a directory of dsgdb9nsd_*.xyz files, a .tar.bz2 or a .tar",
            ));
        }
    };
    if molecules.is_empty() {
        return Err(ReadError::new(source, "no dsgdb9nsd_*.xyz molecule found"));
    }
    molecules.sort_by_key(|(index, _)| *index);
    Ok(molecules.into_iter().map(|(_, atoms)| atoms).collect())
}

fn read_directory(dir: &Path, source: &str, selection: Selection) -> Result<Vec<(u32, Atoms)>, ReadError> {
    let entries = fs::read_dir(dir).map_err(|e| ReadError::new(source, format!("cannot list: {e}")))?;
    let mut molecules = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| ReadError::new(source, e.to_string()))?.path();
        let name = path.to_string_lossy().into_owned();
        let Some(index) = index_from_name(&name) else { continue };
        if selection.admits(index) {
            let file = File::open(&path).map_err(|e| ReadError::new(&name, format!("cannot read: {e}")))?;
            let text = read_molecule_text(file, &name)?;
            molecules.push((index, parse_molecule(&text, &name)?));
        }
    }
    Ok(molecules)
}

fn read_archive<R: Read>(input: R, source: &str, selection: Selection) -> Result<Vec<(u32, Atoms)>, ReadError> {
    let archive_error = |e: std::io::Error| ReadError::new(source, format!("broken archive: {e}"));
    let mut archive = tar::Archive::new(input);
    let mut molecules = Vec::new();
    for entry in archive.entries().map_err(archive_error)? {
        let mut entry = entry.map_err(archive_error)?;
        let name = entry.path().map_err(archive_error)?.to_string_lossy().into_owned();
        let Some(index) = index_from_name(&name) else { continue };
        if !selection.admits(index) {
            continue;
        }
        let member = format!("{source}:{name}");
        let text = read_molecule_text(&mut entry, &member)?;
        molecules.push((index, parse_molecule(&text, &member)?));
    }
    Ok(molecules)
}

/// The text of one molecule file, refused unread beyond [`MAX_MOLECULE_BYTES`].
fn read_molecule_text(input: impl Read, source: &str) -> Result<String, ReadError> {
    let mut text = String::new();
    input
        .take(MAX_MOLECULE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| ReadError::new(source, format!("cannot read: {e}")))?;
    if text.len() as u64 > MAX_MOLECULE_BYTES {
        return Err(ReadError::new(
            source,
            format!("larger than {MAX_MOLECULE_BYTES} bytes: not a QM9 molecule file"),
        ));
    }
    Ok(text)
}

/// Parses the text of one QM9 file into a labelled structure.
pub fn parse_molecule(text: &str, source: &str) -> Result<Atoms, ReadError> {
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    let mut next = |what: &str| {
        lines
            .next()
            .ok_or_else(|| ReadError::new(source, format!("file ends before the {what}")).at(0, text.lines().count()))
    };
    let fail = |line: usize, message: String| ReadError::new(source, message).at(0, line);

    let (line_no, count) = next("atom count")?;
    let natoms: usize = count.trim().parse().ok().filter(|&n| n > 0).ok_or_else(|| {
        fail(
            line_no,
            format!("atom count {} is not a positive integer", excerpt(count.trim())),
        )
    })?;
    // Each atom takes a line, so no more than the file's lines are reserved: a corrupt count
    // (99999999999) must end in "file ends before the atom …", not in an allocation failure.
    let reserve = natoms.min(text.lines().count());
    let (line_no, header) = next("property line")?;
    let fields: Vec<&str> = header.split_whitespace().collect();
    if fields.len() != 2 + PROPERTIES.len() || fields[0] != "gdb" {
        return Err(fail(
            line_no,
            format!(
                "property line must be \"gdb N\" and {} numbers, found {} fields",
                PROPERTIES.len(),
                fields.len()
            ),
        ));
    }
    let index: i64 = fields[1].parse().map_err(|_| {
        fail(
            line_no,
            format!("molecule index {} is not an integer", excerpt(fields[1])),
        )
    })?;
    let mut info = Vec::with_capacity(PROPERTIES.len());
    for (name, text) in PROPERTIES.iter().zip(&fields[2..]) {
        let value = parse_finite(text).map_err(|m| fail(line_no, format!("property {name}: {m}")))?;
        let value = if HARTREE_PROPERTIES.contains(name) {
            value * HARTREE_EV
        } else {
            value
        };
        info.push((name.to_string(), Value::Float(value)));
    }

    let mut numbers = Vec::with_capacity(reserve);
    let mut positions = Vec::with_capacity(reserve);
    let mut charges = Vec::with_capacity(reserve);
    for atom in 0..natoms {
        let (line_no, line) = next(&format!("atom {atom} of {natoms}"))?;
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(fail(
                line_no,
                format!(
                    "atom {atom}: expected element, x, y, z, charge; found {} fields",
                    fields.len()
                ),
            ));
        }
        let e = element::by_symbol(fields[0]).ok_or_else(|| {
            fail(
                line_no,
                format!("atom {atom}: unknown element symbol {}", excerpt(fields[0])),
            )
        })?;
        let mut r = [0.0; 3];
        for k in 0..3 {
            r[k] = parse_finite(fields[1 + k]).map_err(|m| fail(line_no, format!("atom {atom}: {m}")))?;
        }
        numbers.push(e.number);
        positions.push(r);
        charges.push(parse_finite(fields[4]).map_err(|m| fail(line_no, format!("atom {atom} charge: {m}")))?);
    }

    let (line_no, frequency_line) = next("frequency line")?;
    let frequencies = frequency_line
        .split_whitespace()
        .map(parse_finite)
        .collect::<Result<Vec<f64>, String>>()
        .map_err(|m| fail(line_no, format!("frequencies: {m}")))?;
    let (line_no, smiles_line) = next("SMILES line")?;
    let smiles: Vec<&str> = smiles_line.split_whitespace().collect();
    if smiles.len() != 2 {
        return Err(fail(
            line_no,
            format!("expected GDB and relaxed SMILES, found {} fields", smiles.len()),
        ));
    }

    let mut atoms = Atoms::new(numbers, positions).map_err(|e| ReadError::new(source, e.to_string()))?;
    atoms
        .set_array("charges", 1, ArrayData::Float(charges))
        .map_err(|e| ReadError::new(source, e.to_string()))?;
    let u0 = info[10].1.as_f64().expect("U0 parsed above");
    atoms.set_energy(u0);
    atoms.info.insert("qm9_index".into(), Value::Int(index));
    atoms.info.extend(info);
    atoms.info.insert("frequencies".into(), Value::Floats(frequencies));
    atoms.info.insert("smiles".into(), Value::Str(smiles[0].into()));
    atoms.info.insert("smiles_relaxed".into(), Value::Str(smiles[1].into()));
    Ok(atoms)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub const METHANE: &str = "5\ngdb 1\t157.7118\t157.70997\t157.70699\t0.\t13.21\t-0.3877\t0.1171\t0.5048\t35.3641\t0.044749\t-40.47893\t-40.476062\t-40.475117\t-40.498597\t6.469\t\nC\t-0.0126981359\t1.0858041578\t0.0080009958\t-0.535689\nH\t0.002150416\t-0.0060313176\t0.0019761204\t0.133921\nH\t1.0117308433\t1.4637511618\t0.0002765748\t0.133922\nH\t-0.540815069\t1.4475266138\t-0.8766437152\t0.133923\nH\t-0.5238136345\t1.4379326443\t0.9063972942\t0.133923\n1341.307\t1341.3284\t1341.365\t1562.6731\t1562.7453\t3038.3205\t3151.6034\t3151.6788\t3151.7078\nC\tC\nInChI=1S/CH4/h1H4\tInChI=1S/CH4/h1H4\n";

    #[test]
    fn parses_methane_with_units_converted_once() {
        let a = parse_molecule(METHANE, "m.xyz").unwrap();
        assert_eq!(a.formula(), "CH4");
        assert_eq!(a.energy(), Some(-40.47893 * HARTREE_EV));
        assert_eq!(a.info["qm9_index"], Value::Int(1));
        assert_eq!(a.info["A"], Value::Float(157.7118));
        assert_eq!(a.info["gap"], Value::Float(0.5048 * HARTREE_EV));
        assert_eq!(a.info["smiles"], Value::Str("C".into()));
        assert_eq!(a.positions()[1], [0.002150416, -0.0060313176, 0.0019761204]);
        assert_eq!(a.float_array("charges", 1).unwrap()[0], -0.535689);
    }

    #[test]
    fn accepts_mathematica_exponents() {
        let text = METHANE.replace("0.0080009958", "8.0009958*^-3");
        let a = parse_molecule(&text, "m.xyz").unwrap();
        assert!((a.positions()[0][2] - 8.0009958e-3).abs() < 1e-15);
    }

    #[test]
    fn malformed_files_name_the_line() {
        let cases = [
            (METHANE.replace("5\n", "6\n"), "line 8", "atom 5: expected element"),
            (METHANE.replace("gdb 1", "gdb x"), "line 2", "molecule index"),
            (METHANE.replace("\t6.469", ""), "line 2", "found 16 fields"),
            (METHANE.replace("-0.3877", "abc"), "line 2", "property homo"),
            (METHANE.replace("1.0117308433", "nan"), "line 5", "non-finite"),
            (
                METHANE.replace("H\t0.002150416", "Q\t0.002150416"),
                "line 4",
                "unknown element",
            ),
            (
                METHANE.lines().take(4).collect::<Vec<_>>().join("\n"),
                "line 4",
                "file ends before the atom 2 of 5",
            ),
            (String::new(), "m.xyz", "atom count"),
            (
                METHANE.replacen("5\n", "99999999999\n", 1),
                "line 8",
                "expected element, x, y, z, charge",
            ),
        ];
        for (text, place, message) in cases {
            let err = parse_molecule(&text, "m.xyz").unwrap_err().to_string();
            assert!(err.contains(place) && err.contains(message), "{err}");
        }
    }

    #[test]
    fn file_names_give_indices() {
        assert_eq!(index_from_name("dsgdb9nsd_000042.xyz"), Some(42));
        assert_eq!(index_from_name("qm9/dsgdb9nsd_133885.xyz"), Some(133885));
        assert_eq!(index_from_name("README"), None);
    }
}
