//! `minima train` and `minima eval` under hostile conditions: two processes on one run, a
//! disk that fills up, readers that go away, checkpoints with non-finite weights, molecules
//! too large for an all-pairs model, sizes too large for memory, run folders that hold a run.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use minima_atoms::Atoms;

mod common;
use common::{minima, minima_error, path, run};

/// Twelve Cu tetramers around a 2.5 Å square with made-up energies.
fn clusters(dir: &Path) -> PathBuf {
    let frames: Vec<Atoms> = (0..12)
        .map(|i| {
            let s = 2.4 + 0.02 * i as f64;
            let positions = vec![[0.0, 0.0, 0.0], [s, 0.0, 0.0], [0.0, s, 0.0], [s, s, 0.3]];
            let mut atoms = Atoms::new(vec![29; 4], positions).unwrap();
            atoms.set_energy(-3.0 + 0.1 * ((i * 7) % 5) as f64);
            atoms
        })
        .collect();
    let file = dir.join("clusters.extxyz");
    minima_io::extxyz::write_all(&file, &frames).unwrap();
    file
}

/// A small VIMPNN run on `data` into `dir/run`; returns the configuration file.
fn config(dir: &Path, data: &Path) -> PathBuf {
    let file = dir.join("run.toml");
    std::fs::write(
        &file,
        format!(
            "[model]\nkind = \"vimpnn\"\nhidden = 8\nreadout_hidden = 8\nedge_rank = 8\n[model.aux]\nscale = false\n\
             [data]\nfile = {:?}\nsplit = [0.6, 0.2, 0.2]\n[train]\noutput = {:?}\nmax_epochs = 2\nbatch_size = 4\nlearning_rate = 1e-3\n",
            path(data),
            path(&dir.join("run"))
        ),
    )
    .unwrap();
    file
}

fn train_args<'a>(config: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["train", "--config", path(config)];
    args.extend_from_slice(extra);
    args
}

fn eval_args<'a>(model: &'a Path, data: &'a Path, json: &'a Path) -> [&'a str; 7] {
    [
        "eval",
        "--model",
        path(model),
        "--data",
        path(data),
        "--json",
        path(json),
    ]
}

fn minima_command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_minima"));
    command.args(args);
    command
}

/// The completed epochs `state.json` of `run` records.
fn epochs(run: &Path) -> u64 {
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("state.json")).unwrap()).unwrap();
    state["epoch"].as_u64().unwrap()
}

/// `error` must mention every one of `needles`.
fn assert_mentions(error: &str, needles: &[&str]) {
    let missing: Vec<&&str> = needles.iter().filter(|n| !error.contains(**n)).collect();
    assert!(missing.is_empty(), "{missing:?} missing from: {error}");
}

#[test]
fn a_second_train_on_the_same_run_fails_at_once_while_the_first_runs() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &clusters(dir.path()));
    let run_dir = dir.path().join("run");
    let mut first = minima_command(&train_args(
        &config,
        &["--set", "train.max_epochs=100000", "--set", "train.early_stop=100000"],
    ))
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let started = Instant::now();
    while !run_dir.join("state.json").exists() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the first run never completed an epoch"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    for extra in [&["--resume"][..], &["--overwrite"][..], &[][..]] {
        let began = Instant::now();
        let error = minima_error(&train_args(&config, extra));
        assert!(error.contains("another minima process"), "{extra:?}: {error}");
        assert!(began.elapsed() < Duration::from_secs(30));
    }
    first.kill().unwrap();
    first.wait().unwrap();
    // The lock goes with the process: the killed run resumes.
    let done = epochs(&run_dir);
    let more = format!("train.max_epochs={}", done + 1);
    minima(&train_args(
        &config,
        &["--resume", "--set", &more, "--set", "train.early_stop=100000"],
    ));
    assert_eq!(epochs(&run_dir), done + 1);
}

#[test]
fn a_full_disk_leaves_the_last_complete_epoch_and_no_temporary() {
    let dir = tempfile::tempdir().unwrap();
    let data = clusters(dir.path());
    let config = config(dir.path(), &data);
    let run_dir = dir.path().join("run");
    minima(&train_args(&config, &[]));
    let last = std::fs::read(run_dir.join("last.safetensors")).unwrap();
    // A file-size limit of half the weights file fails its write as a full disk does (EFBIG,
    // with SIGXFSZ ignored), while the small files still fit.
    let blocks = last.len() / 2 / 1024;
    assert!(blocks > 4, "weights of {} bytes", last.len());
    let limited = Command::new("bash")
        .arg("-c")
        .arg(format!("trap '' XFSZ; ulimit -f {blocks}; exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_minima"))
        .args(train_args(&config, &["--resume", "--set", "train.max_epochs=4"]))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&limited.stderr);
    assert!(!limited.status.success() && !stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains("last.safetensors"), "{stderr}");
    let leftovers: Vec<String> = std::fs::read_dir(&run_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert_eq!(epochs(&run_dir), 2);
    assert_eq!(std::fs::read(run_dir.join("last.safetensors")).unwrap(), last);

    // With room again it resumes from epoch 2 to where an uninterrupted run ends.
    minima(&train_args(&config, &["--resume", "--set", "train.max_epochs=4"]));
    let straight = dir.path().join("straight");
    let output = format!("train.output={:?}", path(&straight));
    minima(&train_args(&config, &["--set", &output, "--set", "train.max_epochs=4"]));
    assert!(
        std::fs::read(straight.join("last.safetensors")).unwrap()
            == std::fs::read(run_dir.join("last.safetensors")).unwrap()
    );
}

#[test]
fn train_runs_to_the_end_when_its_readers_go_away() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &clusters(dir.path()));
    let mut child = minima_command(&train_args(&config, &["--set", "train.max_epochs=3"]))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // `| head` that has read all it wanted: both pipes closed before the first line.
    drop(child.stdout.take());
    drop(child.stderr.take());
    assert!(child.wait().unwrap().success());
    assert_eq!(epochs(&dir.path().join("run")), 3);
}

/// Trains the small run of `dir` and returns its best checkpoint and data.
fn trained(dir: &Path) -> (PathBuf, PathBuf) {
    let data = clusters(dir);
    minima(&train_args(&config(dir, &data), &[]));
    (dir.join("run/best.safetensors"), data)
}

#[test]
fn eval_ends_quietly_when_its_reader_goes_away() {
    let dir = tempfile::tempdir().unwrap();
    let (model, data) = trained(dir.path());
    let json = dir.path().join("eval.json");
    let mut child = minima_command(&eval_args(&model, &data, &json))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success() && !stderr.contains("panicked"), "{stderr}");
    assert!(json.exists());
}

#[test]
fn eval_refuses_non_finite_predictions_naming_the_frames() {
    let dir = tempfile::tempdir().unwrap();
    let (model, data) = trained(dir.path());
    // Every weight NaN, in a checkpoint written before hashes were recorded.
    let mut bytes = std::fs::read(&model).unwrap();
    let header = 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    bytes[header..].fill(0xff);
    std::fs::write(&model, bytes).unwrap();
    let meta = model.with_extension("toml");
    let text: String = std::fs::read_to_string(&meta)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("sha256"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&meta, text).unwrap();
    let json = dir.path().join("eval.json");
    let error = minima_error(&eval_args(&model, &data, &json));
    assert!(
        error.contains("non-finite") && error.contains("clusters.extxyz") && error.contains("frames 0, 1"),
        "{error}"
    );
    assert!(!json.exists());
}

#[test]
fn an_all_pairs_model_takes_a_2000_atom_molecule_in_edge_chunks_and_refuses_it_past_the_budget() {
    let dir = tempfile::tempdir().unwrap();
    // The default sizes (no model.cutoff: every pair of atoms is an edge).
    let config = config(dir.path(), &clusters(dir.path()));
    let sizes = [
        "--set",
        "model.hidden=73",
        "--set",
        "model.readout_hidden=73",
        "--set",
        "model.edge_rank=73",
    ];
    minima(&train_args(&config, &sizes));
    let model = dir.path().join("run/best.safetensors");
    // 2,000 Cu atoms on a 13 × 13 × 12 grid, 3.5 Å apart: no bonds, every pair an edge.
    let n = 2000;
    let positions: Vec<[f64; 3]> = (0..12)
        .flat_map(|z| (0..13).flat_map(move |y| (0..13).map(move |x| [x, y, z].map(|k| 3.5 * k as f64))))
        .take(n)
        .collect();
    let mut molecule = Atoms::new(vec![29; n], positions).unwrap();
    molecule.set_energy(-1.0);
    let big = dir.path().join("big.extxyz");
    minima_io::extxyz::write_all(&big, &[molecule]).unwrap();
    let json = dir.path().join("e.json");
    let eval = [
        "eval",
        "--model",
        path(&model),
        "--data",
        path(&big),
        "--json",
        path(&json),
    ];
    // In edge chunks the 4 million edges fit the default budget: the molecule is evaluated.
    minima(&eval);
    assert!(json.exists());
    // Past a smaller budget it is refused before anything is allocated, with what lowers it.
    let began = Instant::now();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_minima"))
        .args(eval)
        .env("MINIMA_MEMORY_GB", "0.25")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let error = String::from_utf8_lossy(&out.stderr);
    assert!(!error.contains("panicked"), "{error}");
    assert_mentions(
        &error,
        &[
            "big.extxyz",
            "frame 0",
            "GiB",
            "memory budget",
            "model.cutoff",
            "MINIMA_MEMORY_GB",
        ],
    );
    assert!(
        began.elapsed() < Duration::from_secs(60),
        "refused only after {:?}",
        began.elapsed()
    );
}

#[test]
fn train_refuses_what_would_not_fit_or_would_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &clusters(dir.path()));
    let error = minima_error(&train_args(&config, &["--set", "model.hidden=100000"]));
    assert!(error.contains("model.hidden") && error.contains("GiB"), "{error}");
    minima(&train_args(&config, &[]));
    let best = std::fs::read(dir.path().join("run/best.safetensors")).unwrap();
    let error = minima_error(&train_args(&config, &["--set", "train.seed=5"]));
    assert!(error.contains("--resume") && error.contains("--overwrite"), "{error}");
    assert_eq!(std::fs::read(dir.path().join("run/best.safetensors")).unwrap(), best);
    minima(&train_args(&config, &["--overwrite", "--set", "train.seed=5"]));
    assert_ne!(std::fs::read(dir.path().join("run/best.safetensors")).unwrap(), best);
    let error = minima_error(&train_args(&config, &["--set", "train.early_stop=0"]));
    assert!(error.contains("train.early_stop"), "{error}");
    assert!(run(&train_args(&config, &["--resume", "--overwrite"])).status.code() != Some(0));
}
