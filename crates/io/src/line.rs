//! Line reading with a bound on the length of a line: a file without newlines (or a
//! decompression bomb of one line) fails after [`MAX_LINE_BYTES`], in that much memory,
//! instead of being read whole.

use std::io::{self, BufRead};

/// The longest line, newline included, a reader holds. Real extxyz lines are far shorter (an
/// atom line is under a kilobyte, a comment line with large info arrays some tens of
/// kilobytes); anything longer is not a text file of frames.
pub const MAX_LINE_BYTES: usize = 4 << 20;

/// What [`read_line_bounded`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line {
    /// A line, its newline included unless it is the last line of the input.
    Complete,
    /// The end of the input: nothing was read.
    End,
    /// `limit` bytes were read without a newline; the rest of the line is left unread.
    TooLong,
}

/// Appends the next line of `input` to `buf`, reading at most `limit` bytes of it.
pub fn read_line_bounded<R: BufRead + ?Sized>(input: &mut R, buf: &mut Vec<u8>, limit: usize) -> io::Result<Line> {
    let start = buf.len();
    loop {
        let available = match input.fill_buf() {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(if buf.len() == start { Line::End } else { Line::Complete });
        }
        let room = limit - (buf.len() - start);
        if let Some(newline) = available.iter().take(room).position(|&b| b == b'\n') {
            buf.extend_from_slice(&available[..=newline]);
            input.consume(newline + 1);
            return Ok(Line::Complete);
        }
        let taken = available.len().min(room);
        buf.extend_from_slice(&available[..taken]);
        input.consume(taken);
        if buf.len() - start == limit {
            return Ok(Line::TooLong);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &[u8], limit: usize) -> Vec<(Line, Vec<u8>)> {
        let mut input = io::BufReader::with_capacity(3, text);
        let mut out = Vec::new();
        loop {
            let mut buf = Vec::new();
            let found = read_line_bounded(&mut input, &mut buf, limit).unwrap();
            out.push((found, buf));
            if found != Line::Complete {
                return out;
            }
        }
    }

    #[test]
    fn splits_lines_across_buffer_refills() {
        let found = lines(b"ab\ncdefg\n\nh", 16);
        let texts: Vec<&[u8]> = found.iter().map(|(_, b)| b.as_slice()).collect();
        assert_eq!(texts, [&b"ab\n"[..], b"cdefg\n", b"\n", b"h", b""]);
        assert_eq!(found.last().unwrap().0, Line::End);
    }

    #[test]
    fn stops_at_the_limit() {
        let found = lines(b"abc\nabcdefgh\n", 5);
        assert_eq!(found[0], (Line::Complete, b"abc\n".to_vec()));
        assert_eq!(found[1], (Line::TooLong, b"abcde".to_vec()));
        // A line of exactly `limit` bytes with its newline still fits.
        assert_eq!(lines(b"abcd\n", 5)[0], (Line::Complete, b"abcd\n".to_vec()));
    }
}
