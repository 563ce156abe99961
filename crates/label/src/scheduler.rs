//! Labelling fanned out as a job array: the input split into N shards (`label --shard i/N`),
//! each labelled by its own `minima label` process, run as local processes or as a Slurm array
//! (`sbatch`), then merged. The shards live in `OUTPUT.shards/` and are journals like any
//! output: a rerun of the same command submits only the shards that have not finished (a task
//! that failed, was killed or timed out resumes where it stopped), and merges once every shard
//! has. Nothing here schedules: Slurm does, or the operating system for local processes.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::run::{finished, input_fingerprint_of, merge, LabelError, MergeSummary, Shard};

/// Where the shards run.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Scheduler {
    /// As child processes of this one, all at once.
    #[default]
    Local,
    /// As a Slurm job array, through `sbatch`.
    Slurm {
        /// `--partition`; absent: the cluster's default.
        partition: Option<String>,
        /// `--time` (Slurm's formats: `MM`, `HH:MM:SS`, `D-HH`); absent: the partition's.
        time: Option<String>,
    },
}

/// One sharded labelling run: the `minima label` command each shard runs.
#[derive(Debug, Clone)]
pub struct ShardedLabel {
    /// The `minima` program the shards run.
    pub program: PathBuf,
    pub input: PathBuf,
    pub output: PathBuf,
    /// Shards (array tasks).
    pub count: usize,
    /// `label` options every shard gets (`--calc xtb --jobs 2 …`).
    pub label_args: Vec<String>,
    /// Cores each task asks for (`--cpus-per-task`).
    pub cpus: usize,
    pub scheduler: Scheduler,
}

/// Where a sharded run stands.
#[derive(Debug, Clone, PartialEq)]
pub enum ShardedOutcome {
    /// Every shard finished and the output is merged.
    Merged(MergeSummary),
    /// A Slurm job (its id) runs the shards that had not finished; rerun with waiting (or
    /// once it has ended) to merge.
    Submitted { job: String, shards: Vec<usize> },
}

impl ShardedLabel {
    /// The folder of the shards: `OUTPUT.shards`.
    pub fn folder(&self) -> PathBuf {
        let mut name = self.output.file_name().unwrap_or_default().to_os_string();
        name.push(".shards");
        self.output.with_file_name(name)
    }

    /// Shard `index`'s output.
    pub fn shard_path(&self, index: usize) -> PathBuf {
        self.folder().join(format!("shard-{index}-of-{}.extxyz", self.count))
    }

    fn job_file(&self) -> PathBuf {
        self.folder().join("slurm-job")
    }

    /// The shards that have not finished on the input as it is now.
    pub fn unfinished(&self) -> Result<Vec<usize>, LabelError> {
        let input = input_fingerprint_of(&self.input)?;
        let mut todo = Vec::new();
        for index in 0..self.count {
            let shard = Shard {
                index,
                count: self.count,
            };
            if !finished(&input, &self.shard_path(index), shard)? {
                todo.push(index);
            }
        }
        Ok(todo)
    }

    /// Runs (or continues) the sharded labelling: submits the unfinished shards (unless a
    /// Slurm job submitted before still runs them), and with `wait` (always for local
    /// processes) waits for them and merges.
    pub fn run(&self, wait: bool) -> Result<ShardedOutcome, LabelError> {
        if self.count == 0 {
            return Err(LabelError::Journal("an array of 0 shards: give at least 1".into()));
        }
        let folder = self.folder();
        std::fs::create_dir_all(&folder).map_err(|source| LabelError::Io {
            path: folder.clone(),
            source,
        })?;
        let todo = self.unfinished()?;
        if !todo.is_empty() {
            match &self.scheduler {
                Scheduler::Local => self.run_locally(&todo)?,
                Scheduler::Slurm { .. } => {
                    let job = match self.running_job()? {
                        Some(job) => job,
                        None => self.submit(&todo)?,
                    };
                    if !wait {
                        return Ok(ShardedOutcome::Submitted { job, shards: todo });
                    }
                    wait_for(&job)?;
                }
            }
        }
        let shards: Vec<PathBuf> = (0..self.count).map(|i| self.shard_path(i)).collect();
        let unfinished = self.unfinished()?;
        if !unfinished.is_empty() {
            return Err(LabelError::Journal(format!(
                "{} of the {} shards did not finish ({}; their logs are in {}): rerun the same command to run them again, they resume where they stopped",
                unfinished.len(),
                self.count,
                unfinished
                    .iter()
                    .map(|i| self.shard_path(*i).display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                folder.display()
            )));
        }
        Ok(ShardedOutcome::Merged(merge(&shards, &self.output)?))
    }

    /// The command line of shard `index` (`index` may be a shell variable).
    fn shard_command(&self, index: &str) -> Vec<String> {
        let mut command = vec![
            self.program.display().to_string(),
            "label".into(),
            "-i".into(),
            self.input.display().to_string(),
            "-o".into(),
            self.folder()
                .join(format!("shard-{index}-of-{}.extxyz", self.count))
                .display()
                .to_string(),
            "--shard".into(),
            format!("{index}/{}", self.count),
        ];
        command.extend(self.label_args.iter().cloned());
        command
    }

    fn run_locally(&self, todo: &[usize]) -> Result<(), LabelError> {
        let bar = minima_io::progress::task(todo.len() as u64, "shards");
        let mut children = Vec::new();
        for &index in todo {
            let command = self.shard_command(&index.to_string());
            let log = self.folder().join(format!("shard-{index}.log"));
            let log_file = std::fs::File::create(&log).map_err(|source| LabelError::Io {
                path: log.clone(),
                source,
            })?;
            let child = Command::new(&command[0])
                .args(&command[1..])
                .stdout(log_file.try_clone().map_err(|source| LabelError::Io {
                    path: log.clone(),
                    source,
                })?)
                .stderr(log_file)
                .spawn()
                .map_err(|e| LabelError::Journal(format!("cannot start {}: {e}", command[0])))?;
            children.push(child);
        }
        for mut child in children {
            // A shard that fails says why in its log; the check after all have ended names it.
            let _ = child.wait();
            bar.inc(1);
        }
        bar.finish_and_clear();
        Ok(())
    }

    /// Writes the array script for the shards `todo` and submits it; the job's id.
    fn submit(&self, todo: &[usize]) -> Result<String, LabelError> {
        let folder = self.folder();
        let Scheduler::Slurm { partition, time } = &self.scheduler else {
            unreachable!("submit is for Slurm")
        };
        let list = todo.iter().map(usize::to_string).collect::<Vec<_>>().join(",");
        let mut script = format!(
            "#!/bin/bash\n# minima label as a Slurm array: one shard per task (written by minima).\n\
             #SBATCH --job-name=minima-label\n#SBATCH --array={list}\n#SBATCH --ntasks=1\n\
             #SBATCH --cpus-per-task={}\n#SBATCH --output={}\n",
            self.cpus,
            folder.join("slurm-%A_%a.log").display()
        );
        if let Some(partition) = partition {
            script += &format!("#SBATCH --partition={partition}\n");
        }
        if let Some(time) = time {
            script += &format!("#SBATCH --time={time}\n");
        }
        let command: Vec<String> = self
            .shard_command("__TASK__")
            .iter()
            .map(|word| quote(word).replace("__TASK__", "'\"$SLURM_ARRAY_TASK_ID\"'"))
            .collect();
        script += &format!("exec {}\n", command.join(" "));
        let path = folder.join("array.sbatch");
        minima_io::write_atomic(&path, |w| w.write_all(script.as_bytes())).map_err(|source| LabelError::Io {
            path: path.clone(),
            source,
        })?;
        let out = Command::new("sbatch")
            .arg("--parsable")
            .arg(&path)
            .output()
            .map_err(|e| LabelError::Journal(format!("cannot run sbatch (is Slurm installed here?): {e}")))?;
        if !out.status.success() {
            return Err(LabelError::Journal(format!(
                "sbatch {} failed: {}",
                path.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let job = text.trim().split(';').next().unwrap_or_default().to_string();
        minima_io::write_atomic(&self.job_file(), |w| w.write_all(job.as_bytes())).map_err(|source| {
            LabelError::Io {
                path: self.job_file(),
                source,
            }
        })?;
        Ok(job)
    }

    /// The Slurm job submitted before, when it is still queued or running.
    fn running_job(&self) -> Result<Option<String>, LabelError> {
        let Ok(job) = std::fs::read_to_string(self.job_file()) else {
            return Ok(None);
        };
        let job = job.trim().to_string();
        Ok(job_active(&job)?.then_some(job))
    }
}

/// Whether Slurm still has tasks of `job` queued or running.
fn job_active(job: &str) -> Result<bool, LabelError> {
    let out = Command::new("squeue")
        .args(["--noheader", "--jobs", job, "--format=%i"])
        .output()
        .map_err(|e| LabelError::Journal(format!("cannot run squeue: {e}")))?;
    // squeue refuses a job id it has forgotten (ended long ago): not active.
    Ok(out.status.success() && !String::from_utf8_lossy(&out.stdout).trim().is_empty())
}

fn wait_for(job: &str) -> Result<(), LabelError> {
    let bar = minima_io::progress::task(0, &format!("Slurm job {job}"));
    while job_active(job)? {
        std::thread::sleep(Duration::from_secs(1));
    }
    bar.finish_and_clear();
    Ok(())
}

/// `word` quoted for bash.
fn quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_array_script_quotes_paths_and_names_each_task_shard() {
        let job = ShardedLabel {
            program: "/opt/minima dir/minima".into(),
            input: "/data/it's.extxyz".into(),
            output: "/data/out.extxyz".into(),
            count: 4,
            label_args: vec!["--calc".into(), "emt".into()],
            cpus: 2,
            scheduler: Scheduler::Slurm {
                partition: Some("short".into()),
                time: None,
            },
        };
        assert_eq!(
            job.shard_path(2),
            PathBuf::from("/data/out.extxyz.shards/shard-2-of-4.extxyz")
        );
        let words: Vec<String> = job
            .shard_command("__TASK__")
            .iter()
            .map(|w| quote(w).replace("__TASK__", "'\"$SLURM_ARRAY_TASK_ID\"'"))
            .collect();
        let line = words.join(" ");
        assert!(line.starts_with("'/opt/minima dir/minima' 'label'"), "{line}");
        assert!(line.contains("'/data/it'\\''s.extxyz'"), "{line}");
        assert!(
            line.contains("'/data/out.extxyz.shards/shard-'\"$SLURM_ARRAY_TASK_ID\"'-of-4.extxyz'"),
            "{line}"
        );
        assert!(line.contains("'--shard' ''\"$SLURM_ARRAY_TASK_ID\"'/4'"), "{line}");
        // What bash makes of it: the task's own shard.
        let out = Command::new("bash")
            .args(["-c", &format!("SLURM_ARRAY_TASK_ID=3; printf '%s\\n' {line}")])
            .output()
            .unwrap();
        let argv: Vec<String> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(String::from)
            .collect();
        assert_eq!(argv[0], "/opt/minima dir/minima");
        assert_eq!(argv[3], "/data/it's.extxyz");
        assert_eq!(argv[5], "/data/out.extxyz.shards/shard-3-of-4.extxyz");
        assert_eq!(argv[7], "3/4");
    }
}
