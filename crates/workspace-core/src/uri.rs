//! `workspace://` references: the way blocks, the chat assistant and the UI point at a stored file.
//!
//! Forms: `workspace://{file_id}`, `workspace://{file_id}#{mime}` and the path form
//! `workspace:///sessions/s1/cat.png`. One parser and one formatter, round-trip tested.

use std::fmt;
use std::str::FromStr;

use crate::ids::FileId;
use crate::path::{PathError, WorkspacePath};

/// The scheme prefix of every reference.
pub const SCHEME_PREFIX: &str = "workspace://";

/// A parsed `workspace://` reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum WorkspaceUri {
    /// A file by id, with an optional MIME hint (`workspace://{id}#{mime}`).
    File {
        /// The file.
        id: FileId,
        /// A lower-case `type/subtype` hint, if one was given.
        mime: Option<String>,
    },
    /// A file by virtual path (`workspace:///path`).
    Path(WorkspacePath),
}

/// Why a reference did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UriError {
    /// Not a `workspace://` reference at all.
    #[error("invalid workspace reference: it must start with `workspace://`")]
    Scheme,
    /// Nothing after the scheme.
    #[error("invalid workspace reference: missing the file id or path after `workspace://`")]
    Missing,
    /// The id part is not a canonical hyphenated uuid.
    #[error("invalid workspace reference: `{0}` is not a file id (expected a hyphenated uuid)")]
    BadId(String),
    /// The fragment is not a `type/subtype` MIME type.
    #[error("invalid workspace reference: `{0}` is not a MIME type (expected `type/subtype`)")]
    BadMime(String),
    /// The path form broke a path rule.
    #[error("invalid workspace reference: {0}")]
    Path(#[from] PathError),
}

impl WorkspaceUri {
    /// A reference to a file by id with a MIME hint.
    pub fn file(id: FileId, mime: Option<&str>) -> Result<Self, UriError> {
        let mime = mime.map(parse_mime).transpose()?;
        Ok(Self::File { id, mime })
    }

    /// Parses a reference.
    pub fn parse(input: &str) -> Result<Self, UriError> {
        let rest = input
            .get(..SCHEME_PREFIX.len())
            .filter(|scheme| scheme.eq_ignore_ascii_case(SCHEME_PREFIX))
            .map(|_| &input[SCHEME_PREFIX.len()..])
            .ok_or(UriError::Scheme)?;
        if rest.is_empty() {
            return Err(UriError::Missing);
        }
        if rest.starts_with('/') {
            return Ok(Self::Path(WorkspacePath::parse(rest)?));
        }
        let (id_part, mime_part) = match rest.split_once('#') {
            Some((id, mime)) => (id, Some(mime)),
            None => (rest, None),
        };
        if id_part.len() != 36 {
            return Err(UriError::BadId(shorten(id_part)));
        }
        let id = FileId::from_str(id_part).map_err(|_| UriError::BadId(shorten(id_part)))?;
        let mime = mime_part.map(parse_mime).transpose()?;
        Ok(Self::File { id, mime })
    }

    /// Whether the text looks like a reference (starts with the scheme), valid or not.
    pub fn is_workspace_uri(input: &str) -> bool {
        input.get(..SCHEME_PREFIX.len()).is_some_and(|s| s.eq_ignore_ascii_case(SCHEME_PREFIX))
    }
}

/// Accepts `type/subtype` made of RFC 6838 restricted-name characters and lower-cases it.
fn parse_mime(input: &str) -> Result<String, UriError> {
    let valid_name = |s: &str| {
        !s.is_empty() && s.len() <= 127 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    match input.split_once('/') {
        Some((ty, sub)) if valid_name(ty) && valid_name(sub) => Ok(input.to_ascii_lowercase()),
        _ => Err(UriError::BadMime(shorten(input))),
    }
}

fn shorten(input: &str) -> String {
    input.chars().filter(|c| !c.is_control()).take(64).collect()
}

impl fmt::Display for WorkspaceUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File { id, mime: None } => write!(f, "{SCHEME_PREFIX}{id}"),
            Self::File { id, mime: Some(mime) } => write!(f, "{SCHEME_PREFIX}{id}#{mime}"),
            Self::Path(path) => write!(f, "{SCHEME_PREFIX}{path}"),
        }
    }
}

impl FromStr for WorkspaceUri {
    type Err = UriError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ID: &str = "4f1b2c3d-0000-4000-8000-00000000abcd";

    #[test]
    fn parses_each_form() {
        let id: FileId = ID.parse().unwrap();
        assert_eq!(WorkspaceUri::parse(&format!("workspace://{ID}")).unwrap(), WorkspaceUri::File { id, mime: None });
        assert_eq!(
            WorkspaceUri::parse(&format!("workspace://{ID}#image/png")).unwrap(),
            WorkspaceUri::File { id, mime: Some("image/png".into()) }
        );
        assert_eq!(
            WorkspaceUri::parse(&format!("WORKSPACE://{ID}#Image/PNG")).unwrap().to_string(),
            format!("workspace://{ID}#image/png")
        );
        assert_eq!(
            WorkspaceUri::parse("workspace:///sessions/s1/cat.png").unwrap(),
            WorkspaceUri::Path(WorkspacePath::parse("/sessions/s1/cat.png").unwrap())
        );
    }

    #[test]
    fn rejects_malformed_with_clear_errors() {
        let cases: Vec<(String, UriError)> = vec![
            ("http://x".into(), UriError::Scheme),
            ("workspace:".into(), UriError::Scheme),
            ("".into(), UriError::Scheme),
            ("workspace://".into(), UriError::Missing),
            ("workspace://not-a-uuid".into(), UriError::BadId("not-a-uuid".into())),
            (format!("workspace://{{{ID}}}"), UriError::BadId(format!("{{{ID}}}"))),
            (format!("workspace://{}", ID.replace('-', "")), UriError::BadId(ID.replace('-', ""))),
            (format!("workspace://{ID}#"), UriError::BadMime(String::new())),
            (format!("workspace://{ID}#image"), UriError::BadMime("image".into())),
            (format!("workspace://{ID}#image/png;x=1"), UriError::BadMime("image/png;x=1".into())),
            (format!("workspace://{ID}#/png"), UriError::BadMime("/png".into())),
            ("workspace:///a/../b".into(), UriError::Path(PathError::DotSegment(".."))),
            ("workspace:////a".into(), UriError::Path(PathError::EmptySegment)),
        ];
        for (input, expected) in cases {
            assert_eq!(WorkspaceUri::parse(&input), Err(expected.clone()), "input {input:?}");
            assert!(!expected.to_string().is_empty());
        }
    }

    fn arb_mime() -> impl Strategy<Value = String> {
        ("[a-z0-9][a-z0-9.+-]{0,15}", "[a-z0-9][a-z0-9.+_-]{0,30}").prop_map(|(t, s)| format!("{t}/{s}"))
    }

    fn arb_path() -> impl Strategy<Value = WorkspacePath> {
        proptest::collection::vec("[^/\\\\\\p{Cc}]{1,20}", 1..6)
            .prop_filter_map("valid path", |segs| WorkspacePath::parse(&format!("/{}", segs.join("/"))).ok())
    }

    fn arb_uri() -> impl Strategy<Value = WorkspaceUri> {
        prop_oneof![
            (any::<u128>(), proptest::option::of(arb_mime()))
                .prop_map(|(n, mime)| WorkspaceUri::File { id: FileId::from_uuid(uuid::Uuid::from_u128(n)), mime }),
            arb_path().prop_map(WorkspaceUri::Path),
        ]
    }

    proptest! {
        #[test]
        fn round_trips(uri in arb_uri()) {
            let text = uri.to_string();
            prop_assert!(WorkspaceUri::is_workspace_uri(&text));
            let parsed = WorkspaceUri::parse(&text).unwrap();
            prop_assert_eq!(&parsed, &uri);
            prop_assert_eq!(parsed.to_string(), text);
        }

        #[test]
        fn never_panics_and_valid_parses_reformat_stably(input in "workspace://.{0,60}") {
            if let Ok(uri) = WorkspaceUri::parse(&input) {
                let again = WorkspaceUri::parse(&uri.to_string()).unwrap();
                prop_assert_eq!(again, uri);
            }
        }
    }
}
