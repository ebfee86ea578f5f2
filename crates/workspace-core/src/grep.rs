//! Searching file contents and matching paths (SPEC §15): `grep` with the `regex` crate (finite
//! automata, so every pattern runs in time linear in the input; compiled size capped) and
//! `glob` with `globset`.
//!
//! Grep streams each file in chunks and searches whole runs of complete lines at once, finding
//! line numbers by counting newlines only where a match is, as ripgrep does; a line never has to
//! be held longer than the file it is in, and files over [`Settings::grep_max_file_bytes`] are
//! skipped, so memory stays bounded however many files are searched (a few files at a time).
//!
//! [`Settings::grep_max_file_bytes`]: crate::Settings::grep_max_file_bytes

use std::collections::VecDeque;

use futures::{StreamExt, TryStreamExt};
use globset::{Glob, GlobBuilder, GlobMatcher};
use regex::bytes::{Regex, RegexBuilder};

use crate::error::{Result, WorkspaceError};
use crate::ids::FileId;
use crate::manager::{MAX_PAGE_SIZE, WorkspaceManager};
use crate::model::{FileInfo, ListOptions};
use crate::path::{PathPrefix, WorkspacePath};

/// Largest compiled pattern accepted (bytes of the regex program).
pub const MAX_REGEX_SIZE: usize = 1 << 20;
/// Longest pattern accepted (characters).
pub const MAX_PATTERN_LEN: usize = 1000;
/// Characters of a matching line returned; longer lines are cut.
pub const MAX_LINE_CHARS: usize = 300;
/// Most context lines on either side of a match.
pub const MAX_CONTEXT_LINES: usize = 10;
/// Files searched at the same time (each on its own task).
const CONCURRENT_FILES: usize = 8;
/// Bytes looked at for a NUL that marks a binary file.
const BINARY_SNIFF_BYTES: usize = 8 * 1024;

/// What to search for and where.
#[derive(Debug, Clone)]
pub struct GrepOptions {
    /// A regular expression (the `regex` crate's syntax), or text when `literal`.
    pub pattern: String,
    /// Match `pattern` as plain text.
    pub literal: bool,
    /// Ignore case (Unicode-aware).
    pub case_insensitive: bool,
    /// The folder searched.
    pub prefix: PathPrefix,
    /// Only files whose path matches this glob (see [`PathGlob`]).
    pub glob: Option<PathGlob>,
    /// Lines of context before and after each match (at most [`MAX_CONTEXT_LINES`]).
    pub context_lines: usize,
    /// Stop after this many matching lines.
    pub max_matches: usize,
}

/// One matching line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrepMatch {
    /// The file.
    pub path: WorkspacePath,
    /// Its id.
    pub file_id: FileId,
    /// 1-based line number.
    pub line: u64,
    /// The line (cut at [`MAX_LINE_CHARS`], invalid UTF-8 replaced).
    pub text: String,
    /// Up to `context_lines` lines before it, oldest first.
    pub before: Vec<String>,
    /// Up to `context_lines` lines after it.
    pub after: Vec<String>,
}

/// What [`WorkspaceManager::grep`] found.
#[derive(Debug, Clone, Default)]
pub struct GrepResult {
    /// Matching lines, in path order then line order.
    pub matches: Vec<GrepMatch>,
    /// Whether the search stopped at `max_matches` with more to find.
    pub truncated: bool,
    /// Files searched.
    pub files_scanned: u64,
    /// Files not searched: binary, over the size limit, or gone since they were listed.
    pub files_skipped: u64,
}

/// A glob over workspace paths, e.g. `**/*.md` or `notes/*.txt`. A glob without `/` matches
/// file names in any folder (`*.md`, as ripgrep's `-g`); one with `/` matches the path relative
/// to the folder searched, or the absolute path when it starts with `/`. `*` does not cross `/`;
/// `**` does.
#[derive(Debug, Clone)]
pub struct PathGlob {
    matcher: GlobMatcher,
    scope: GlobScope,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GlobScope {
    Name,
    Relative,
    Absolute,
}

impl PathGlob {
    /// Parses a glob; an invalid one is [`WorkspaceError::InvalidInput`] naming the problem.
    pub fn parse(pattern: &str) -> Result<Self> {
        if pattern.is_empty() || pattern.len() > MAX_PATTERN_LEN {
            return Err(WorkspaceError::InvalidInput(format!("a glob has 1 to {MAX_PATTERN_LEN} characters")));
        }
        let scope = if pattern.starts_with('/') {
            GlobScope::Absolute
        } else if pattern.contains('/') {
            GlobScope::Relative
        } else {
            GlobScope::Name
        };
        let glob: Glob = GlobBuilder::new(pattern)
            .literal_separator(true)
            .backslash_escape(true)
            .build()
            .map_err(|e| WorkspaceError::InvalidInput(format!("invalid glob `{pattern}`: {}", e.kind())))?;
        Ok(Self { matcher: glob.compile_matcher(), scope })
    }

    /// Whether `path`, found under `prefix`, matches.
    pub fn matches(&self, path: &WorkspacePath, prefix: &PathPrefix) -> bool {
        match self.scope {
            GlobScope::Name => self.matcher.is_match(path.file_name()),
            GlobScope::Absolute => self.matcher.is_match(path.as_str()),
            GlobScope::Relative => {
                let full = path.as_str();
                let relative = match prefix.as_dir() {
                    Some(dir) => full.strip_prefix(dir).and_then(|r| r.strip_prefix('/')).unwrap_or(full),
                    None => full.trim_start_matches('/'),
                };
                self.matcher.is_match(relative)
            }
        }
    }
}

/// Compiles a grep pattern: literal text is escaped; the compiled program is capped, so a huge
/// repetition is refused instead of built. An invalid one is [`WorkspaceError::InvalidInput`]
/// with the parser's explanation.
pub fn compile_pattern(pattern: &str, literal: bool, case_insensitive: bool) -> Result<Regex> {
    if pattern.is_empty() || pattern.chars().count() > MAX_PATTERN_LEN {
        return Err(WorkspaceError::InvalidInput(format!("a pattern has 1 to {MAX_PATTERN_LEN} characters")));
    }
    let source = if literal { regex::escape(pattern) } else { pattern.to_owned() };
    RegexBuilder::new(&source)
        .multi_line(true)
        .case_insensitive(case_insensitive)
        .size_limit(MAX_REGEX_SIZE)
        .dfa_size_limit(MAX_REGEX_SIZE * 2)
        .build()
        .map_err(|e| WorkspaceError::InvalidInput(format!("invalid regular expression: {e}")))
}

impl WorkspaceManager {
    /// Searches the current files under `options.prefix` (with `options.glob`) for lines that
    /// match, in path order, until `max_matches`. Binary files (a NUL in their first 8 KiB) and
    /// files over the grep size limit are skipped and counted.
    pub async fn grep(&self, options: GrepOptions) -> Result<GrepResult> {
        let regex = compile_pattern(&options.pattern, options.literal, options.case_insensitive)?;
        let context = options.context_lines.min(MAX_CONTEXT_LINES);
        let max_bytes = self.settings().grep_max_file_bytes;
        let mut result = GrepResult::default();
        let mut cursor = None;
        loop {
            let page = self
                .list(ListOptions {
                    prefix: Some(options.prefix.clone()),
                    limit: MAX_PAGE_SIZE,
                    cursor,
                    ..Default::default()
                })
                .await?;
            let (searched, skipped): (Vec<FileInfo>, Vec<FileInfo>) = page
                .files
                .into_iter()
                .filter(|f| options.glob.as_ref().is_none_or(|g| g.matches(&f.path, &options.prefix)))
                .partition(|f| f.size_bytes <= max_bytes && !is_binary_type(f));
            result.files_skipped += skipped.len() as u64;
            let room = options.max_matches;
            // Units of work in path order: a blob file alone, or a run of files kept in their
            // rows, fetched with one query. Each unit is scanned on its own task, a few at a time
            // (the CPU work runs on every core), and the results are taken in path order.
            let mut scans = futures::stream::iter(units(searched))
                .map(|unit| {
                    let manager = self.clone();
                    let regex = regex.clone();
                    tokio::spawn(async move {
                        match unit {
                            Unit::Rows(files) => manager.scan_rows(files, &regex, context, room + 1).await,
                            Unit::Blob(info) => Ok(vec![manager.scan_blob(*info, &regex, context, room + 1).await?]),
                        }
                    })
                })
                .buffered(CONCURRENT_FILES);
            while let Some(scanned) = scans.next().await {
                let scanned =
                    scanned.map_err(|e| WorkspaceError::Unavailable(format!("a grep task stopped: {e}")))??;
                for (info, outcome) in scanned {
                    let Some(found) = outcome else {
                        result.files_skipped += 1;
                        continue;
                    };
                    result.files_scanned += 1;
                    for m in found {
                        if result.matches.len() >= options.max_matches {
                            result.truncated = true;
                            return Ok(result);
                        }
                        result.matches.push(GrepMatch {
                            path: info.path.clone(),
                            file_id: info.id,
                            line: m.line,
                            text: m.text,
                            before: m.before,
                            after: m.after,
                        });
                    }
                }
            }
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => return Ok(result),
            }
        }
    }

    /// The current files under `prefix` whose path matches `glob`, in path order, at most
    /// `limit`; the flag says whether more matched.
    pub async fn glob(&self, glob: &PathGlob, prefix: &PathPrefix, limit: usize) -> Result<(Vec<FileInfo>, bool)> {
        let mut found = Vec::new();
        let mut cursor = None;
        loop {
            let page = self
                .list(ListOptions { prefix: Some(prefix.clone()), limit: MAX_PAGE_SIZE, cursor, ..Default::default() })
                .await?;
            for file in page.files {
                if glob.matches(&file.path, prefix) {
                    if found.len() >= limit {
                        return Ok((found, true));
                    }
                    found.push(file);
                }
            }
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => return Ok((found, false)),
            }
        }
    }
}

/// Bytes of row-kept content one query fetches at most.
const ROWS_BATCH_BYTES: u64 = 4 * 1024 * 1024;
/// Files one query fetches at most.
const ROWS_BATCH_FILES: usize = 256;

/// A unit of grep work.
enum Unit {
    /// Files whose content is kept in the database, fetched together.
    Rows(Vec<FileInfo>),
    /// A file whose content is a blob, streamed.
    Blob(Box<FileInfo>),
}

/// Groups files, in order, into units: runs of row-kept files (bounded in bytes and count) and
/// single blob files.
fn units(files: Vec<FileInfo>) -> Vec<Unit> {
    let mut units = Vec::new();
    let mut rows: Vec<FileInfo> = Vec::new();
    let mut bytes = 0;
    for file in files {
        if file.is_inline() {
            if !rows.is_empty() && (bytes + file.size_bytes > ROWS_BATCH_BYTES || rows.len() >= ROWS_BATCH_FILES) {
                units.push(Unit::Rows(std::mem::take(&mut rows)));
                bytes = 0;
            }
            bytes += file.size_bytes;
            rows.push(file);
        } else {
            if !rows.is_empty() {
                units.push(Unit::Rows(std::mem::take(&mut rows)));
                bytes = 0;
            }
            units.push(Unit::Blob(Box::new(file)));
        }
    }
    if !rows.is_empty() {
        units.push(Unit::Rows(rows));
    }
    units
}

type Scanned = (FileInfo, Option<Vec<Found>>);

impl WorkspaceManager {
    /// Scans files kept in their rows, fetched with one query. A file whose content went away
    /// since the listing is skipped (`None`), as a binary one is.
    async fn scan_rows(&self, files: Vec<FileInfo>, regex: &Regex, context: usize, max: usize) -> Result<Vec<Scanned>> {
        let mut contents = self.inline_contents(&files).await?;
        Ok(files
            .into_iter()
            .map(|info| {
                let outcome = contents.remove(&info.content.id()).map(|bytes| {
                    let mut scan = FileScan::new(regex, context, max);
                    scan.push(&bytes);
                    scan.finish()
                });
                (info, outcome.flatten())
            })
            .collect())
    }

    /// Streams a blob file through a scan. A file whose content went away since the listing is
    /// skipped.
    async fn scan_blob(&self, info: FileInfo, regex: &Regex, context: usize, max: usize) -> Result<Scanned> {
        let opened = match self.open_info(info.clone()).await {
            Err(WorkspaceError::NotFound(_)) => return Ok((info, None)),
            other => other?,
        };
        let mut scan = FileScan::new(regex, context, max);
        if opened.info.size_bytes > 0 {
            let mut stream = match opened.read(None).await {
                Err(WorkspaceError::NotFound(_)) => return Ok((opened.info, None)),
                other => other?.stream,
            };
            while let Some(chunk) = stream.try_next().await? {
                if scan.push(&chunk) {
                    break;
                }
            }
        }
        Ok((opened.info, scan.finish()))
    }
}

/// Types whose content is never text worth searching.
fn is_binary_type(info: &FileInfo) -> bool {
    let top = info.mime_type.type_();
    (top == mime::IMAGE && info.mime_type.suffix() != Some(mime::XML)) || top == mime::AUDIO || top == mime::VIDEO
}

#[derive(Debug)]
struct Found {
    line: u64,
    text: String,
    before: Vec<String>,
    after: Vec<String>,
}

/// The search of one file, fed chunk by chunk.
struct FileScan<'r> {
    regex: &'r Regex,
    context: usize,
    max: usize,
    /// Bytes of an incomplete last line carried to the next chunk.
    carry: Vec<u8>,
    /// Number of the first line in the next bytes searched.
    line: u64,
    seen: usize,
    binary: bool,
    found: Vec<Found>,
    /// The last `context` lines seen (when `context > 0`).
    recent: VecDeque<String>,
    /// Matches still collecting lines after them: (index in `found`, lines still wanted).
    pending: Vec<(usize, usize)>,
}

impl<'r> FileScan<'r> {
    fn new(regex: &'r Regex, context: usize, max: usize) -> Self {
        Self {
            regex,
            context,
            max,
            carry: Vec::new(),
            line: 1,
            seen: 0,
            binary: false,
            found: Vec::new(),
            recent: VecDeque::new(),
            pending: Vec::new(),
        }
    }

    /// Feeds a chunk; `true` when the scan is done (binary, or enough matches).
    fn push(&mut self, chunk: &[u8]) -> bool {
        if self.seen < BINARY_SNIFF_BYTES {
            let look = &chunk[..chunk.len().min(BINARY_SNIFF_BYTES - self.seen)];
            if look.contains(&0) {
                self.binary = true;
                return true;
            }
        }
        self.seen = self.seen.saturating_add(chunk.len());
        let Some(last_newline) = chunk.iter().rposition(|&b| b == b'\n') else {
            self.carry.extend_from_slice(chunk);
            return false;
        };
        if self.carry.is_empty() {
            self.search(&chunk[..=last_newline]);
        } else {
            let mut lines = std::mem::take(&mut self.carry);
            lines.extend_from_slice(&chunk[..=last_newline]);
            self.search(&lines);
        }
        self.carry.extend_from_slice(&chunk[last_newline + 1..]);
        self.found.len() >= self.max && self.pending.is_empty()
    }

    /// `None` for a binary file, else what was found.
    fn finish(mut self) -> Option<Vec<Found>> {
        if self.binary {
            return None;
        }
        if !self.carry.is_empty() {
            let mut rest = std::mem::take(&mut self.carry);
            rest.push(b'\n');
            self.search(&rest);
        }
        Some(self.found)
    }

    /// Searches complete lines (`lines` ends with a newline).
    fn search(&mut self, lines: &[u8]) {
        if self.context > 0 {
            return self.search_with_context(lines);
        }
        let mut at = 0;
        while at < lines.len() && self.found.len() < self.max {
            let Some(m) = self.regex.find_at(lines, at) else {
                break;
            };
            let start = lines[..m.start()].iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            let end = start + lines[start..].iter().position(|&b| b == b'\n').unwrap_or(lines.len() - start);
            self.line += count_newlines(&lines[at..start]);
            self.found.push(Found {
                line: self.line,
                text: line_text(&lines[start..end]),
                before: vec![],
                after: vec![],
            });
            // The next search starts on the next line: one match per line.
            self.line += 1;
            at = end + 1;
        }
        if at < lines.len() {
            self.line += count_newlines(&lines[at..]);
        }
    }

    fn search_with_context(&mut self, lines: &[u8]) {
        for raw in lines.split_inclusive(|&b| b == b'\n') {
            let raw = raw.strip_suffix(b"\n").unwrap_or(raw);
            let text = line_text(raw);
            self.pending.retain_mut(|(index, wanted)| {
                if let Some(found) = self.found.get_mut(*index) {
                    found.after.push(text.clone());
                }
                *wanted -= 1;
                *wanted > 0
            });
            if self.found.len() < self.max && self.regex.is_match(raw) {
                self.found.push(Found {
                    line: self.line,
                    text: text.clone(),
                    before: self.recent.iter().cloned().collect(),
                    after: vec![],
                });
                self.pending.push((self.found.len() - 1, self.context));
            }
            self.recent.push_back(text);
            if self.recent.len() > self.context {
                self.recent.pop_front();
            }
            self.line += 1;
        }
    }
}

fn count_newlines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

fn line_text(raw: &[u8]) -> String {
    let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
    let cut = &raw[..raw.len().min(MAX_LINE_CHARS * 4)];
    let text = String::from_utf8_lossy(cut);
    if text.chars().count() > MAX_LINE_CHARS || cut.len() < raw.len() {
        let mut short: String = text.chars().take(MAX_LINE_CHARS).collect();
        short.push('…');
        short
    } else {
        text.into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(text: &str, pattern: &str, context: usize, chunk: usize) -> Vec<(u64, String, usize, usize)> {
        let regex = compile_pattern(pattern, false, false).unwrap();
        let mut s = FileScan::new(&regex, context, 100);
        for part in text.as_bytes().chunks(chunk) {
            if s.push(part) {
                break;
            }
        }
        s.finish().unwrap().into_iter().map(|f| (f.line, f.text, f.before.len(), f.after.len())).collect()
    }

    #[test]
    fn line_numbers_hold_across_chunks_with_and_without_context() {
        let text = "alpha\nbeta\ngamma beta\ndelta\nbeta";
        for chunk in 1..12 {
            let got = scan(text, "beta", 0, chunk);
            let lines: Vec<_> = got.iter().map(|m| (m.0, m.1.as_str())).collect();
            assert_eq!(lines, [(2, "beta"), (3, "gamma beta"), (5, "beta")], "chunk {chunk}");
            let with = scan(text, "beta", 1, chunk);
            assert_eq!(with.iter().map(|m| (m.0, m.2, m.3)).collect::<Vec<_>>(), [(2, 1, 1), (3, 1, 1), (5, 1, 0)]);
        }
        assert_eq!(scan("x\n^y\ny", "^y", 0, 3).iter().map(|m| m.0).collect::<Vec<_>>(), [3], "^ anchors at lines");
    }

    #[test]
    fn binaries_are_detected_and_bad_patterns_refused() {
        let regex = compile_pattern("a", false, false).unwrap();
        let mut s = FileScan::new(&regex, 0, 10);
        assert!(s.push(b"a\0a\n"));
        assert!(s.finish().is_none());
        let err = compile_pattern("(unclosed", false, false).unwrap_err().to_string();
        assert!(err.contains("invalid regular expression") && err.contains("unclosed"), "{err}");
        assert!(compile_pattern("(unclosed", true, false).is_ok(), "literal mode escapes");
        assert!(compile_pattern("a{1000}{1000}", false, false).is_err(), "huge programs are refused");
    }

    #[test]
    fn globs_match_names_relative_and_absolute_paths() {
        let prefix = PathPrefix::parse("/notes").unwrap();
        let path = WorkspacePath::parse("/notes/a/b.md").unwrap();
        assert!(PathGlob::parse("*.md").unwrap().matches(&path, &prefix));
        assert!(PathGlob::parse("**/*.md").unwrap().matches(&path, &prefix));
        assert!(PathGlob::parse("a/*.md").unwrap().matches(&path, &prefix));
        assert!(!PathGlob::parse("*/x.md").unwrap().matches(&path, &prefix));
        assert!(PathGlob::parse("/notes/**").unwrap().matches(&path, &prefix));
        assert!(!PathGlob::parse("*.txt").unwrap().matches(&path, &prefix));
        assert!(PathGlob::parse("a[").is_err());
    }
}
