//! Fuzz-style robustness: random bytes and mutated real files never panic the readers; they
//! either parse or return an error that names the source.

use minima_io::{extxyz, qm9};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const EXTXYZ: &str = "3\nLattice=\"4.0 0.0 0.0 0.5 4.0 0.0 0.1 0.2 4.0\" Properties=species:S:1:pos:R:3:forces:R:3:tag:I:1 energy=-1.5 name=\"a b\" pbc=\"T T F\"\nC 0.1 0.2 0.3 0.0 0.1 -0.1 1\nH 1.0 0.0 0.0 0.5 0.5 0.5 0\nO 0.0 1.0 2.0 -1e-3 2.5 0.0 2\n";

const QM9: &str = "5\ngdb 1\t157.7118\t157.70997\t157.70699\t0.\t13.21\t-0.3877\t0.1171\t0.5048\t35.3641\t0.044749\t-40.47893\t-40.476062\t-40.475117\t-40.498597\t6.469\t\nC\t-0.0126981359\t1.0858041578\t0.0080009958\t-0.535689\nH\t0.002150416\t-0.0060313176\t0.0019761204\t0.133921\nH\t1.0117308433\t1.4637511618\t0.0002765748\t0.133922\nH\t-0.540815069\t1.4475266138\t-0.8766437152\t0.133923\nH\t-0.5238136345\t1.4379326443\t0.9063972942\t0.133923\n1341.307\t1341.3284\t1341.365\t1562.6731\t1562.7453\t3038.3205\t3151.6034\t3151.6788\t3151.7078\nC\tC\nInChI=1S/CH4/h1H4\tInChI=1S/CH4/h1H4\n";

/// Tokens that are likely to reach deep into the parsers when spliced in.
const SPICE: &[&str] = &[
    "nan",
    "inf",
    "-",
    "\"",
    "=",
    "\n",
    "Lattice=",
    "Properties=",
    ":R:",
    "1e999",
    "*^",
    "Xx",
    "0",
    "99999999",
    "T",
    " ",
    "\t",
    "[",
    "{",
    "\\",
];

fn mutate(rng: &mut ChaCha8Rng, text: &str) -> Vec<u8> {
    let mut bytes = text.as_bytes().to_vec();
    for _ in 0..rng.random_range(1..4) {
        let at = rng.random_range(0..=bytes.len());
        match rng.random_range(0..6) {
            0 => bytes.truncate(at),
            1 if at < bytes.len() => {
                bytes.remove(at);
            }
            2 => {
                let spice = SPICE[rng.random_range(0..SPICE.len())];
                bytes.splice(at..at, spice.bytes());
            }
            3 => bytes.insert(at, rng.random()),
            4 => {
                // Duplicate a line.
                let text = String::from_utf8_lossy(&bytes).into_owned();
                let lines: Vec<&str> = text.lines().collect();
                if !lines.is_empty() {
                    let k = rng.random_range(0..lines.len());
                    let mut out: Vec<&str> = lines.clone();
                    out.insert(k, lines[k]);
                    bytes = (out.join("\n") + "\n").into_bytes();
                }
            }
            _ if at < bytes.len() => bytes[at] = rng.random(),
            _ => {}
        }
    }
    bytes
}

fn read_extxyz(bytes: &[u8]) {
    for frame in extxyz::ExtxyzReader::new(bytes, "fuzz.extxyz") {
        match frame {
            Ok(atoms) => assert!(atoms.positions().iter().flatten().all(|x| x.is_finite())),
            Err(e) => assert!(e.to_string().starts_with("fuzz.extxyz"), "{e}"),
        }
    }
}

fn read_qm9(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    match qm9::parse_molecule(&text, "fuzz.xyz") {
        Ok(atoms) => assert!(atoms.energy().is_some_and(f64::is_finite)),
        Err(e) => assert!(e.to_string().starts_with("fuzz.xyz"), "{e}"),
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for _ in 0..5_000 {
        let len = rng.random_range(0..200);
        let bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        read_extxyz(&bytes);
        read_qm9(&bytes);
    }
}

#[test]
fn mutated_real_files_never_panic() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    assert_eq!(extxyz::read_str(EXTXYZ, "ok").unwrap().len(), 1);
    assert!(qm9::parse_molecule(QM9, "ok").is_ok());
    let two_frames = format!("{EXTXYZ}{EXTXYZ}");
    for _ in 0..20_000 {
        read_extxyz(&mutate(&mut rng, &two_frames));
        read_qm9(&mutate(&mut rng, QM9));
    }
}
