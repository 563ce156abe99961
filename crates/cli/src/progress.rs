//! The binary's observer of the library's progress events: a bar per task on stderr (rate and
//! ETA; hidden when stderr is not a terminal), status lines and notes printed above the bars,
//! or straight to stderr when there are no bars to keep clear of (a log file).

use std::collections::HashMap;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use minima_io::progress::{Event, Observer};

#[derive(Default)]
pub struct Bars {
    bars: MultiProgress,
    tasks: Mutex<HashMap<u64, ProgressBar>>,
}

impl Bars {
    fn line(&self, line: &str) {
        if self.bars.is_hidden() {
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "{line}");
        } else {
            let _ = self.bars.println(line);
        }
    }

    fn with(&self, id: u64, then: impl FnOnce(&ProgressBar)) {
        if let Some(bar) = self.tasks.lock().unwrap_or_else(|e| e.into_inner()).get(&id) {
            then(bar);
        }
    }
}

impl Observer for Bars {
    fn event(&self, event: Event<'_>) {
        match event {
            Event::Started { id, what, total } => {
                // A task of unknown length spins and counts.
                let (bar, template) = match total {
                    0 => (ProgressBar::new_spinner(), "{msg} {spinner} {pos} {per_sec}"),
                    _ => (
                        ProgressBar::new(total),
                        "{msg} [{bar:30}] {pos}/{len} {per_sec} ETA {eta}",
                    ),
                };
                let bar = self.bars.add(bar);
                bar.set_style(
                    ProgressStyle::with_template(template)
                        .expect("static template")
                        .progress_chars("=> "),
                );
                bar.set_message(what.to_string());
                self.tasks.lock().unwrap_or_else(|e| e.into_inner()).insert(id, bar);
            }
            Event::Advanced { id, done } => self.with(id, |bar| bar.set_position(done)),
            Event::Message { id, message } => self.with(id, |bar| bar.set_message(message.to_string())),
            Event::Note { line, .. } | Event::Status(line) => self.line(line),
            Event::Finished { id } => {
                if let Some(bar) = self.tasks.lock().unwrap_or_else(|e| e.into_inner()).remove(&id) {
                    bar.finish_and_clear();
                    self.bars.remove(&bar);
                }
            }
        }
    }
}

/// Shows nothing: the ranks beyond 0 of a data-parallel run, whose progress rank 0 shows.
pub struct Quiet;

impl Observer for Quiet {
    fn event(&self, _event: Event<'_>) {}
}
