//! Data that covers what a relaxation visits, end to end: the equilibrium flag from QM9 and on
//! scan grids, rattled copies, reference-relaxed minima (killed with SIGKILL and resumed) and
//! normal-mode samples, with EMT and with xtb. The xtb tests fail without xtb, naming
//! `scripts/setup.sh --python`, unless MINIMA_SKIP_EXTERNAL=1 (see `external`).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use minima_atoms::{Atoms, Value};
use minima_data::sampling::EQUILIBRIUM;
use minima_io::extxyz;

mod common;
mod external;
use common::{minima, minima_error, path, qm9_archive};

/// `minima data COMMAND -i INPUT -o OUTPUT --reference REFERENCE`, expected to fail: its error.
fn data_error(command: &str, input: &Path, output: &Path, reference: &str) -> String {
    minima_error(&[
        "data",
        command,
        "-i",
        path(input),
        "-o",
        path(output),
        "--reference",
        reference,
    ])
}

fn flag(atoms: &Atoms) -> Option<&Value> {
    atoms.info.get(EQUILIBRIUM)
}

fn largest_force(atoms: &Atoms) -> f64 {
    atoms
        .forces()
        .unwrap()
        .chunks(3)
        .map(|f| (f[0] * f[0] + f[1] * f[1] + f[2] * f[2]).sqrt())
        .fold(0.0, f64::max)
}

/// Open Cu clusters from `data growth` (sizes 15 to `max_size`, scales given), written to `to`.
fn clusters(dir: &Path, to: &str, max_size: &str, scales: &str) -> std::path::PathBuf {
    let out = dir.join(to);
    minima(&[
        "data",
        "growth",
        "--elements",
        "Cu",
        "--seeds",
        "1",
        "--max-size",
        max_size,
        "--scales",
        scales,
        "-o",
        path(&out),
    ]);
    out
}

#[test]
fn qm9_frames_are_minima_and_scans_can_include_scale_one() {
    let dir = tempfile::tempdir().unwrap();
    let qm9 = dir.path().join("qm9.extxyz");
    minima(&[
        "convert",
        "--from",
        "qm9",
        path(&qm9_archive()),
        "-o",
        path(&qm9),
        "--first",
        "5",
    ]);
    let frames = extxyz::read_all(&qm9).unwrap();
    assert!(!frames.is_empty() && frames.iter().all(|a| flag(a) == Some(&Value::Bool(true))));
    assert!(std::fs::read_to_string(&qm9).unwrap().contains("equilibrium=T"));

    let scan = dir.path().join("scan.extxyz");
    let qm9_arg = path(&qm9_archive()).to_string();
    let args = [
        "data",
        "qm9-scan",
        "--qm9",
        &qm9_arg,
        "--molecules",
        "2",
        "-o",
        path(&scan),
    ];
    minima(&args);
    let plain = extxyz::read_all(&scan).unwrap();
    assert_eq!(plain.len(), 20);
    assert!(!plain.iter().any(|a| a.scale() == Some(1.0)));
    minima(&[&args[..], &["--with-equilibrium"]].concat());
    let with_one = extxyz::read_all(&scan).unwrap();
    assert_eq!(with_one.len(), 22);
    let ones: Vec<&Atoms> = with_one.iter().filter(|a| a.scale() == Some(1.0)).collect();
    assert_eq!(ones.len(), 2);
    // The scale-1 frame is QM9's geometry itself (scaled by 1 about its centroid: to rounding).
    let originals = minima_io::qm9::read(
        &qm9_archive(),
        minima_io::qm9::Selection {
            max_index: Some(2),
            ..Default::default()
        },
    )
    .unwrap();
    for (a, b) in ones[0].positions().iter().zip(originals[0].positions()) {
        assert!((0..3).all(|k| (a[k] - b[k]).abs() < 1e-12), "{a:?} {b:?}");
    }

    let fcc = dir.path().join("fcc.extxyz");
    minima(&[
        "data",
        "fcc",
        "--scales",
        "0.9:1.5:4",
        "--with-equilibrium",
        "-o",
        path(&fcc),
    ]);
    assert_eq!(extxyz::read_all(&fcc).unwrap().len(), 10);
}

#[test]
fn rattled_copies_count_reproduce_and_stay_with_their_base_structure() {
    let dir = tempfile::tempdir().unwrap();
    let fcc = dir.path().join("fcc.extxyz");
    minima(&["data", "fcc", "--scales", "0.95:1.05:2", "-o", path(&fcc)]);
    let input = clusters(dir.path(), "clusters.extxyz", "16", "1:1:1");
    let mut frames = extxyz::read_all(&fcc).unwrap();
    frames.extend(extxyz::read_all(&input).unwrap());
    let both = dir.path().join("both.extxyz");
    extxyz::write_all(&both, &frames).unwrap();

    let out = dir.path().join("rattled.extxyz");
    let args = [
        "data",
        "rattle",
        "-i",
        path(&both),
        "-o",
        path(&out),
        "--amplitudes",
        "0.05,0.1,0.2",
        "--copies",
        "2",
        "--seed",
        "4",
    ];
    minima(&args);
    let rattled = extxyz::read_all(&out).unwrap();
    assert_eq!(rattled.len(), frames.len() * 3 * 2);
    let first = std::fs::read(&out).unwrap();
    minima(&args);
    assert_eq!(std::fs::read(&out).unwrap(), first, "the same seed gives the same file");
    for atoms in &rattled {
        assert_eq!(flag(atoms), Some(&Value::Bool(false)));
        let base = &frames[atoms.info["base_frame"].as_i64().unwrap() as usize];
        // Same provenance, same group, so a split keeps the copies with their base.
        assert_eq!(minima_data::group_key(atoms, 0), minima_data::group_key(base, 0));
        assert_eq!(atoms.cell(), base.cell());
        assert!(atoms.info.contains_key("rattle_seed") && atoms.info.contains_key("rattle_amplitude"));
    }
    let err = minima_error(&[
        "data",
        "rattle",
        "-i",
        path(&both),
        "-o",
        path(&out),
        "--amplitudes",
        "0.1,-1",
    ]);
    assert!(err.contains("--amplitudes: -1 is not a positive length"), "{err}");
}

#[test]
fn emt_minima_converge_record_failures_and_sample_normal_modes() {
    let dir = tempfile::tempdir().unwrap();
    // A dimer, a triangle and a tetrahedron of Cu, off their minima: they relax to minima (a
    // larger cluster may stop at a saddle, which normal-mode sampling then refuses).
    let cu = |positions: Vec<[f64; 3]>| Atoms::new(vec![29; positions.len()], positions).unwrap();
    let mut frames = vec![
        cu(vec![[0.0; 3], [0.0, 0.0, 2.7]]),
        cu(vec![[0.0; 3], [2.6, 0.0, 0.0], [1.2, 2.1, 0.3]]),
        cu(vec![[0.0; 3], [2.5, 0.0, 0.1], [1.3, 2.2, 0.0], [1.25, 0.7, 2.1]]),
    ];
    // A recorded scale becomes base_scale: the minimum lies on no scan line.
    frames[0].info.insert("scale".into(), Value::Float(1.3));
    // EMT has no parameters for Fe: that frame must fail, not get a label.
    frames.push(Atoms::new(vec![26, 29], vec![[0.0; 3], [0.0, 0.0, 2.4]]).unwrap());
    let input = dir.path().join("clusters.extxyz");
    extxyz::write_all(&input, &frames).unwrap();
    let relaxed = dir.path().join("relaxed.extxyz");
    let err = data_error("relaxed", &input, &relaxed, "emt");
    assert!(err.contains("1 of 4 frames failed (frames 3)"), "{err}");
    let failed = std::fs::read_to_string(dir.path().join("relaxed.extxyz.failed")).unwrap();
    assert!(failed.starts_with("3\tEMT has no parameters for Fe\t"), "{failed}");
    let minima_frames = extxyz::read_all(&relaxed).unwrap();
    assert_eq!(minima_frames.len(), 3);
    assert_eq!(minima_frames[0].scale(), None);
    assert_eq!(minima_frames[0].info["base_scale"], Value::Float(1.3));
    for atoms in &minima_frames {
        assert_eq!(flag(atoms), Some(&Value::Bool(true)));
        assert!(largest_force(atoms) < 0.01);
        assert_eq!(atoms.info["calculator"], Value::Str("emt".into()));
    }
    // A relaxation given too few steps is a failure with its reason.
    let short = dir.path().join("short.extxyz");
    minima_error(&[
        "data",
        "relaxed",
        "-i",
        path(&input),
        "-o",
        path(&short),
        "--reference",
        "emt",
        "--steps",
        "2",
    ]);
    let failed = std::fs::read_to_string(dir.path().join("short.extxyz.failed")).unwrap();
    assert!(failed.contains("relaxation not converged: step limit"), "{failed}");

    let samples = dir.path().join("samples.extxyz");
    let nm = [
        "data",
        "normal-modes",
        "-i",
        path(&relaxed),
        "-o",
        path(&samples),
        "--reference",
        "emt",
        "--samples",
        "4",
        "--seed",
        "2",
    ];
    minima(&nm);
    let sampled = extxyz::read_all(&samples).unwrap();
    assert_eq!(sampled.len(), 12);
    for atoms in &sampled {
        assert_eq!(flag(atoms), Some(&Value::Bool(false)));
        assert!(atoms.energy().is_none());
        let base = &minima_frames[atoms.info["base_frame"].as_i64().unwrap() as usize];
        let moved = (0..atoms.len())
            .map(|i| {
                let (a, b) = (atoms.positions()[i], base.positions()[i]);
                ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)).sqrt()
            })
            .fold(0.0, f64::max);
        // Thermal displacements at 300 K: hundredths to tenths of an Å.
        assert!(moved > 1e-3 && moved < 0.5, "{moved}");
    }
    // They label: `minima label` gives them energies and forces, still equilibrium=F.
    let labelled = dir.path().join("labelled.extxyz");
    minima(&["label", "--calc", "emt", "-i", path(&samples), "-o", path(&labelled)]);
    let labelled = extxyz::read_all(&labelled).unwrap();
    assert!(labelled
        .iter()
        .all(|a| a.energy().is_some() && flag(a) == Some(&Value::Bool(false))));

    // Frames that are not minima are listed as failed; the others are sampled.
    let err = data_error("normal-modes", &input, &samples, "emt");
    assert!(err.contains("4 of 4 frames failed"), "{err}");
    let failed = std::fs::read_to_string(dir.path().join("samples.extxyz.failed")).unwrap();
    assert!(failed.contains("not marked equilibrium=T"), "{failed}");
}

#[test]
fn a_relaxation_run_killed_with_sigkill_resumes_with_nothing_lost_or_repeated() {
    let dir = tempfile::tempdir().unwrap();
    let input = clusters(dir.path(), "clusters.extxyz", "40", "1.2:1.3:2");
    let count = extxyz::read_all(&input).unwrap().len();
    let output = dir.path().join("relaxed.extxyz");
    let relax = |out: &Path| {
        vec![
            "data".to_string(),
            "relaxed".into(),
            "-i".into(),
            path(&input).into(),
            "-o".into(),
            path(out).into(),
            "--reference".into(),
            "emt".into(),
        ]
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_minima"))
        .args(relax(&output))
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while std::fs::read_to_string(&output).map_or(0, |t| t.matches("label_index=").count()) < 3 {
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "the relaxations made no progress"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let journal = extxyz::read_all(&output).map(|f| f.len()).unwrap_or(0);
    assert!(journal < count, "killed after {journal} of {count}");

    let resumed = minima(&relax(&output).iter().map(String::as_str).collect::<Vec<_>>());
    let said = String::from_utf8_lossy(&resumed.stdout);
    assert!(said.contains("done before"), "{said}");
    let straight = dir.path().join("straight.extxyz");
    minima(&relax(&straight).iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(std::fs::read(&output).unwrap(), std::fs::read(&straight).unwrap());
    let frames = extxyz::read_all(&output).unwrap();
    let indices: Vec<i64> = frames.iter().map(|a| a.info["label_index"].as_i64().unwrap()).collect();
    assert_eq!(indices, (0..count as i64).collect::<Vec<_>>());
}

/// Methane with one C–H bond stretched (not water: a planar molecule's relaxation leaves
/// off-plane coordinates of 1e-17 Å that today's neighbour list cannot bin).
fn methane(dir: &Path) -> std::path::PathBuf {
    let atoms = Atoms::new(
        vec![6, 1, 1, 1, 1],
        vec![
            [0.0; 3],
            [0.72, 0.72, 0.72],
            [-0.63, -0.63, 0.63],
            [-0.63, 0.63, -0.63],
            [0.63, -0.63, -0.63],
        ],
    )
    .unwrap();
    let file = dir.join("methane.extxyz");
    extxyz::write_all(&file, &[atoms]).unwrap();
    file
}

#[test]
fn xtb_minima_and_their_hessian_in_ev_per_square_angstrom() {
    if !external::available("xtb") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = methane(dir.path());
    let relaxed = dir.path().join("relaxed.extxyz");
    minima(&[
        "data",
        "relaxed",
        "-i",
        path(&input),
        "-o",
        path(&relaxed),
        "--reference",
        "xtb",
    ]);
    let minimum = extxyz::read_all(&relaxed).unwrap().remove(0);
    assert_eq!(flag(&minimum), Some(&Value::Bool(true)));
    assert!(largest_force(&minimum) < 0.01);

    // xtb's Hessian, converted once, equals central differences of its own forces.
    let xtb = minima_label::Xtb::default();
    let analytic = xtb.hessian(&minimum).unwrap();
    let numeric = minima_explore::minimum::finite_difference_hessian(&xtb, &minimum, 0.005).unwrap();
    let scale = analytic.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    let worst = analytic
        .iter()
        .zip(&numeric)
        .map(|(a, n)| (a - n).abs())
        .fold(0.0, f64::max);
    assert!(
        scale > 10.0 && worst < 0.02 * scale,
        "largest {scale} eV/Å², worst difference {worst}"
    );
    let modes = minima_data::sampling::normal_modes(&minimum, &analytic).unwrap();
    assert_eq!(modes.vectors.len(), 9);

    let samples = dir.path().join("samples.extxyz");
    minima(&[
        "data",
        "normal-modes",
        "-i",
        path(&relaxed),
        "-o",
        path(&samples),
        "--reference",
        "xtb",
        "--samples",
        "3",
    ]);
    assert_eq!(extxyz::read_all(&samples).unwrap().len(), 3);
}
