//! Output to a console that may go away: `minima train … | head` closes the pipe, and a
//! training run must not die of that, nor an evaluation end in a panic.

use std::io::{self, Write};

/// Writes `text` to stdout. Returns false, and writes nothing more, once stdout has turned
/// out to be a closed pipe: the reader has what it wanted, the job goes on without printing.
#[derive(Debug, Default)]
pub struct Stdout {
    closed: bool,
}

impl Stdout {
    pub fn print(&mut self, text: &str) -> io::Result<bool> {
        if self.closed {
            return Ok(false);
        }
        let mut out = io::stdout().lock();
        match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }
}
