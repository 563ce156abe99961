//! Hostile input for the readers and faults for the writers: a line without end is refused in
//! bounded memory with a short error, errors name the line an atom is on, and writers name
//! the output they could not write.

use std::cell::Cell;
use std::io::{self, BufReader, Read, Write};
use std::rc::Rc;

use minima_io::extxyz::{self, ExtxyzReader, MAX_LINE_BYTES};
use minima_io::{qm9, EXCERPT_CHARS};

/// Counts the bytes read through it.
struct Counting<R> {
    inner: R,
    read: Rc<Cell<usize>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.set(self.read.get() + n);
        Ok(n)
    }
}

/// The first error of reading `input`, and how many bytes the reader took from it.
fn first_error(input: impl Read) -> (String, usize) {
    let read = Rc::new(Cell::new(0));
    let counting = BufReader::new(Counting {
        inner: input,
        read: read.clone(),
    });
    let err = ExtxyzReader::new(counting, "hostile.xyz")
        .find_map(Result::err)
        .expect("the input is refused");
    (err.to_string(), read.get())
}

/// An error fit for one line of stderr: it quotes no more than an excerpt of the input.
fn assert_short(err: &str) {
    assert!(
        err.len() < EXCERPT_CHARS + 200,
        "{} bytes: {}",
        err.len(),
        &err[..300.min(err.len())]
    );
}

/// Slack for the reader's buffer: what it may take beyond the limit before it notices.
const BUFFER_SLACK: usize = 64 << 10;

#[test]
fn a_line_without_newline_is_refused_early_with_a_short_error() {
    // 64 MB of digits and no newline: an "atom count" that never ends.
    let (err, read) = first_error(io::repeat(b'7').take(64 << 20));
    assert!(
        err.starts_with("hostile.xyz: frame 0, line 1: line is longer than"),
        "{err}"
    );
    assert_short(&err);
    assert!(read <= MAX_LINE_BYTES + BUFFER_SLACK, "read {read} bytes");

    // The same on the comment line and on an atom line, after good frames.
    let good = "2\nenergy=1.0\nH 0 0 0\nH 0 0 0.74\n";
    let comment = format!("{good}1\nenergy=");
    let (err, read) = first_error(comment.as_bytes().chain(io::repeat(b'9').take(32 << 20)));
    assert!(err.starts_with("hostile.xyz: frame 1, line 6: line is longer"), "{err}");
    assert_short(&err);
    assert!(
        read <= MAX_LINE_BYTES + BUFFER_SLACK + comment.len(),
        "read {read} bytes"
    );
    let atom = format!("{good}1\n\nH 0 0 ");
    let (err, _) = first_error(atom.as_bytes().chain(io::repeat(b'0').take(32 << 20)));
    assert!(err.starts_with("hostile.xyz: frame 1, line 7: line is longer"), "{err}");
    assert_short(&err);
}

#[test]
fn long_fields_under_the_line_limit_are_quoted_as_an_excerpt() {
    let megabyte = "Q".repeat(1 << 20);
    let cases = [
        (format!("{megabyte}\n\nH 0 0 0\n"), "frame 0, line 1: atom count \"QQQ"),
        (
            format!("1\n\n{megabyte} 0 0 0\n"),
            "frame 0, line 3: atom 0: unknown element symbol",
        ),
        (
            format!("1\n\nH 0 0 {megabyte}\n"),
            "frame 0, line 3: atom 0, column pos",
        ),
        (
            format!("1\nProperties={megabyte}\nH 0 0 0\n"),
            "frame 0, line 2: Properties=",
        ),
        (format!("1\npbc={megabyte}\nH 0 0 0\n"), "frame 0, line 2: pbc="),
        (
            format!("1\nProperties=species:S:1:pos:R:3:{megabyte}:I:1\nH 0 0 0 1.5\n"),
            "frame 0, line 3",
        ),
    ];
    for (text, place) in cases {
        let err = extxyz::read_str(&text, "long.xyz").unwrap_err().to_string();
        assert!(err.contains(place), "{}", &err[..300.min(err.len())]);
        assert_short(&err);
    }
}

#[test]
fn a_file_and_a_bzip2_bomb_without_newlines_stop_early() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("one_line.extxyz");
    std::fs::write(&plain, vec![b'x'; 2 * MAX_LINE_BYTES]).unwrap();
    let err = extxyz::read_all(&plain).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("{}: frame 0, line 1:", plain.display())),
        "{err}"
    );
    assert_short(&err);

    // Megabytes of one byte compress to almost nothing; decompressing must stop at the limit.
    let bomb = dir.path().join("bomb.extxyz.bz2");
    let mut encoder = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
    let block = vec![b'1'; 1 << 20];
    for _ in 0..((3 * MAX_LINE_BYTES) >> 20) {
        encoder.write_all(&block).unwrap();
    }
    std::fs::write(&bomb, encoder.finish().unwrap()).unwrap();
    let read = Rc::new(Cell::new(0));
    let decoder = bzip2::read::MultiBzDecoder::new(std::fs::File::open(&bomb).unwrap());
    let counting = BufReader::new(Counting {
        inner: decoder,
        read: read.clone(),
    });
    let err = ExtxyzReader::new(counting, "bomb").next().unwrap().unwrap_err();
    assert!(err.to_string().contains("line is longer"), "{err}");
    assert!(
        read.get() <= MAX_LINE_BYTES + BUFFER_SLACK,
        "decompressed {} bytes",
        read.get()
    );
    let err = extxyz::read_all(&bomb).unwrap_err().to_string();
    assert!(err.contains("bomb.extxyz.bz2: frame 0, line 1"), "{err}");
}

#[test]
fn per_atom_errors_name_the_line_the_atom_is_on() {
    // Frame 0 takes lines 1–5, frame 1 lines 6–11 (atoms 0–3 on lines 8–11).
    let frame0 = "3\nenergy=1.0\nO 0 0 0\nH 0 0 1\nH 0 1 0\n";
    let atoms1 = ["C 0 0 0", "H 0 0 1", "H 0 1 0", "H 1 0 0"];
    for (atom, line) in [(0, 8), (2, 10), (3, 11)] {
        let mut atoms = atoms1;
        let bad = atoms1[atom].replacen(&atoms1[atom][..1], "Qq", 1);
        atoms[atom] = &bad;
        let text = format!("{frame0}4\n\n{}\n", atoms.join("\n"));
        let err = extxyz::read_str(&text, "e.xyz").unwrap_err();
        assert_eq!((err.frame, err.line), (Some(1), Some(line)), "{err}");
        assert!(
            err.message
                .contains(&format!("atom {atom}: unknown element symbol \"Qq\"")),
            "{err}"
        );
    }
    // Atomic numbers in a Z column, the second of three atoms unknown.
    let text = format!("{frame0}3\nProperties=Z:I:1:pos:R:3\n8 0 0 0\n200 0 0 1\n1 0 1 0\n");
    let err = extxyz::read_str(&text, "z.xyz").unwrap_err();
    assert_eq!((err.frame, err.line), (Some(1), Some(9)), "{err}");
    assert!(err.message.contains("atom 1: unknown atomic number 200"), "{err}");
    // A bad number and a short line, each on its own atom's line.
    let text = format!("{frame0}2\n\nH 0 0 0\nH 0 x 0\n");
    let err = extxyz::read_str(&text, "n.xyz").unwrap_err();
    assert_eq!((err.frame, err.line), (Some(1), Some(9)), "{err}");
    let text = format!("{frame0}{frame0}2\n\nH 0 0\nH 0 0 1\n");
    let err = extxyz::read_str(&text, "c.xyz").unwrap_err();
    assert_eq!((err.frame, err.line), (Some(2), Some(13)), "{err}");
}

const METHANE: &str = "5\ngdb 1\t157.7118\t157.70997\t157.70699\t0.\t13.21\t-0.3877\t0.1171\t0.5048\t35.3641\t0.044749\t-40.47893\t-40.476062\t-40.475117\t-40.498597\t6.469\t\nC\t-0.0126981359\t1.0858041578\t0.0080009958\t-0.535689\nH\t0.002150416\t-0.0060313176\t0.0019761204\t0.133921\nH\t1.0117308433\t1.4637511618\t0.0002765748\t0.133922\nH\t-0.540815069\t1.4475266138\t-0.8766437152\t0.133923\nH\t-0.5238136345\t1.4379326443\t0.9063972942\t0.133923\n1341.307\t1341.3284\t1341.365\t1562.6731\t1562.7453\t3038.3205\t3151.6034\t3151.6788\t3151.7078\nC\tC\nInChI=1S/CH4/h1H4\tInChI=1S/CH4/h1H4\n";

#[test]
fn qm9_errors_name_the_line_the_atom_is_on() {
    let lines: Vec<&str> = METHANE.lines().collect();
    // Atom k is on line 3 + k.
    for atom in [0, 3, 4] {
        let mut bad = lines.clone();
        let replaced = format!("Qq{}", &lines[2 + atom][1..]);
        bad[2 + atom] = &replaced;
        let err = qm9::parse_molecule(&bad.join("\n"), "m.xyz").unwrap_err();
        assert_eq!(err.line, Some(3 + atom), "{err}");
        assert!(
            err.message.contains(&format!("atom {atom}: unknown element symbol")),
            "{err}"
        );
    }
    let text = METHANE.replace("-0.540815069", "nan");
    let err = qm9::parse_molecule(&text, "m.xyz").unwrap_err();
    assert_eq!(err.line, Some(6), "{err}");
    // The file names the molecule in a directory.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("dsgdb9nsd_000001.xyz"), METHANE).unwrap();
    let bad = METHANE.replace("H\t-0.5238136345", "Xx\t-0.5238136345");
    std::fs::write(dir.path().join("dsgdb9nsd_000002.xyz"), bad).unwrap();
    let err = qm9::read(dir.path(), Default::default()).unwrap_err().to_string();
    assert!(
        err.contains("dsgdb9nsd_000002.xyz: frame 0, line 7: atom 4: unknown element symbol \"Xx\""),
        "{err}"
    );
}

#[test]
fn an_oversized_qm9_file_is_refused_unread() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = METHANE.to_string();
    text.push_str(&" ".repeat(qm9::MAX_MOLECULE_BYTES as usize));
    std::fs::write(dir.path().join("dsgdb9nsd_000001.xyz"), text).unwrap();
    let err = qm9::read(dir.path(), Default::default()).unwrap_err().to_string();
    assert!(
        err.contains("dsgdb9nsd_000001.xyz") && err.contains("not a QM9 molecule file"),
        "{err}"
    );
    assert_short(&err);
}

#[test]
fn writers_name_the_output_they_cannot_write() {
    let dir = tempfile::tempdir().unwrap();
    // Tests run as root, which ignores permissions: a parent that is a regular file fails
    // for everyone.
    let file = dir.path().join("a_file");
    std::fs::write(&file, "").unwrap();
    let frames = extxyz::read_str("1\nenergy=1.0\nH 0 0 0\n", "f").unwrap();
    for name in ["out.extxyz", "out.extxyz.bz2"] {
        let target = file.join(name);
        let err = extxyz::write_all(&target, &frames).unwrap_err();
        assert!(err.to_string().contains(&*target.to_string_lossy()), "{err}");
        let err = extxyz::write_with(&target, |out| extxyz::write_frame(out, &frames[0])).unwrap_err();
        assert!(err.to_string().contains(&*target.to_string_lossy()), "{err}");
    }
    let target = file.join("raw.txt");
    let err = minima_io::write_atomic(&target, |out| out.write_all(b"x")).unwrap_err();
    assert!(err.to_string().contains(&*target.to_string_lossy()), "{err}");
    // No space left while writing a compressed stream: the kind survives, the output is named.
    let target = dir.path().join("full.extxyz.bz2");
    let err = extxyz::write_with(&target, |out| {
        extxyz::write_frame(out, &frames[0])?;
        Err(io::Error::from(io::ErrorKind::StorageFull))
    })
    .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::StorageFull);
    assert!(err.to_string().contains(&*target.to_string_lossy()), "{err}");
    assert!(!target.exists());
}

#[test]
fn a_broken_pipe_keeps_its_kind_through_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("p.extxyz");
    let err = extxyz::write_with(&target, |_| Err(io::Error::from(io::ErrorKind::BrokenPipe))).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
}

/// The reader's choice for non-finite numbers: info values are kept as ASE writes them (the
/// labelled-data loader refuses them as targets); per-atom reals are refused on their line.
#[test]
fn non_finite_info_is_kept_and_non_finite_columns_are_refused() {
    let text = "1\nenergy=nan stress=\"1 inf 0 0 0 0\"\nH 0 0 0\n";
    let frames = extxyz::read_str(text, "s.xyz").unwrap();
    assert!(frames[0].energy().unwrap().is_nan());
    let text = "1\nenergy=1.0\nH 0 0 0\n2\nProperties=species:S:1:pos:R:3:forces:R:3\nH 0 0 0 0 0 0\nH 0 0 1 0 nan 0\n";
    let err = extxyz::read_str(text, "f.xyz").unwrap_err().to_string();
    assert!(
        err.starts_with("f.xyz: frame 1, line 7: atom 1, column forces: non-finite"),
        "{err}"
    );
}

#[test]
fn a_read_failure_names_the_line_it_was_reading() {
    // Opening a directory succeeds on Linux; reading it fails.
    let dir = tempfile::tempdir().unwrap();
    let err = extxyz::read_all(dir.path()).unwrap_err();
    assert_eq!((err.frame, err.line), (Some(0), Some(1)), "{err}");
    assert!(err.message.starts_with("read failed"), "{err}");
}

#[test]
fn gzip_files_are_read_and_written_as_ase_does_and_xz_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let frames = minima_io::extxyz::read_str("2\nenergy=-1.5\nCu 0 0 0\nCu 0 0 2.5\n", "cu.extxyz").unwrap();
    let gz = dir.path().join("cu.extxyz.gz");
    minima_io::extxyz::write_all(&gz, &frames).unwrap();
    assert_eq!(&std::fs::read(&gz).unwrap()[..2], [0x1f, 0x8b], "a gzip stream");
    assert_eq!(minima_io::extxyz::read_all(&gz).unwrap(), frames);
    let xz = dir.path().join("cu.extxyz.xz");
    std::fs::write(&xz, b"\xfd7zXZ\0").unwrap();
    let error = minima_io::extxyz::read_all(&xz).unwrap_err().to_string();
    assert!(
        error.contains("cu.extxyz.xz") && error.contains("xz-compressed"),
        "{error}"
    );
    let error = minima_io::extxyz::write_all(&xz, &frames).unwrap_err().to_string();
    assert!(
        error.contains("cu.extxyz.xz") && error.contains("xz-compressed"),
        "{error}"
    );
}
