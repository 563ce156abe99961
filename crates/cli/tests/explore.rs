//! Explore end to end: relaxation checked against physics (xtb's own optimiser), energy curves
//! with their minima and figures, the re-optimisation benchmark and molecule assembly. Needs
//! the `xtb` program, which `scripts/test.sh` installs; fails (not skips) without it.

use std::path::Path;
use std::process::Command;

use minima_atoms::{Atoms, Vec3};
use minima_io::extxyz;
use rand::{Rng, SeedableRng};

mod common;
use common::{copper_crystal, minima, minima_error, path, qm9_archive};

/// QM9 molecule `index` (1-based, as QM9 numbers them).
fn qm9_molecule(dir: &Path, index: usize) -> Atoms {
    let file = dir.join("qm9_head.extxyz");
    minima(&[
        "convert",
        "--from",
        "qm9",
        path(&qm9_archive()),
        "--first",
        &index.to_string(),
        "-o",
        path(&file),
    ]);
    let frames = extxyz::read_all(&file).unwrap();
    let molecule = frames
        .into_iter()
        .find(|f| f.info["qm9_index"].as_i64() == Some(index as i64))
        .unwrap();
    Atoms::new(molecule.numbers().to_vec(), molecule.positions().to_vec()).unwrap()
}

/// xtb's own optimisation (its ANCopt, `--opt extreme`), at the accuracy minima's xtb uses.
fn xtb_optimised(molecule: &Atoms, dir: &Path) -> Atoms {
    let mut xyz = format!("{}\n\n", molecule.len());
    for (e, r) in molecule.elements().zip(molecule.positions()) {
        xyz += &format!("{} {:.10} {:.10} {:.10}\n", e.symbol, r[0], r[1], r[2]);
    }
    std::fs::write(dir.join("start.xyz"), xyz).unwrap();
    let out = Command::new("xtb")
        .args(["start.xyz", "--gfn", "2", "--opt", "extreme", "--acc", "1"])
        .env("OMP_NUM_THREADS", "1")
        .current_dir(dir)
        .output()
        .expect("xtb runs (scripts/setup.sh --python installs it)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(dir.join("xtbopt.xyz")).unwrap();
    let positions: Vec<Vec3> = text
        .lines()
        .skip(2)
        .take(molecule.len())
        .map(|line| {
            let f: Vec<f64> = line.split_whitespace().skip(1).map(|x| x.parse().unwrap()).collect();
            [f[0], f[1], f[2]]
        })
        .collect();
    Atoms::new(molecule.numbers().to_vec(), positions).unwrap()
}

/// Largest change of any interatomic distance from `reference` (Å): the geometry without
/// its position and orientation, which cost no energy.
fn largest_deviation(atoms: &Atoms, reference: &Atoms) -> f64 {
    let mut largest: f64 = 0.0;
    for i in 0..atoms.len() {
        for j in i + 1..atoms.len() {
            largest = largest.max((atoms.distance(i, j) - reference.distance(i, j)).abs());
        }
    }
    largest
}

#[test]
fn relaxing_perturbed_ethanol_with_xtb_reaches_xtbs_own_minimum() {
    let dir = tempfile::tempdir().unwrap();
    let ethanol = qm9_molecule(dir.path(), 14);
    assert_eq!(ethanol.formula(), "C2H6O");
    let minimum = xtb_optimised(&ethanol, dir.path());
    // Every coordinate moved by up to ±0.15 Å (seeded).
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(14);
    let mut start = minimum.clone();
    start
        .set_positions(
            minimum
                .positions()
                .iter()
                .map(|r| r.map(|x| x + rng.random_range(-0.15..0.15)))
                .collect(),
        )
        .unwrap();
    assert!(largest_deviation(&start, &minimum) > 0.1);
    let input = dir.path().join("perturbed.extxyz");
    extxyz::write_all(&input, &[start]).unwrap();
    for optimizer in ["fire", "lbfgs"] {
        let output = dir.path().join(format!("relaxed_{optimizer}.extxyz"));
        let trajectory = dir.path().join(format!("trajectory_{optimizer}.extxyz"));
        let out = minima(&[
            "relax",
            "--reference",
            "xtb",
            "-i",
            path(&input),
            "-o",
            path(&output),
            "--fmax",
            "0.01",
            "--optimizer",
            optimizer,
            "--trajectory",
            path(&trajectory),
        ]);
        let report = String::from_utf8_lossy(&out.stdout);
        assert!(report.contains("converged after"), "{report}");
        let relaxed = extxyz::read_all(&output).unwrap().remove(0);
        let deviation = largest_deviation(&relaxed, &minimum);
        println!("{optimizer}: distances within {deviation:.4} Å of xtb's minimum");
        assert!(deviation < 0.05, "{optimizer}: {deviation} Å from xtb's minimum");
        let steps = extxyz::read_all(&trajectory).unwrap();
        assert!(steps.len() > 2 && steps.iter().all(|s| s.energy().is_some() && s.forces().is_some()));
        // The energy went down from the perturbed start.
        assert!(steps.last().unwrap().energy().unwrap() < steps[0].energy().unwrap());
    }
}

#[test]
fn curve_writes_csv_json_and_figures_with_the_minimum() {
    let dir = tempfile::tempdir().unwrap();
    let crystal = copper_crystal(dir.path());
    let stem = dir.path().join("cu_curve");
    let out = minima(&["curve", "--reference", "emt", "-i", path(&crystal), "-o", path(&stem)]);
    let report = String::from_utf8_lossy(&out.stdout);
    // EMT's copper lattice constant (3.59 Å) over the experimental 3.615 Å the crystal is built at.
    let scale: f64 = report
        .split("minimum at scale ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{report}"));
    assert!((scale * 3.615 - 3.59).abs() < 0.02, "{scale}");
    let csv = std::fs::read_to_string(stem.with_extension("csv")).unwrap();
    assert_eq!(csv.lines().count(), 77);
    assert!(std::fs::read_to_string(stem.with_extension("svg"))
        .unwrap()
        .contains("emt minimum"));
    assert!(std::fs::metadata(stem.with_extension("png")).unwrap().len() > 10_000);
}

#[test]
fn bench_relax_and_assemble_produce_their_tables() {
    let dir = tempfile::tempdir().unwrap();
    let stem = dir.path().join("bench");
    let out = minima(&[
        "bench-relax",
        "--reference",
        "xtb",
        "-i",
        path(&qm9_archive()),
        "--smallest",
        "3",
        "--random",
        "2",
        "-o",
        path(&stem),
    ]);
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains("ΔP Å") && report.contains("|ΔE_g| eV"), "{report}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(stem.with_extension("json")).unwrap()).unwrap();
    let molecules = json["molecules"].as_array().unwrap();
    assert_eq!(molecules.len(), 5);
    // xtb relaxes the perturbed QM9 (B3LYP) geometries close to where they started from.
    for m in molecules {
        assert!(m["delta_p"].as_f64().unwrap() < 0.15, "{m}");
    }
    assert!(std::fs::metadata(stem.with_extension("png")).is_ok());

    let assembled = dir.path().join("assemble.json");
    let out = minima(&[
        "assemble",
        "--reference",
        "xtb",
        "-i",
        path(&qm9_archive()),
        "--molecules",
        "2",
        "-o",
        path(&assembled),
    ]);
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains("bonds reformed in"), "{report}");
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(assembled).unwrap()).unwrap();
    for m in json["molecules"].as_array().unwrap() {
        assert!(
            m["broken"].as_u64().unwrap() >= 1,
            "moving a group breaks its bond: {m}"
        );
    }
}

#[test]
fn bad_input_to_explore_gets_one_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = |name: &str| dir.path().join(name);
    std::fs::write(d("h2.extxyz"), "2\n\nH 0 0 0\nH 0 0 0.74\n").unwrap();
    std::fs::write(d("fe2.extxyz"), "2\n\nFe 0 0 0\nFe 0 0 2.5\n").unwrap();
    std::fs::write(d("truncated.extxyz"), "3\n\nH 0 0 0\nH 0 0 1\n").unwrap();
    let (h2, fe2, truncated, out) = (d("h2.extxyz"), d("fe2.extxyz"), d("truncated.extxyz"), d("out"));
    let (h2, fe2, truncated, out) = (path(&h2), path(&fe2), path(&truncated), path(&out));
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["curve", "-i", h2, "-o", out],
            "give --model CHECKPOINT, --reference CALCULATOR",
        ),
        (
            vec!["curve", "--reference", "nosuch", "-i", h2, "-o", out],
            "unknown calculator \"nosuch\"",
        ),
        (
            vec!["curve", "--reference", "emt", "-i", h2, "--scales", "1:0.5", "-o", out],
            "is not start:stop:count",
        ),
        (
            vec!["relax", "--reference", "emt", "-i", h2, "--frame", "5", "-o", out],
            "frame 5 asked for, the file has 1",
        ),
        (
            vec!["relax", "--reference", "emt", "-i", truncated, "-o", out],
            "truncated.extxyz: frame 0",
        ),
        (
            vec!["relax", "--reference", "emt", "-i", fe2, "-o", out],
            "EMT has no parameters for Fe",
        ),
        (
            vec!["relax", "--reference", "emt", "-i", h2, "--fmax=-1", "-o", out],
            "must be positive",
        ),
        (
            vec!["relax", "--reference", "emt", "--model", h2, "-i", h2, "-o", out],
            "not both",
        ),
        (
            vec!["assemble", "--reference", "emt", "-i", h2, "--groups", "3", "-o", out],
            "--groups is 1 or 2",
        ),
        (
            vec![
                "contributions",
                "--reference",
                "emt",
                "-i",
                fe2,
                "--move-atom",
                "9",
                "-o",
                out,
            ],
            "atom 9 asked for",
        ),
        (
            vec!["contributions", "--reference", "xtb", "-i", h2, "-o", out],
            "xtb gives no per-atom energies",
        ),
    ];
    for (args, expected) in cases {
        // The first line says it all (clap adds a `--help` hint below its own).
        let error = minima_error(&args);
        let first = error.lines().next().unwrap_or_default();
        assert!(first.contains(expected), "minima {args:?}: {error}");
    }
}

/// Copper clusters of `seeds` growths (14-15 atoms) relaxed with EMT to fmax 0.001: minima.
fn emt_copper_clusters(dir: &Path, seeds: usize) -> std::path::PathBuf {
    let grown = dir.join("grown.extxyz");
    let seeds = seeds.to_string();
    minima(&[
        "data",
        "growth",
        "--elements",
        "Cu",
        "--seeds",
        &seeds,
        "--max-size",
        "15",
        "-o",
        path(&grown),
    ]);
    let clusters = dir.join("clusters.extxyz");
    minima(&[
        "data",
        "relaxed",
        "--reference",
        "emt",
        "--fmax",
        "0.001",
        "-i",
        path(&grown),
        "-o",
        path(&clusters),
    ]);
    clusters
}

#[test]
fn bench_minima_finds_the_references_own_minima_and_reuses_them() {
    let dir = tempfile::tempdir().unwrap();
    // Grown clusters sit on fcc sites, far from EMT's minima: relax them first, so that each
    // start lies in its minimum's basin. (Not the 16-atom one of seed 0: relaxed, it stops on
    // a flat ridge that a 0.05 Å rattle leaves for a minimum 0.76 eV lower, 0.47 Å away, as
    // ASE's EMT and FIRE with a numpy Kabsch find too.)
    let clusters = emt_copper_clusters(dir.path(), 3);
    let stem = dir.path().join("emt");
    let args = |extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = [
            "bench-minima",
            "--reference",
            "emt",
            "--reference-rows",
            "-i",
            path(&clusters),
            "--molecules",
            "3",
            "--starts",
            "rattle:0.05,scale:0.95",
            "--fmax",
            "0.005",
            "-o",
            path(&stem),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let run_with = |extra: &[&str]| {
        let a = args(extra);
        minima(&a.iter().map(String::as_str).collect::<Vec<_>>());
        serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(stem.with_extension("json")).unwrap())
            .unwrap()
    };
    let report = run_with(&[]);
    let rows = report["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{report:#}");
    for row in rows {
        // EMT relaxing its own starts: nothing blows up, everything converges, and a 0.05 Å
        // rattle or a 5 % compression comes back to the minimum it left.
        assert_eq!(row["relaxations"], 3, "{row}");
        assert_eq!(row["blown_up"], 0, "{row}");
        assert_eq!(row["converged"], 3, "{row}");
        assert_eq!(row["rebonded"], 0, "{row}");
        assert!(row["delta_p"]["max"].as_f64().unwrap() < 0.02, "{row}");
    }
    assert_eq!(
        extxyz::read_all(&stem.with_extension("minima.extxyz")).unwrap().len(),
        3
    );
    assert_eq!(
        extxyz::read_all(&stem.with_extension("starts.extxyz")).unwrap().len(),
        6
    );

    // The minima written are the targets of a second run, which then needs no relaxation of
    // the reference: its rows are the same.
    let minima_file = dir.path().join("minima.extxyz");
    std::fs::copy(stem.with_extension("minima.extxyz"), &minima_file).unwrap();
    let again = run_with(&["--minima", path(&minima_file)]);
    assert_eq!(again["rows"], report["rows"]);
    let fewer = dir.path().join("fewer.extxyz");
    extxyz::write_all(&fewer, &extxyz::read_all(&minima_file).unwrap()[..2]).unwrap();
    let a = args(&["--minima", path(&fewer)]);
    let error = minima_error(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(error.contains("2 minima for the 3 structures"), "{error}");
    // A crystal relaxes with its cell: EMT from its own rattled and compressed starts comes back
    // to the same lattice and sites.
    let crystal = copper_crystal(dir.path());
    let crystal_stem = dir.path().join("crystal");
    minima(&[
        "bench-minima",
        "--reference",
        "emt",
        "--reference-rows",
        "-i",
        path(&crystal),
        "--starts",
        "rattle:0.05,scale:0.95",
        "--fmax",
        "0.001",
        "-o",
        path(&crystal_stem),
    ]);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(crystal_stem.with_extension("json")).unwrap()).unwrap();
    for landing in report["relaxations"].as_array().unwrap() {
        assert_eq!(landing["stop"], "converged", "{landing}");
        assert!(landing["delta_p"].as_f64().unwrap() < 0.01, "{landing}");
        assert!(landing["cell_strain"].as_f64().unwrap() < 1e-3, "{landing}");
    }
    assert_eq!(report["relaxations"].as_array().unwrap().len(), 2);
}

/// `data explored` writes where each relaxation from a distorted start ended, unlabelled and
/// marked, with the distortion recorded; an EMT cluster relaxed by EMT itself from a rattled
/// start ends near its own minimum; a rerun finds the work done and repeats none.
#[test]
fn data_explored_writes_where_relaxations_end_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let clusters = emt_copper_clusters(dir.path(), 2);
    let minima_frames = extxyz::read_all(&clusters).unwrap();
    let explored = dir.path().join("explored.extxyz");
    let run = || {
        minima(&[
            "data",
            "explored",
            "--reference",
            "emt",
            "--start",
            "rattle:0.05",
            "--seed",
            "3",
            "--fmax",
            "0.001",
            "-i",
            path(&clusters),
            "-o",
            path(&explored),
        ])
    };
    run();
    let ends = extxyz::read_all(&explored).unwrap();
    assert_eq!(ends.len(), minima_frames.len());
    for (end, minimum) in ends.iter().zip(&minima_frames) {
        assert!(end.energy().is_none() && end.forces().is_none(), "unlabelled");
        assert_eq!(end.info.get("equilibrium"), Some(&minima_atoms::Value::Bool(false)));
        assert_eq!(
            end.info.get("explored_start").and_then(|v| match v {
                minima_atoms::Value::Str(s) => Some(s.as_str()),
                _ => None,
            }),
            Some("rattle:0.05")
        );
        assert_ne!(end.positions(), minimum.positions(), "the start was distorted");
        assert!(
            largest_deviation(end, minimum) < 0.2,
            "ends near its minimum: {}",
            largest_deviation(end, minimum)
        );
    }
    let before = std::fs::read(&explored).unwrap();
    run();
    assert_eq!(std::fs::read(&explored).unwrap(), before, "a rerun changes nothing");
}

/// `data explored --path` keeps points along each relaxation: one frame per kept step, in
/// order, the last the end; labelling them gives one labelled frame each.
#[test]
fn data_explored_keeps_points_along_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let clusters = emt_copper_clusters(dir.path(), 2);
    let explored = dir.path().join("path.extxyz");
    fn explore<'a>(fractions: &'a str, input: &'a Path, output: &'a Path) -> Vec<&'a str> {
        let files = ["-i", path(input), "-o", path(output)];
        let start = [
            "data",
            "explored",
            "--reference",
            "emt",
            "--start",
            "scale:1.2",
            "--path",
            fractions,
        ];
        [&start[..], &files[..]].concat()
    }
    minima(&explore("0.1,0.5,1", &clusters, &explored));
    let frames = extxyz::read_all(&explored).unwrap();
    let int = |a: &minima_atoms::Atoms, key: &str| a.info[key].as_i64().unwrap();
    assert_eq!(frames.len(), 6, "three points of each of two relaxations");
    for points in frames.chunks(3) {
        let steps: Vec<i64> = points.iter().map(|a| int(a, "explored_step")).collect();
        let total = int(&points[0], "explored_steps");
        assert!(total >= 10, "a relaxation from 1.2x takes steps: {total}");
        assert!(
            steps.windows(2).all(|w| w[0] < w[1]) && steps[2] == total,
            "{steps:?} of {total}"
        );
        let parts: Vec<i64> = points.iter().map(|a| int(a, "label_part")).collect();
        assert_eq!(parts, [0, 1, 2]);
        assert_ne!(points[0].positions(), points[2].positions(), "points along the way");
    }
    let labelled = dir.path().join("labelled.extxyz");
    minima(&["label", "--calc", "emt", "-i", path(&explored), "-o", path(&labelled)]);
    let labelled = extxyz::read_all(&labelled).unwrap();
    assert_eq!(labelled.len(), 6);
    assert!(labelled
        .iter()
        .all(|a| a.forces().is_some() && !a.info.contains_key("label_parts")));
    let error = minima_error(&explore("0,1", &clusters, &dir.path().join("x.extxyz")));
    assert!(error.contains("--path takes fractions"), "{error}");
}
