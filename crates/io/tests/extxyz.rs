//! extxyz: round trips, ASE's syntax variants, and every kind of bad input.

use minima_atoms::{ArrayData, Atoms, Cell, Value};
use minima_io::extxyz::{read_str, to_string};

const ASE_WRITTEN: &str = r#"2
Lattice="3.61 0.0 0.0 0.0 3.61 0.0 0.0 0.0 3.61" Properties=species:S:1:pos:R:3:forces:R:3:tags:I:1:fixed:L:1 energy=-7.123456789012345 stress="1.0 2.0 3.0 4.0 5.0 6.0 7.0 8.0 9.0" note="a b" pbc="T T F"
Cu       0.00000000       0.00000000       0.00000000       0.10000000      -0.20000000       0.30000000        0 T
Cu       1.80500000       1.80500000       0.00000000      -0.10000000       0.20000000      -0.30000000        1 F
"#;

fn sample() -> Atoms {
    let cell = Cell::new([[4.0, 0.0, 0.0], [1.0, 3.9, 0.0], [0.3, -0.2, 5.1]]).unwrap();
    let mut a = Atoms::new(
        vec![6, 1, 8],
        vec![
            [0.1, 0.2, 0.3],
            [1.0 / 3.0, -2.5e-9, 7.25],
            [3.999999999999, 1e-300, -0.0],
        ],
    )
    .unwrap()
    .with_cell(cell, [true, false, true]);
    a.set_energy(-1234.567890123456);
    a.set_forces(vec![0.1, -0.2, 0.3, 1e-12, 5.0, -6.0, 0.0, 0.0, 1.0 / 7.0])
        .unwrap();
    a.set_array("charges", 1, ArrayData::Float(vec![-0.5, 0.25, 0.25]))
        .unwrap();
    a.set_array("label", 1, ArrayData::Str(vec!["x".into(), "y".into(), "z".into()]))
        .unwrap();
    a.set_array("fixed", 1, ArrayData::Bool(vec![true, false, true]))
        .unwrap();
    a.set_array("bonds", 2, ArrayData::Int(vec![1, 2, 0, -1, 0, -1]))
        .unwrap();
    a.info.insert("qm9_index".into(), Value::Int(17));
    a.info.insert("scale".into(), Value::Float(1.0));
    a.info.insert("smiles".into(), Value::Str("C=O".into()));
    a.info.insert("stress".into(), Value::Floats(vec![1.0, 2.0, 3.0]));
    a
}

#[test]
fn written_frames_read_back_bit_identical() {
    let frames = vec![sample(), Atoms::new(vec![2], vec![[0.0; 3]]).unwrap()];
    let text = to_string(&frames);
    let back = read_str(&text, "mem").unwrap();
    assert_eq!(back, frames);
}

#[test]
fn reads_the_layout_ase_writes() {
    let frames = read_str(ASE_WRITTEN, "ase.extxyz").unwrap();
    let a = &frames[0];
    assert_eq!(a.numbers(), &[29, 29]);
    assert_eq!(a.pbc(), [true, true, false]);
    assert_eq!(a.cell().unwrap().vectors()[1], [0.0, 3.61, 0.0]);
    assert_eq!(a.energy(), Some(-7.123456789012345));
    assert_eq!(a.forces().unwrap()[3..6], [-0.1, 0.2, -0.3]);
    assert_eq!(a.array("tags").unwrap().data, ArrayData::Int(vec![0, 1]));
    assert_eq!(a.array("fixed").unwrap().data, ArrayData::Bool(vec![true, false]));
    assert_eq!(a.info["note"], Value::Str("a b".into()));
    assert_eq!(a.positions()[1], [1.805, 1.805, 0.0]);
}

#[test]
fn plain_xyz_comment_lines_and_lattice_default_pbc() {
    let plain = "1\nwater fragment, B3LYP\nO 0 0 0\n";
    let a = &read_str(plain, "p.xyz").unwrap()[0];
    assert_eq!(a.info["comment"], Value::Str("water fragment, B3LYP".into()));
    assert!(a.cell().is_none());
    let lattice = "1\nLattice=\"2 0 0 0 2 0 0 0 2\"\nAl 0 0 0\n\n\n";
    let a = &read_str(lattice, "l.xyz").unwrap()[0];
    assert_eq!(a.pbc(), [true; 3]);
    let empty_comment = "1\n\nH 0 0 0\n1\n\nH 1 1 1\n";
    assert_eq!(read_str(empty_comment, "e.xyz").unwrap().len(), 2);
}

#[test]
fn number_syntaxes_are_accepted() {
    let text = "1\nenergy=1.5D-3 x=2.0*^-6\nH 1e-3 -2.5E+1 3.\n";
    let a = &read_str(text, "n.xyz").unwrap()[0];
    assert_eq!(a.energy(), Some(1.5e-3));
    assert_eq!(a.positions()[0], [1e-3, -25.0, 3.0]);
}

/// Each bad input gives one error that names the file, the frame and the line.
#[test]
fn bad_inputs_name_file_frame_and_line() {
    let good = "1\nenergy=1.0\nH 0 0 0\n";
    let cases: &[(&str, &str, &str)] = &[
        ("", "empty file", "bad.xyz: empty file"),
        ("\n\n", "empty file", "bad.xyz: empty file"),
        (
            "2\nenergy=1\nH 0 0 0\n",
            "file ends after 1 of 2 atoms",
            "frame 0, line 3",
        ),
        ("1\n", "before the comment line", "frame 0, line 1"),
        ("x\n\nH 0 0 0\n", "not a non-negative integer", "frame 0, line 1"),
        ("-1\n\nH 0 0 0\n", "not a non-negative integer", "frame 0, line 1"),
        ("1\n\nH 0 0 nan\n", "non-finite", "frame 0, line 3"),
        ("1\n\nH 0 inf 0\n", "non-finite", "frame 0, line 3"),
        ("1\n\nH 0 zero 0\n", "not a number", "frame 0, line 3"),
        ("1\n\nXx 0 0 0\n", "unknown element symbol \"Xx\"", "frame 0, line 3"),
        (
            "1\n\nH 0 0\n",
            "has 3 columns, Properties declares 4",
            "frame 0, line 3",
        ),
        ("1\n\nH 0 0 0 0\n", "has 5 columns", "frame 0, line 3"),
        (
            "1\nLattice=\"1 0 0 0 1 0 0 0 0\"\nH 0 0 0\n",
            "singular",
            "frame 0, line 2",
        ),
        ("1\nLattice=\"1 0 0 0 1 0\"\nH 0 0 0\n", "9 numbers", "frame 0, line 2"),
        (
            "1\nProperties=species:S:1:pos:Q:3\nH 0 0 0\n",
            "unknown column type",
            "frame 0, line 2",
        ),
        ("1\nProperties=species:S:1\nH\n", "no pos:R:3", "frame 0, line 2"),
        ("1\na=\"open\nH 0 0 0\n", "unterminated", "frame 0, line 2"),
        ("1\npbc=\"T T T\"\nH 0 0 0\n", "no Lattice", "frame 0, line 2"),
        (
            "1\nProperties=species:S:1:pos:R:3:q:I:1\nH 0 0 0 1.5\n",
            "not an integer",
            "frame 0, line 3",
        ),
    ];
    for (text, message, place) in cases {
        let err = read_str(text, "bad.xyz").expect_err(text).to_string();
        assert!(err.starts_with("bad.xyz"), "{err}");
        assert!(err.contains(message), "{text:?}: {err}");
        assert!(err.contains(place), "{text:?}: {err}");
    }
    let second_frame_bad = format!("{good}{good}1\n\nH 0 0\n");
    let err = read_str(&second_frame_bad, "bad.xyz").unwrap_err();
    assert_eq!((err.frame, err.line), (Some(2), Some(9)));
    let blank_between = format!("{good}\n{good}");
    assert!(read_str(&blank_between, "bad.xyz")
        .unwrap_err()
        .to_string()
        .contains("blank line"));
}

#[test]
fn huge_atom_count_does_not_allocate_up_front() {
    let err = read_str("99999999999\n\nH 0 0 0\n", "big.xyz").unwrap_err();
    assert!(
        err.to_string().contains("file ends after 1 of 99999999999 atoms"),
        "{err}"
    );
}
