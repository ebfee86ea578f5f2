//! Line-range reads (SPEC §15): lines `start..=end` of a text file with their numbers, streamed
//! so a file of any size costs one pass and at most `max_bytes` of output in memory. A line too
//! long for the budget is cut on a character boundary and continues by character offset.

use futures::TryStreamExt;

use crate::error::{Result, WorkspaceError};
use crate::manager::WorkspaceManager;
use crate::model::{FileInfo, FileRef};

/// Which lines to read and how much output one call may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineRange {
    /// First line, 1-based.
    pub start: u64,
    /// Last line, inclusive; `None` reads to the end (within `max_bytes`).
    pub end: Option<u64>,
    /// Characters of line `start` to skip (to continue a line cut by the budget).
    pub offset: u64,
    /// Most bytes of rendered output ([`NumberedLine::render`] plus a newline per line).
    pub max_bytes: usize,
}

/// One line of a [`LineRead`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberedLine {
    /// 1-based line number.
    pub number: u64,
    /// The line's text without its line ending (invalid UTF-8 replaced by U+FFFD), possibly a
    /// piece of it: see `offset` and `complete`.
    pub text: String,
    /// Character offset in the line where `text` starts.
    pub offset: u64,
    /// Whether `text` runs to the end of the line.
    pub complete: bool,
}

impl NumberedLine {
    /// The line as a model sees it: `{number}\t{text}` (as `cat -n`, without padding).
    pub fn render(&self) -> String {
        format!("{}\t{}", self.number, self.text)
    }

    fn rendered_len(number: u64, text_len: usize) -> usize {
        digits(number) + 1 + text_len + 1
    }
}

/// Where a read that stopped early continues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineCursor {
    /// At the start of this line.
    Line(u64),
    /// Inside this line, at this character offset.
    Within {
        /// The line.
        line: u64,
        /// Characters of it already returned.
        offset: u64,
    },
}

/// What [`WorkspaceManager::read_lines`] returns.
#[derive(Debug, Clone)]
pub struct LineRead {
    /// The file read.
    pub info: FileInfo,
    /// The lines, in order.
    pub lines: Vec<NumberedLine>,
    /// Lines in the whole file (a last line without a newline counts; an empty file has none).
    pub total_lines: u64,
    /// Where to continue when the budget stopped the read before `end` (or the end of the file).
    pub next: Option<LineCursor>,
}

fn digits(n: u64) -> usize {
    n.checked_ilog10().map_or(1, |d| d as usize + 1)
}

/// Collects numbered lines from a byte stream fed in chunks.
#[derive(Debug)]
pub(crate) struct LineCollector {
    range: LineRange,
    /// Line number of the line being read (1-based).
    line: u64,
    /// Bytes of the current line seen so far, if it is in range and not yet full.
    current: Vec<u8>,
    /// Whether the current line's bytes ended at the budget (the rest is skipped).
    cut: bool,
    used: usize,
    lines: Vec<NumberedLine>,
    next: Option<LineCursor>,
    ended_with_newline: bool,
    any_bytes: bool,
}

impl LineCollector {
    pub(crate) fn new(range: LineRange) -> Self {
        Self {
            range,
            line: 1,
            current: Vec::new(),
            cut: false,
            used: 0,
            lines: Vec::new(),
            next: None,
            ended_with_newline: false,
            any_bytes: false,
        }
    }

    fn in_range(&self) -> bool {
        self.next.is_none() && self.line >= self.range.start && self.range.end.is_none_or(|end| self.line <= end)
    }

    pub(crate) fn push(&mut self, mut chunk: &[u8]) {
        if chunk.is_empty() {
            return;
        }
        self.any_bytes = true;
        self.ended_with_newline = chunk.last() == Some(&b'\n');
        while !chunk.is_empty() {
            let newline = memchr(b'\n', chunk);
            let (piece, rest) = match newline {
                Some(i) => (&chunk[..i], Some(&chunk[i + 1..])),
                None => (chunk, None),
            };
            if self.in_range() && !self.cut {
                self.current.extend_from_slice(piece);
                // Never hold more of one line than the budget could show (4 bytes per character
                // at most), plus the skipped offset.
                let bound = usize::try_from(self.range.offset)
                    .unwrap_or(usize::MAX)
                    .saturating_mul(4)
                    .saturating_add(self.range.max_bytes.saturating_mul(4) + 8);
                if self.current.len() > bound {
                    self.current.truncate(bound);
                    self.cut = true;
                }
            }
            match rest {
                Some(rest) => {
                    self.end_line(true);
                    chunk = rest;
                }
                None => break,
            }
        }
    }

    /// Ends the current line (`newline`: a line ending was seen, else the stream ended).
    fn end_line(&mut self, newline: bool) {
        if self.in_range() {
            let bytes = std::mem::take(&mut self.current);
            let text = String::from_utf8_lossy(&bytes);
            let skip = if self.line == self.range.start { self.range.offset } else { 0 };
            let mut chars = text.chars();
            for _ in 0..skip {
                if chars.next().is_none() {
                    break;
                }
            }
            let rest = chars.as_str();
            let room = self.range.max_bytes.saturating_sub(self.used);
            let whole = NumberedLine::rendered_len(self.line, rest.len());
            if whole <= room && !self.cut {
                self.used += whole;
                self.lines.push(NumberedLine {
                    number: self.line,
                    text: rest.to_owned(),
                    offset: skip,
                    complete: true,
                });
            } else if self.lines.is_empty() {
                // The first line does not fit: return as much of it as fits, cut on a character.
                let fixed = NumberedLine::rendered_len(self.line, 0);
                let mut end = room.saturating_sub(fixed).min(rest.len());
                while !rest.is_char_boundary(end) {
                    end -= 1;
                }
                let piece = &rest[..end];
                let taken = piece.chars().count() as u64;
                self.used += NumberedLine::rendered_len(self.line, piece.len());
                self.lines.push(NumberedLine {
                    number: self.line,
                    text: piece.to_owned(),
                    offset: skip,
                    complete: false,
                });
                self.next = Some(LineCursor::Within { line: self.line, offset: skip + taken });
            } else {
                self.next = Some(LineCursor::Line(self.line));
            }
        }
        self.cut = false;
        self.current.clear();
        if newline {
            self.line += 1;
        }
    }

    /// Ends the stream: the lines collected, the file's line count, where to continue.
    pub(crate) fn finish(mut self) -> (Vec<NumberedLine>, u64, Option<LineCursor>) {
        let total = if !self.any_bytes {
            0
        } else if self.ended_with_newline {
            self.line - 1
        } else {
            self.end_line(false);
            self.line
        };
        (self.lines, total, self.next)
    }
}

fn memchr(needle: u8, haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|&b| b == needle)
}

impl WorkspaceManager {
    /// Lines `range.start..=range.end` of a text file, numbered, within `range.max_bytes` of
    /// rendered output; the whole file is streamed once to count its lines. `start` 0, or past
    /// the last line, is [`WorkspaceError::InvalidInput`] stating the line count (as is `end`
    /// before `start`).
    pub async fn read_lines(&self, target: impl Into<FileRef>, range: LineRange) -> Result<LineRead> {
        if range.start == 0 {
            let info = self.lookup(target).await?;
            let total = self.count_lines(&info).await?;
            return Err(WorkspaceError::InvalidInput(format!(
                "start_line is 1-based: 0 names no line; {} has total_lines {total}",
                info.path
            )));
        }
        if let Some(end) = range.end.filter(|end| *end < range.start) {
            return Err(WorkspaceError::InvalidInput(format!("end_line {end} is before start_line {}", range.start)));
        }
        let opened = self.open(target).await?;
        let mut collector = LineCollector::new(range);
        if opened.info.size_bytes > 0 {
            let mut stream = opened.read(None).await?.stream;
            while let Some(chunk) = stream.try_next().await? {
                collector.push(&chunk);
            }
        }
        let (lines, total_lines, next) = collector.finish();
        if range.start > total_lines {
            return Err(WorkspaceError::InvalidInput(format!(
                "start_line {} is past the end: {} has total_lines {total_lines}",
                range.start, opened.info.path
            )));
        }
        Ok(LineRead { info: opened.info, lines, total_lines, next })
    }

    /// The number of lines of a file (streamed; a last line without a newline counts).
    pub async fn count_lines(&self, info: &FileInfo) -> Result<u64> {
        let opened = self.open(info.id).await?;
        if info.size_bytes == 0 {
            return Ok(0);
        }
        let mut stream = opened.read(None).await?.stream;
        let (mut newlines, mut last) = (0u64, b'\n');
        while let Some(chunk) = stream.try_next().await? {
            newlines += chunk.iter().filter(|&&b| b == b'\n').count() as u64;
            last = chunk.last().copied().unwrap_or(last);
        }
        Ok(newlines + u64::from(last != b'\n'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(text: &str, chunk: usize, range: LineRange) -> (Vec<NumberedLine>, u64, Option<LineCursor>) {
        let mut c = LineCollector::new(range);
        for part in text.as_bytes().chunks(chunk.max(1)) {
            c.push(part);
        }
        c.finish()
    }

    fn range(start: u64, end: Option<u64>, max_bytes: usize) -> LineRange {
        LineRange { start, end, offset: 0, max_bytes }
    }

    #[test]
    fn numbers_lines_across_any_chunking() {
        let text = "one\ntwo\nthree\nfour";
        for chunk in 1..6 {
            let (lines, total, next) = collect(text, chunk, range(2, Some(3), 1000));
            assert_eq!(total, 4);
            assert_eq!(next, None);
            let got: Vec<_> = lines.iter().map(NumberedLine::render).collect();
            assert_eq!(got, ["2\ttwo", "3\tthree"], "chunk {chunk}");
        }
        assert_eq!(collect("a\nb\n", 3, range(1, None, 100)).1, 2, "a final newline ends the last line");
        assert_eq!(collect("", 3, range(1, None, 100)).1, 0);
        assert_eq!(collect("\n", 3, range(1, None, 100)).1, 1);
    }

    #[test]
    fn the_budget_stops_at_a_line_or_cuts_a_long_first_line() {
        let text = "aaaa\nbbbb\ncccc\n";
        // Each line renders as "n\txxxx\n" = 7 bytes.
        let (lines, total, next) = collect(text, 4, range(1, None, 15));
        assert_eq!((lines.len(), total, next), (2, 3, Some(LineCursor::Line(3))));
        let long = format!("{}\nshort\n", "é".repeat(100));
        let (lines, _, next) = collect(&long, 7, range(1, None, 23));
        assert_eq!(lines.len(), 1);
        assert!(!lines[0].complete);
        assert_eq!(lines[0].text, "é".repeat(10), "cut on a character boundary");
        assert_eq!(next, Some(LineCursor::Within { line: 1, offset: 10 }));
        let (lines, _, next) = collect(&long, 7, LineRange { start: 1, end: Some(1), offset: 95, max_bytes: 100 });
        assert_eq!((lines[0].text.as_str(), lines[0].offset, next), ("ééééé", 95, None));
    }
}
