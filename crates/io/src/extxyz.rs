//! Extended XYZ exactly as ASE reads and writes it.
//!
//! A frame is an atom-count line, a comment line of `key=value` pairs, and one line per atom
//! whose columns `Properties=name:type:width:…` declares (`S` string, `R` real, `I` integer,
//! `L` logical). `Lattice="ax ay az bx by bz cx cy cz"` gives the cell (rows a, b, c), with
//! `pbc` defaulting to `T T T` when a lattice is present. A comment line without any `=` is a
//! plain-xyz comment, kept as `info["comment"]`.
//!
//! The reader streams: memory is bounded by one frame, whatever the file size, and a line
//! longer than [`MAX_LINE_BYTES`] (a file without newlines) is an error once that much is
//! read. Every error names file, frame and line, and quotes at most a short [`excerpt`] of
//! the input.
//!
//! Numbers: per-atom real columns (positions, forces, …) must be finite, as every use of
//! them needs; a non-finite number there is an error naming its line. Info values are kept as
//! written, `energy=nan` included (ASE reads and writes it; `info` and `convert` show and keep
//! it); labelled data refuses non-finite labels where they become training or evaluation
//! targets (`minima_data::samples_of`).
//!
//! The writer uses shortest round-trip floats, so a frame written and read back (by minima or
//! ASE) has bit-identical numbers.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::path::Path;

use minima_atoms::{element, ArrayData, Atoms, Cell, Value};

use crate::keyval::{self, format_bool, format_float, format_value, quote_if_needed};
pub use crate::line::MAX_LINE_BYTES;
use crate::line::{read_line_bounded, Line};
use crate::number::parse_finite;
use crate::{clip, excerpt, ReadError};

/// Frame-by-frame reader over any buffered input.
pub struct ExtxyzReader<R> {
    input: R,
    source: String,
    line_no: usize,
    frame: usize,
    /// The current line as read, and as text.
    raw: Vec<u8>,
    buf: String,
    done: bool,
}

impl ExtxyzReader<Box<dyn BufRead>> {
    /// Opens a file; a name ending in `.bz2` or `.gz` is decompressed on the fly (as ASE does).
    pub fn open(path: &Path) -> Result<Self, ReadError> {
        let source = path.display().to_string();
        let compression = Compression::of(path).map_err(|m| ReadError::new(&source, m))?;
        let file = File::open(path).map_err(|e| ReadError::new(&source, format!("cannot open: {e}")))?;
        let input: Box<dyn BufRead> = match compression {
            Compression::Bzip2 => Box::new(BufReader::new(bzip2::read::MultiBzDecoder::new(BufReader::new(file)))),
            Compression::Gzip => Box::new(BufReader::new(flate2::read::MultiGzDecoder::new(BufReader::new(file)))),
            Compression::None => Box::new(BufReader::new(file)),
        };
        Ok(ExtxyzReader::new(input, source))
    }
}

/// How a file is compressed, told by its extension as ASE tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Bzip2,
    Gzip,
}

impl Compression {
    /// `.bz2` and `.gz` are read and written; `.xz`, which ASE also reads, is refused clearly
    /// rather than parsed as text.
    pub fn of(path: &Path) -> Result<Compression, String> {
        match path.extension().and_then(|e| e.to_str()) {
            Some("bz2") => Ok(Compression::Bzip2),
            Some("gz") => Ok(Compression::Gzip),
            Some("xz") => Err("xz-compressed files are not supported: decompress it (xz -d) or use .bz2/.gz".into()),
            _ => Ok(Compression::None),
        }
    }
}

/// Whether `path` names a compressed file (by its extension): such a file cannot be appended to.
pub fn is_compressed(path: &Path) -> bool {
    Compression::of(path) != Ok(Compression::None)
}

/// Reads every frame of an extxyz file into memory.
pub fn read_all(path: &Path) -> Result<Vec<Atoms>, ReadError> {
    ExtxyzReader::open(path)?.collect()
}

/// The column kinds of `Properties`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Str,
    Real,
    Int,
    Logical,
}

#[derive(Debug)]
struct Column {
    name: String,
    kind: Kind,
    width: usize,
}

/// Everything the comment line says about a frame.
struct Header {
    columns: Vec<Column>,
    cell: Option<Cell>,
    pbc: Option<[bool; 3]>,
    info: indexmap::IndexMap<String, Value>,
}

impl<R: BufRead> ExtxyzReader<R> {
    pub fn new(input: R, source: impl Into<String>) -> Self {
        ExtxyzReader {
            input,
            source: source.into(),
            line_no: 0,
            frame: 0,
            raw: Vec::new(),
            buf: String::new(),
            done: false,
        }
    }

    fn error(&self, message: impl Into<String>) -> ReadError {
        self.error_at(self.line_no, message)
    }

    fn error_at(&self, line: usize, message: impl Into<String>) -> ReadError {
        ReadError::new(self.source.clone(), message).at(self.frame, line)
    }

    /// Reads the next line into `buf`; `false` at end of input.
    fn next_line(&mut self) -> Result<bool, ReadError> {
        self.raw.clear();
        self.buf.clear();
        match read_line_bounded(&mut self.input, &mut self.raw, MAX_LINE_BYTES) {
            Ok(Line::End) => Ok(false),
            Ok(Line::Complete) => {
                self.line_no += 1;
                let text = std::str::from_utf8(&self.raw).map_err(|_| self.error("line is not UTF-8 text"))?;
                self.buf.push_str(text);
                Ok(true)
            }
            Ok(Line::TooLong) => {
                self.line_no += 1;
                Err(self.error(format!(
                    "line is longer than {MAX_LINE_BYTES} bytes (no newline?): not an extxyz file"
                )))
            }
            // The line that could not be read is the next one.
            Err(e) => Err(self.error_at(self.line_no + 1, format!("read failed: {e}"))),
        }
    }

    fn read_frame(&mut self) -> Result<Option<Atoms>, ReadError> {
        if !self.next_line()? {
            return self.end_of_input();
        }
        if self.buf.trim().is_empty() {
            // Blank lines may trail the last frame, nothing else may follow them.
            while self.next_line()? {
                if !self.buf.trim().is_empty() {
                    return Err(self.error("blank line where an atom count was expected"));
                }
            }
            return self.end_of_input();
        }
        let count_text = self.buf.trim();
        let natoms: usize = count_text.parse().map_err(|_| {
            self.error(format!(
                "atom count {} is not a non-negative integer",
                excerpt(count_text)
            ))
        })?;
        if !self.next_line()? {
            return Err(self.error("file ends before the comment line"));
        }
        let header = parse_header(&self.buf).map_err(|m| self.error(m))?;
        self.read_atoms(natoms, header).map(Some)
    }

    fn end_of_input(&self) -> Result<Option<Atoms>, ReadError> {
        if self.frame == 0 {
            Err(ReadError::new(self.source.clone(), "empty file: no frame found"))
        } else {
            Ok(None)
        }
    }

    fn read_atoms(&mut self, natoms: usize, header: Header) -> Result<Atoms, ReadError> {
        let expected: usize = header.columns.iter().map(|c| c.width).sum();
        // The count line is untrusted: never reserve more than a sane amount up front.
        let reserve = natoms.min(1 << 16);
        let mut data: Vec<ArrayData> = header
            .columns
            .iter()
            .map(|c| match c.kind {
                Kind::Str => ArrayData::Str(Vec::with_capacity(reserve * c.width)),
                Kind::Real => ArrayData::Float(Vec::with_capacity(reserve * c.width)),
                Kind::Int => ArrayData::Int(Vec::with_capacity(reserve * c.width)),
                Kind::Logical => ArrayData::Bool(Vec::with_capacity(reserve * c.width)),
            })
            .collect();
        let first_atom_line = self.line_no + 1;
        for atom in 0..natoms {
            if !self.next_line()? {
                return Err(self.error(format!(
                    "file ends after {atom} of {natoms} atoms (truncated frame, or count line wrong)"
                )));
            }
            let fields: Vec<&str> = self.buf.split_whitespace().collect();
            if fields.len() != expected {
                return Err(self.error(format!(
                    "atom {atom} has {} columns, Properties declares {expected}",
                    fields.len()
                )));
            }
            let mut fields = fields.into_iter();
            for (column, values) in header.columns.iter().zip(data.iter_mut()) {
                for text in fields.by_ref().take(column.width) {
                    push_field(values, text)
                        .map_err(|m| self.error(format!("atom {atom}, column {}: {m}", clip(&column.name))))?;
                }
            }
        }
        self.build(header, data, first_atom_line)
    }

    /// The frame from its columns; atom `k` was read from line `first_atom_line + k`.
    fn build(&self, header: Header, data: Vec<ArrayData>, first_atom_line: usize) -> Result<Atoms, ReadError> {
        let mut numbers = None;
        let mut positions = None;
        let mut extra = Vec::new();
        for (column, values) in header.columns.into_iter().zip(data) {
            match (column.name.as_str(), values, column.width) {
                ("species", ArrayData::Str(symbols), 1) => {
                    let zs = symbols
                        .iter()
                        .enumerate()
                        .map(|(atom, s)| {
                            element::by_symbol(s).map(|e| e.number).ok_or_else(|| {
                                self.error_at(
                                    first_atom_line + atom,
                                    format!("atom {atom}: unknown element symbol {}", excerpt(s)),
                                )
                            })
                        })
                        .collect::<Result<Vec<u8>, _>>()?;
                    numbers = Some(zs);
                }
                ("Z", ArrayData::Int(zs), 1) if numbers.is_none() => {
                    let zs = zs
                        .iter()
                        .enumerate()
                        .map(|(atom, &z)| {
                            u8::try_from(z)
                                .ok()
                                .filter(|&z| element::by_number(z).is_some())
                                .ok_or_else(|| {
                                    self.error_at(
                                        first_atom_line + atom,
                                        format!("atom {atom}: unknown atomic number {z}"),
                                    )
                                })
                        })
                        .collect::<Result<Vec<u8>, _>>()?;
                    numbers = Some(zs);
                }
                ("pos", ArrayData::Float(flat), 3) => {
                    positions = Some(flat.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect::<Vec<_>>());
                }
                (_, values, width) => extra.push((column.name, width, values)),
            }
        }
        let numbers = numbers.expect("parse_properties requires species:S:1 or Z:I:1");
        let positions = positions.expect("parse_properties requires pos:R:3");
        let mut atoms = Atoms::new(numbers, positions).map_err(|e| self.error(e.to_string()))?;
        if let Some(cell) = header.cell {
            atoms = atoms.with_cell(cell, header.pbc.unwrap_or([true; 3]));
        }
        for (name, width, values) in extra {
            atoms
                .set_array(&name, width, values)
                .map_err(|e| self.error(e.to_string()))?;
        }
        atoms.info = header.info;
        Ok(atoms)
    }
}

impl<R: BufRead> Iterator for ExtxyzReader<R> {
    type Item = Result<Atoms, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.read_frame() {
            Ok(Some(atoms)) => {
                self.frame += 1;
                Some(Ok(atoms))
            }
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                // After an error the stream position is unreliable: stop.
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

fn push_field(values: &mut ArrayData, text: &str) -> Result<(), String> {
    match values {
        ArrayData::Str(v) => v.push(text.to_string()),
        ArrayData::Float(v) => v.push(parse_finite(text)?),
        ArrayData::Int(v) => v.push(
            text.parse()
                .map_err(|_| format!("{} is not an integer", excerpt(text)))?,
        ),
        ArrayData::Bool(v) => {
            v.push(keyval::parse_bool(text).ok_or_else(|| format!("{} is not T or F", excerpt(text)))?)
        }
    }
    Ok(())
}

fn parse_header(line: &str) -> Result<Header, String> {
    let mut header = Header {
        columns: parse_properties("species:S:1:pos:R:3")?,
        cell: None,
        pbc: None,
        info: indexmap::IndexMap::new(),
    };
    let line = line.trim_end_matches(['\n', '\r']);
    if !line.contains('=') {
        if !line.trim().is_empty() {
            header
                .info
                .insert("comment".into(), Value::Str(line.trim().to_string()));
        }
        return Ok(header);
    }
    for (key, (value, raw)) in keyval::parse_line(line)? {
        match key.as_str() {
            "Properties" => header.columns = parse_properties(&raw)?,
            "Lattice" => {
                let cell = Cell::new(parse_lattice(&value)?).map_err(|e| format!("Lattice: {e}"))?;
                header.cell = Some(cell);
            }
            "pbc" => {
                header.pbc = Some(match value {
                    Value::Bools(b) if b.len() == 3 => [b[0], b[1], b[2]],
                    Value::Bool(b) => [b; 3],
                    _ => return Err(format!("pbc={} is not three T/F values", excerpt(&raw))),
                })
            }
            _ => {
                header.info.insert(key, value);
            }
        }
    }
    if header.cell.is_none() && header.pbc.is_some_and(|p| p.iter().any(|&x| x)) {
        return Err("pbc is true along an axis but no Lattice is given".into());
    }
    Ok(header)
}

fn parse_lattice(value: &Value) -> Result<[[f64; 3]; 3], String> {
    let numbers: Vec<f64> = match value {
        Value::Floats(v) => v.clone(),
        Value::Ints(v) => v.iter().map(|&i| i as f64).collect(),
        _ => Vec::new(),
    };
    if numbers.len() != 9 {
        return Err("Lattice must hold 9 numbers (a, b, c vectors)".into());
    }
    if numbers.iter().any(|x| !x.is_finite()) {
        return Err("Lattice holds a non-finite number".into());
    }
    Ok([
        [numbers[0], numbers[1], numbers[2]],
        [numbers[3], numbers[4], numbers[5]],
        [numbers[6], numbers[7], numbers[8]],
    ])
}

/// Parses `Properties` and checks that it has the columns every frame needs.
fn parse_properties(text: &str) -> Result<Vec<Column>, String> {
    let fields: Vec<&str> = text.split(':').collect();
    if !fields.len().is_multiple_of(3) || text.is_empty() {
        return Err(format!(
            "Properties={} is not a list of name:type:width triples",
            excerpt(text)
        ));
    }
    let columns = fields
        .chunks_exact(3)
        .map(|f| {
            let kind = match f[1] {
                "S" => Kind::Str,
                "R" => Kind::Real,
                "I" => Kind::Int,
                "L" => Kind::Logical,
                other => {
                    return Err(format!(
                        "Properties: unknown column type {} of {}",
                        excerpt(other),
                        excerpt(f[0])
                    ))
                }
            };
            let width = f[2].parse::<usize>().ok().filter(|&w| w > 0).ok_or_else(|| {
                format!(
                    "Properties: width {} of {} is not a positive integer",
                    excerpt(f[2]),
                    excerpt(f[0])
                )
            })?;
            Ok(Column {
                name: f[0].to_string(),
                kind,
                width,
            })
        })
        .collect::<Result<Vec<Column>, String>>()?;
    let has = |name: &str, kind: Kind, width: usize| {
        columns
            .iter()
            .any(|c| c.name == name && c.kind == kind && c.width == width)
    };
    if !has("pos", Kind::Real, 3) {
        return Err("Properties has no pos:R:3 column".into());
    }
    if !has("species", Kind::Str, 1) && !has("Z", Kind::Int, 1) {
        return Err("Properties has neither species:S:1 nor Z:I:1".into());
    }
    let mut names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
    names.sort_unstable();
    if let Some(pair) = names.windows(2).find(|p| p[0] == p[1]) {
        return Err(format!("Properties names column {} twice", excerpt(pair[0])));
    }
    Ok(columns)
}

/// Writes one frame in ASE's layout: Lattice, Properties, info, pbc.
pub fn write_frame<W: Write + ?Sized>(out: &mut W, atoms: &Atoms) -> io::Result<()> {
    writeln!(out, "{}", atoms.len())?;
    let mut comment = Vec::new();
    if let Some(cell) = atoms.cell() {
        let numbers: Vec<String> = cell.vectors().iter().flatten().map(|&x| format_float(x)).collect();
        comment.push(format!("Lattice=\"{}\"", numbers.join(" ")));
    }
    let mut properties = String::from("species:S:1:pos:R:3");
    for (name, array) in atoms.arrays() {
        let kind = match array.data {
            ArrayData::Float(_) => 'R',
            ArrayData::Int(_) => 'I',
            ArrayData::Bool(_) => 'L',
            ArrayData::Str(_) => 'S',
        };
        properties.push_str(&format!(":{name}:{kind}:{}", array.width));
    }
    comment.push(format!("Properties={properties}"));
    for (key, value) in &atoms.info {
        comment.push(format!("{}={}", quote_if_needed(key), format_value(value)));
    }
    let pbc = atoms.pbc().map(format_bool);
    comment.push(format!("pbc=\"{} {} {}\"", pbc[0], pbc[1], pbc[2]));
    writeln!(out, "{}", comment.join(" "))?;

    let mut line = String::new();
    for (atom, (e, r)) in atoms.elements().zip(atoms.positions()).enumerate() {
        line.clear();
        line.push_str(&format!(
            "{:<2} {} {} {}",
            e.symbol,
            format_float(r[0]),
            format_float(r[1]),
            format_float(r[2])
        ));
        for array in atoms.arrays().values() {
            let range = atom * array.width..(atom + 1) * array.width;
            for k in range {
                line.push(' ');
                match &array.data {
                    ArrayData::Float(v) => line.push_str(&format_float(v[k])),
                    ArrayData::Int(v) => line.push_str(&v[k].to_string()),
                    ArrayData::Bool(v) => line.push_str(format_bool(v[k])),
                    ArrayData::Str(v) => line.push_str(&v[k]),
                }
            }
        }
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// Writes all frames to `path` atomically, compressed when the name ends in `.bz2` or `.gz`.
pub fn write_all(path: &Path, frames: &[Atoms]) -> io::Result<()> {
    write_with(path, |out| frames.iter().try_for_each(|a| write_frame(out, a)))
}

/// Writes `path` atomically with what `write` produces, compressed when the name ends in
/// `.bz2` or `.gz` (streaming writers: a file of any size in the memory of one frame).
pub fn write_with(path: &Path, write: impl FnOnce(&mut dyn Write) -> io::Result<()>) -> io::Result<()> {
    let compression = Compression::of(path)
        .map_err(|m| io::Error::new(io::ErrorKind::Unsupported, format!("{}: {m}", path.display())))?;
    crate::write_atomic(path, |out| match compression {
        Compression::Bzip2 => {
            let mut compressed = bzip2::write::BzEncoder::new(out, bzip2::Compression::best());
            write(&mut compressed)?;
            compressed.finish().map(drop)
        }
        Compression::Gzip => {
            let mut compressed = flate2::write::GzEncoder::new(out, flate2::Compression::default());
            write(&mut compressed)?;
            compressed.finish().map(drop)
        }
        Compression::None => write(out),
    })
}

/// Reads frames from an in-memory string (tests, small inputs).
pub fn read_str(text: &str, source: &str) -> Result<Vec<Atoms>, ReadError> {
    ExtxyzReader::new(text.as_bytes(), source).collect()
}

/// The text of frames as they would be written to a file.
pub fn to_string(frames: &[Atoms]) -> String {
    let mut out = Vec::new();
    for a in frames {
        write_frame(&mut out, a).expect("writing to memory cannot fail");
    }
    String::from_utf8(out).expect("writer emits UTF-8")
}
