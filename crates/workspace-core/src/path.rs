//! `WorkspacePath`: the one type for virtual paths. Every rule of SPEC §4 lives here, so a value
//! of this type is valid by construction and nobody checks it again.

use std::fmt;

use serde::{Serialize, Serializer};
use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfc_quick};

use crate::ids::SessionId;

/// Longest path in bytes (after NFC normalisation).
pub const MAX_PATH_BYTES: usize = 1024;
/// Longest single segment in bytes.
pub const MAX_SEGMENT_BYTES: usize = 255;

/// A path rule that an input broke. The message names the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    /// The input was empty.
    #[error("invalid path: the path is empty")]
    Empty,
    /// The input was not valid UTF-8.
    #[error("invalid path: paths must be valid UTF-8")]
    NotUtf8,
    /// An absolute path was required.
    #[error("invalid path: `{0}` must start with `/`")]
    NotAbsolute(String),
    /// Two slashes in a row, or a trailing slash.
    #[error("invalid path: empty segment (`//` or a trailing `/`) is not allowed")]
    EmptySegment,
    /// A `.` or `..` segment.
    #[error("invalid path: `{0}` segments are not allowed")]
    DotSegment(&'static str),
    /// NUL or another control character.
    #[error("invalid path: control character U+{0:04X} is not allowed")]
    ControlCharacter(u32),
    /// A backslash.
    #[error("invalid path: backslash is not allowed (use `/` to separate segments)")]
    Backslash,
    /// Over [`MAX_PATH_BYTES`].
    #[error("invalid path: {0} bytes is longer than the limit of {MAX_PATH_BYTES}")]
    TooLong(usize),
    /// A segment over [`MAX_SEGMENT_BYTES`].
    #[error("invalid path: a segment of {0} bytes is longer than the limit of {MAX_SEGMENT_BYTES}")]
    SegmentTooLong(usize),
    /// A path that names no file (the root).
    #[error("invalid path: `/` is a folder, not a file")]
    Root,
    /// A session id containing `/`.
    #[error("invalid session id: it may not contain `/`")]
    SessionHasSlash,
}

/// A validated, NFC-normalised, absolute virtual path such as `/sessions/s1/cat.png`.
///
/// Rules: UTF-8; starts with `/`; at least one segment; no empty, `.` or `..` segments; no NUL or
/// other control characters; no backslash; at most 1024 bytes; each segment at most 255 bytes.
/// Nothing is decoded: `%2e%2e` is a literal segment.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkspacePath(String);

impl WorkspacePath {
    /// Parses an absolute path. The only rewrite applied is Unicode NFC normalisation.
    pub fn parse(input: &str) -> Result<Self, PathError> {
        if input.is_empty() {
            return Err(PathError::Empty);
        }
        let normalised = nfc(input);
        let Some(rest) = normalised.strip_prefix('/') else {
            return Err(PathError::NotAbsolute(truncate_for_message(&normalised)));
        };
        if rest.is_empty() {
            return Err(PathError::Root);
        }
        check_chars(&normalised)?;
        if normalised.len() > MAX_PATH_BYTES {
            return Err(PathError::TooLong(normalised.len()));
        }
        for segment in rest.split('/') {
            check_segment(segment)?;
        }
        Ok(Self(normalised))
    }

    /// Parses raw bytes, refusing anything that is not UTF-8.
    pub fn from_bytes(input: &[u8]) -> Result<Self, PathError> {
        std::str::from_utf8(input).map_err(|_| PathError::NotUtf8).and_then(Self::parse)
    }

    /// Resolves user input against an optional session (SPEC §4):
    /// - `/…` is absolute inside the workspace;
    /// - relative with a session goes under `/sessions/{session}/`;
    /// - relative without a session goes under `/`.
    pub fn resolve(input: &str, session: Option<&SessionId>) -> Result<Self, PathError> {
        if input.is_empty() {
            return Err(PathError::Empty);
        }
        if input.starts_with('/') {
            return Self::parse(input);
        }
        match session {
            Some(session) => Self::parse(&format!("{}/{input}", session_root(session))),
            None => Self::parse(&format!("/{input}")),
        }
    }

    /// The path as text, always starting with `/`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last segment: the file name.
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or_default()
    }

    /// The segments after the leading `/`.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0[1..].split('/')
    }

    /// Whether this path lies inside `prefix` (segment-aligned: `/a/b` is inside `/a` but
    /// `/ab` is not).
    pub fn starts_with(&self, prefix: &PathPrefix) -> bool {
        match prefix.as_dir() {
            None => true,
            Some(dir) => self.0 == dir || self.0.strip_prefix(dir).is_some_and(|r| r.starts_with('/')),
        }
    }
}

impl PartialEq<str> for WorkspacePath {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for WorkspacePath {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<String> for WorkspacePath {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}

impl fmt::Display for WorkspacePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for WorkspacePath {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl std::str::FromStr for WorkspacePath {
    type Err = PathError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// A folder to list: `/` (everything) or a validated path whose files and sub-folders are meant.
/// A trailing `/` is accepted and ignored. Matching is by whole segments, so the prefix
/// `/sessions/abc` never matches `/sessions/abc123/…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPrefix(Option<WorkspacePath>);

impl PathPrefix {
    /// Everything in the workspace.
    pub const ROOT: Self = Self(None);

    /// Parses a folder prefix (absolute).
    pub fn parse(input: &str) -> Result<Self, PathError> {
        match input {
            "" => Err(PathError::Empty),
            "/" => Ok(Self::ROOT),
            _ => {
                let trimmed = input.strip_suffix('/').unwrap_or(input);
                WorkspacePath::parse(trimmed).map(|p| Self(Some(p)))
            }
        }
    }

    /// Resolves a prefix against a session the same way [`WorkspacePath::resolve`] does.
    pub fn resolve(input: &str, session: Option<&SessionId>) -> Result<Self, PathError> {
        if input.starts_with('/') {
            return Self::parse(input);
        }
        match (input, session) {
            ("", Some(session)) => Self::session(session),
            ("", None) => Ok(Self::ROOT),
            (_, Some(session)) => Self::parse(&format!("{}/{input}", session_root(session))),
            (_, None) => Self::parse(&format!("/{input}")),
        }
    }

    /// The folder of one session: `/sessions/{id}`.
    pub fn session(session: &SessionId) -> Result<Self, PathError> {
        Self::parse(&session_root(session))
    }

    /// The folder as a path without trailing slash, or `None` for the root.
    pub fn as_dir(&self) -> Option<&str> {
        self.0.as_ref().map(WorkspacePath::as_str)
    }
}

impl fmt::Display for PathPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_dir().unwrap_or("/"))
    }
}

fn session_root(session: &SessionId) -> String {
    format!("/sessions/{}", session.as_str())
}

/// NFC-normalises text, borrowing nothing when it already is NFC.
pub(crate) fn nfc(input: &str) -> String {
    match is_nfc_quick(input.chars()) {
        IsNormalized::Yes => input.to_owned(),
        _ => input.nfc().collect(),
    }
}

fn check_chars(input: &str) -> Result<(), PathError> {
    for c in input.chars() {
        if c.is_control() {
            return Err(PathError::ControlCharacter(c as u32));
        }
        if c == '\\' {
            return Err(PathError::Backslash);
        }
    }
    Ok(())
}

/// Checks one segment against the segment rules (also used for session ids).
pub(crate) fn check_segment(segment: &str) -> Result<(), PathError> {
    match segment {
        "" => return Err(PathError::EmptySegment),
        "." => return Err(PathError::DotSegment(".")),
        ".." => return Err(PathError::DotSegment("..")),
        _ => {}
    }
    check_chars(segment)?;
    if segment.len() > MAX_SEGMENT_BYTES {
        return Err(PathError::SegmentTooLong(segment.len()));
    }
    Ok(())
}

fn truncate_for_message(input: &str) -> String {
    let clean: String = input.chars().filter(|c| !c.is_control()).take(64).collect();
    clean
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(s: &str) -> SessionId {
        SessionId::new(s).unwrap()
    }

    #[test]
    fn path_rules_table() {
        let long_segment = "a".repeat(256);
        let max_segment = "a".repeat(255);
        let long_path = format!("/{}{}", format!("{}/", "b".repeat(200)).repeat(4), "c".repeat(220));
        assert_eq!(long_path.len(), 1025);
        let max_path = &long_path[..1024];
        let cases: Vec<(&str, Result<&str, PathError>)> = vec![
            ("/a/b.txt", Ok("/a/b.txt")),
            ("/sessions/s1/cat.png", Ok("/sessions/s1/cat.png")),
            ("/a/../b", Err(PathError::DotSegment(".."))),
            ("/..", Err(PathError::DotSegment(".."))),
            ("/a/./b", Err(PathError::DotSegment("."))),
            ("/a//b", Err(PathError::EmptySegment)),
            ("/a/b/", Err(PathError::EmptySegment)),
            ("//a", Err(PathError::EmptySegment)),
            ("/", Err(PathError::Root)),
            ("", Err(PathError::Empty)),
            ("a/b", Err(PathError::NotAbsolute("a/b".into()))),
            ("/a\0b", Err(PathError::ControlCharacter(0))),
            ("/a\nb", Err(PathError::ControlCharacter(10))),
            ("/a\u{7f}b", Err(PathError::ControlCharacter(0x7f))),
            ("/a\u{85}b", Err(PathError::ControlCharacter(0x85))),
            ("/a\\b", Err(PathError::Backslash)),
            ("/%2e%2e/x", Ok("/%2e%2e/x")),
            ("/a/%2E%2E", Ok("/a/%2E%2E")),
            ("/...", Ok("/...")),
            ("/.hidden", Ok("/.hidden")),
            ("/a b/ü €.txt", Ok("/a b/ü €.txt")),
            (&long_path, Err(PathError::TooLong(1025))),
        ];
        for (input, expected) in cases {
            let got = WorkspacePath::parse(input).map(|p| p.as_str().to_owned());
            assert_eq!(got, expected.map(str::to_owned), "input {input:?}");
        }
        let seg_path = format!("/x/{long_segment}");
        assert_eq!(WorkspacePath::parse(&seg_path), Err(PathError::SegmentTooLong(256)));
        assert!(WorkspacePath::parse(&format!("/x/{max_segment}")).is_ok());
        assert!(WorkspacePath::parse(max_path).is_ok(), "1024 bytes is allowed");
    }

    #[test]
    fn errors_name_the_rule() {
        let msg = WorkspacePath::parse("/a/../b").unwrap_err().to_string();
        assert!(msg.contains("`..` segments are not allowed"), "{msg}");
        let msg = WorkspacePath::parse("/a\\b").unwrap_err().to_string();
        assert!(msg.contains("backslash"), "{msg}");
        let msg = WorkspacePath::parse(&format!("/{}", "x".repeat(300))).unwrap_err().to_string();
        assert!(msg.contains("255"), "{msg}");
    }

    #[test]
    fn nfc_and_nfd_are_one_path() {
        let nfc_form = "/caf\u{e9}.txt";
        let nfd_form = "/cafe\u{301}.txt";
        assert_ne!(nfc_form, nfd_form);
        let a = WorkspacePath::parse(nfc_form).unwrap();
        let b = WorkspacePath::parse(nfd_form).unwrap();
        assert_eq!(a, b);
        assert_eq!(b.as_str(), nfc_form);
    }

    #[test]
    fn non_utf8_is_refused() {
        assert_eq!(WorkspacePath::from_bytes(b"/a/\xff"), Err(PathError::NotUtf8));
        assert!(WorkspacePath::from_bytes(b"/a/b").is_ok());
    }

    #[test]
    fn session_resolution() {
        let s = session("abc");
        let cases = [
            ("cat.png", Some(&s), Ok("/sessions/abc/cat.png")),
            ("img/cat.png", Some(&s), Ok("/sessions/abc/img/cat.png")),
            ("/shared/cat.png", Some(&s), Ok("/shared/cat.png")),
            ("/sessions/other/cat.png", Some(&s), Ok("/sessions/other/cat.png")),
            ("cat.png", None, Ok("/cat.png")),
            ("/cat.png", None, Ok("/cat.png")),
            ("../escape.png", Some(&s), Err(PathError::DotSegment(".."))),
            ("a/", Some(&s), Err(PathError::EmptySegment)),
            ("", Some(&s), Err(PathError::Empty)),
        ];
        for (input, sess, expected) in cases {
            let got = WorkspacePath::resolve(input, sess).map(|p| p.as_str().to_owned());
            assert_eq!(got, expected.map(str::to_owned), "input {input:?}");
        }
    }

    #[test]
    fn session_ids_are_single_segments() {
        assert!(SessionId::new("abc-123").is_ok());
        assert_eq!(SessionId::new("a/b"), Err(PathError::SessionHasSlash));
        assert_eq!(SessionId::new(".."), Err(PathError::DotSegment("..")));
        assert_eq!(SessionId::new(""), Err(PathError::EmptySegment));
    }

    #[test]
    fn prefixes_match_whole_segments() {
        let abc = PathPrefix::session(&session("abc")).unwrap();
        let inside = WorkspacePath::parse("/sessions/abc/x.txt").unwrap();
        let sibling = WorkspacePath::parse("/sessions/abc123/x.txt").unwrap();
        assert!(inside.starts_with(&abc));
        assert!(!sibling.starts_with(&abc));
        assert!(sibling.starts_with(&PathPrefix::ROOT));
        assert_eq!(PathPrefix::parse("/sessions/abc/").unwrap(), abc);
        assert_eq!(PathPrefix::parse("/").unwrap(), PathPrefix::ROOT);
        assert!(PathPrefix::parse("/a//").is_err());
        assert_eq!(PathPrefix::resolve("img", Some(&session("abc"))).unwrap().as_dir(), Some("/sessions/abc/img"));
    }
}
