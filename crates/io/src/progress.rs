//! Progress of long jobs (labelling, training, prediction) as events for an observer the
//! application installs: the `minima` binary draws them as bars, a library caller (the Python
//! package, a server) gets them as [`Event`]s or nothing. Without an observer, tasks are
//! silent and status lines go to stderr.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// What a job reports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Event<'a> {
    /// Task `id` began, with `total` steps (0: not known in advance).
    Started { id: u64, what: &'a str, total: u64 },
    /// Task `id` has done `done` of its steps.
    Advanced { id: u64, done: u64 },
    /// Task `id` describes its current step.
    Message { id: u64, message: &'a str },
    /// A line about task `id` that should stay (a failed frame).
    Note { id: u64, line: &'a str },
    /// Task `id` ended.
    Finished { id: u64 },
    /// A line about the job as a whole (an epoch's losses).
    Status(&'a str),
}

/// Receives the events of every task of the process.
pub trait Observer: Send + Sync {
    fn event(&self, event: Event<'_>);
}

static OBSERVER: RwLock<Option<Arc<dyn Observer>>> = RwLock::new(None);
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// Installs `observer` for the tasks started from now on (replacing any before).
pub fn set_observer(observer: Arc<dyn Observer>) {
    *OBSERVER.write().unwrap_or_else(|e| e.into_inner()) = Some(observer);
}

fn observer() -> Option<Arc<dyn Observer>> {
    OBSERVER.read().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Reports a line about the job as a whole.
pub fn status(line: std::fmt::Arguments) {
    let line = line.to_string();
    match observer() {
        Some(observer) => observer.event(Event::Status(&line)),
        None => {
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "{line}");
        }
    }
}

/// A task of `total` steps, reported to the observer installed when it starts.
pub struct Task {
    id: u64,
    done: AtomicU64,
    finished: AtomicBool,
    observer: Option<Arc<dyn Observer>>,
}

/// Starts a task of `total` steps (0 when not known): `what` names it ("epoch 3/100").
pub fn task(total: u64, what: &str) -> Task {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let observer = observer();
    if let Some(observer) = &observer {
        observer.event(Event::Started { id, what, total });
    }
    Task {
        id,
        done: AtomicU64::new(0),
        finished: AtomicBool::new(false),
        observer,
    }
}

/// A task that reports nothing (its notes still reach stderr).
pub fn silent() -> Task {
    Task {
        id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        done: AtomicU64::new(0),
        finished: AtomicBool::new(false),
        observer: None,
    }
}

impl Task {
    fn send(&self, event: Event<'_>) {
        if let Some(observer) = &self.observer {
            observer.event(event);
        }
    }

    /// `steps` more are done.
    pub fn inc(&self, steps: u64) {
        let done = self.done.fetch_add(steps, Ordering::Relaxed) + steps;
        self.send(Event::Advanced { id: self.id, done });
    }

    /// `done` steps are done in all.
    pub fn set_position(&self, done: u64) {
        self.done.store(done, Ordering::Relaxed);
        self.send(Event::Advanced { id: self.id, done });
    }

    pub fn set_message(&self, message: impl AsRef<str>) {
        self.send(Event::Message {
            id: self.id,
            message: message.as_ref(),
        });
    }

    /// A line that stays (without an observer: on stderr).
    pub fn println(&self, line: impl AsRef<str>) {
        match &self.observer {
            Some(_) => self.send(Event::Note {
                id: self.id,
                line: line.as_ref(),
            }),
            None => {
                use std::io::Write;
                let _ = writeln!(std::io::stderr(), "{}", line.as_ref());
            }
        }
    }

    /// Ends the task (dropping it does too); once.
    pub fn finish_and_clear(&self) {
        if !self.finished.swap(true, Ordering::Relaxed) {
            self.send(Event::Finished { id: self.id });
        }
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        self.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Recorder(Mutex<Vec<String>>);

    impl Observer for Recorder {
        fn event(&self, event: Event<'_>) {
            self.0.lock().unwrap().push(format!("{event:?}"));
        }
    }

    #[test]
    fn an_observer_gets_every_event_of_a_task_in_order() {
        let recorder = Arc::new(Recorder::default());
        set_observer(recorder.clone());
        let task = task(3, "label");
        task.inc(1);
        task.set_message("frame 1");
        task.inc(2);
        task.println("frame 2: failed");
        let id = task.id;
        task.finish_and_clear();
        drop(task);
        status(format_args!("done"));
        let events: Vec<String> = recorder.0.lock().unwrap().clone();
        let mine: Vec<&String> = events
            .iter()
            .filter(|e| {
                e.contains(&format!("id: {id},")) || e.contains(&format!("id: {id} ")) || e.starts_with("Status")
            })
            .collect();
        assert_eq!(
            mine,
            [
                &format!("Started {{ id: {id}, what: \"label\", total: 3 }}"),
                &format!("Advanced {{ id: {id}, done: 1 }}"),
                &format!("Message {{ id: {id}, message: \"frame 1\" }}"),
                &format!("Advanced {{ id: {id}, done: 3 }}"),
                &format!("Note {{ id: {id}, line: \"frame 2: failed\" }}"),
                &format!("Finished {{ id: {id} }}"),
                &"Status(\"done\")".to_string(),
            ]
        );
    }
}
