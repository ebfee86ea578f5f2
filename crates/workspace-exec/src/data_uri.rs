//! A strict `data:` URI parser and formatter (RFC 2397), because media moves between blocks and
//! external APIs as data URIs and a lenient parser is how malformed or oversized input sneaks in.
//!
//! Grammar accepted: `data:[type/subtype][;attr=value]*[;base64],payload`. The media type and
//! attribute names are RFC 2045 tokens; attribute values are tokens or percent-encoded text.
//! A base64 payload uses the standard alphabet (padding optional, no whitespace); any other
//! payload is percent-decoded and every `%` must start a valid escape. The decoded size is
//! computed from the text and checked against the cap before anything is allocated.

use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use bytes::Bytes;

/// The type assumed when a data URI names none (RFC 2397).
pub const DEFAULT_MEDIA_TYPE: &str = "text/plain";

const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a data URI was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DataUriError {
    /// It does not start with `data:`.
    #[error("it must start with `data:`")]
    Scheme,
    /// There is no `,` between the header and the payload.
    #[error("missing `,` between the media type and the data")]
    MissingComma,
    /// The media type is not `type/subtype`.
    #[error("`{0}` is not a media type (expected `type/subtype`)")]
    BadMediaType(String),
    /// A parameter is not `attr=value`.
    #[error("`{0}` is not a parameter (expected `attr=value`, and `;base64` only last)")]
    BadParameter(String),
    /// The payload is not valid base64.
    #[error("the base64 data is malformed: {0}")]
    BadBase64(String),
    /// A `%` not followed by two hex digits, or a character not allowed in a URI.
    #[error("the percent-encoded data is malformed at byte {0}")]
    BadPercentEncoding(usize),
    /// The payload decodes to nothing.
    #[error("the data is empty (0 bytes)")]
    Empty,
    /// The decoded payload would exceed the cap.
    #[error("the decoded data ({size} bytes) exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Decoded size in bytes.
        size: u64,
        /// The cap in bytes.
        limit: u64,
    },
}

/// A decoded data URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataUri {
    /// The media type essence, lower-cased (`text/plain` when none was given).
    pub mime: String,
    /// The `name` (or `filename`) parameter, percent-decoded, if present.
    pub name: Option<String>,
    /// The decoded bytes (never empty).
    pub data: Bytes,
}

impl DataUri {
    /// Parses and decodes `input`, refusing payloads that decode to more than `max_bytes`.
    pub fn parse(input: &str, max_bytes: u64) -> Result<Self, DataUriError> {
        let rest = input
            .get(..5)
            .filter(|scheme| scheme.eq_ignore_ascii_case("data:"))
            .map(|_| &input[5..])
            .ok_or(DataUriError::Scheme)?;
        let (header, payload) = rest.split_once(',').ok_or(DataUriError::MissingComma)?;
        let mut parts = header.split(';');
        let media_type = parts.next().unwrap_or_default();
        let mime = if media_type.is_empty() { DEFAULT_MEDIA_TYPE.to_owned() } else { parse_media_type(media_type)? };
        let params: Vec<&str> = parts.collect();
        let mut base64 = false;
        let mut name = None;
        for (i, param) in params.iter().enumerate() {
            if param.eq_ignore_ascii_case("base64") && i + 1 == params.len() {
                base64 = true;
                continue;
            }
            let (attr, value) = param
                .split_once('=')
                .filter(|(attr, value)| is_token(attr) && !value.is_empty())
                .ok_or_else(|| DataUriError::BadParameter(shorten(param)))?;
            let value = percent_decode(value.as_bytes())
                .ok()
                .and_then(|v| String::from_utf8(v).ok())
                .ok_or_else(|| DataUriError::BadParameter(shorten(param)))?;
            if attr.eq_ignore_ascii_case("name") || attr.eq_ignore_ascii_case("filename") {
                name = Some(value);
            }
        }
        let data = if base64 { decode_base64(payload, max_bytes)? } else { decode_percent(payload, max_bytes)? };
        if data.is_empty() {
            return Err(DataUriError::Empty);
        }
        Ok(Self { mime, name, data: Bytes::from(data) })
    }

    /// Formats bytes as `data:{mime}[;name=…];base64,{data}`.
    pub fn format(mime: &str, name: Option<&str>, data: &[u8]) -> String {
        let mime = parse_media_type(mime).unwrap_or_else(|_| "application/octet-stream".to_owned());
        let name = name.map(|n| format!(";name={}", percent_encode(n))).unwrap_or_default();
        format!("data:{mime}{name};base64,{}", BASE64_OUT.encode(data))
    }
}

const BASE64_OUT: GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn decode_base64(payload: &str, max_bytes: u64) -> Result<Vec<u8>, DataUriError> {
    let unpadded = payload.trim_end_matches('=');
    // Exact decoded length of a well-formed payload; checked before the buffer exists.
    let size = (unpadded.len() as u64 * 3) / 4;
    if size > max_bytes {
        return Err(DataUriError::TooLarge { size, limit: max_bytes });
    }
    BASE64.decode(payload).map_err(|e| DataUriError::BadBase64(e.to_string()))
}

fn decode_percent(payload: &str, max_bytes: u64) -> Result<Vec<u8>, DataUriError> {
    let escapes = payload.bytes().filter(|b| *b == b'%').count() as u64;
    let size = (payload.len() as u64).saturating_sub(2 * escapes);
    if size > max_bytes {
        return Err(DataUriError::TooLarge { size, limit: max_bytes });
    }
    percent_decode(payload.as_bytes())
}

/// Decodes `%XX` escapes; refuses a broken escape and raw control characters or spaces.
fn percent_decode(input: &[u8]) -> Result<Vec<u8>, DataUriError> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'%' => {
                let hex = input.get(i + 1..i + 3).ok_or(DataUriError::BadPercentEncoding(i))?;
                let text = std::str::from_utf8(hex).map_err(|_| DataUriError::BadPercentEncoding(i))?;
                let byte = u8::from_str_radix(text, 16).map_err(|_| DataUriError::BadPercentEncoding(i))?;
                out.push(byte);
                i += 3;
            }
            b if b.is_ascii_control() || b == b' ' => return Err(DataUriError::BadPercentEncoding(i)),
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Ok(out)
}

fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn parse_media_type(input: &str) -> Result<String, DataUriError> {
    match input.split_once('/') {
        Some((ty, sub)) if is_token(ty) && is_token(sub) => Ok(input.to_ascii_lowercase()),
        _ => Err(DataUriError::BadMediaType(shorten(input))),
    }
}

/// RFC 2045 token: visible ASCII except tspecials.
fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?=".contains(&b))
}

fn shorten(input: &str) -> String {
    input.chars().filter(|c| !c.is_control()).take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAP: u64 = 1024;

    #[test]
    fn parses_base64_and_percent_forms() {
        let uri = DataUri::parse("data:image/PNG;base64,iVBORw0KGgo=", CAP).unwrap();
        assert_eq!(uri.mime, "image/png");
        assert_eq!(&uri.data[..], b"\x89PNG\r\n\x1a\n");
        let uri = DataUri::parse("data:text/plain;charset=utf-8,hello%20w%C3%B6rld", CAP).unwrap();
        assert_eq!(uri.mime, "text/plain");
        assert_eq!(std::str::from_utf8(&uri.data).unwrap(), "hello wörld");
        let uri = DataUri::parse("DATA:,abc", CAP).unwrap();
        assert_eq!((uri.mime.as_str(), &uri.data[..]), ("text/plain", &b"abc"[..]));
        let uri = DataUri::parse("data:image/png;name=qr%20code.png;base64,iVBORw0KGgo", CAP).unwrap();
        assert_eq!(uri.name.as_deref(), Some("qr code.png"));
    }

    #[test]
    fn refuses_malformed_input_with_clear_errors() {
        let cases: Vec<(&str, DataUriError)> = vec![
            ("", DataUriError::Scheme),
            ("http://x", DataUriError::Scheme),
            ("data:", DataUriError::MissingComma),
            ("data:image/png;base64", DataUriError::MissingComma),
            ("data:,", DataUriError::Empty),
            ("data:image/png;base64,", DataUriError::Empty),
            ("data:image;base64,AAAA", DataUriError::BadMediaType("image".into())),
            ("data:im age/png,x", DataUriError::BadMediaType("im age/png".into())),
            ("data:image/png;base64;x=1,AAAA", DataUriError::BadParameter("base64".into())),
            ("data:image/png;charset,x", DataUriError::BadParameter("charset".into())),
            ("data:text/plain,50%", DataUriError::BadPercentEncoding(2)),
            ("data:text/plain,%zz", DataUriError::BadPercentEncoding(0)),
            ("data:text/plain,a b", DataUriError::BadPercentEncoding(1)),
        ];
        for (input, expected) in cases {
            assert_eq!(DataUri::parse(input, CAP), Err(expected.clone()), "input {input:?}");
            assert!(!expected.to_string().is_empty());
        }
        for bad in ["data:;base64,!!!!", "data:;base64,AA AA", "data:;base64,A", "data:;base64,AA=A"] {
            assert!(matches!(DataUri::parse(bad, CAP), Err(DataUriError::BadBase64(_))), "{bad}");
        }
    }

    #[test]
    fn size_cap_is_checked_before_decoding() {
        // Exactly at the cap is fine, one byte over is refused, in both encodings.
        let at_cap = format!("data:;base64,{}", BASE64_OUT.encode(vec![7u8; CAP as usize]));
        assert_eq!(DataUri::parse(&at_cap, CAP).unwrap().data.len(), CAP as usize);
        let over = format!("data:;base64,{}", BASE64_OUT.encode(vec![7u8; CAP as usize + 1]));
        assert_eq!(DataUri::parse(&over, CAP), Err(DataUriError::TooLarge { size: CAP + 1, limit: CAP }));
        let over = format!("data:,{}", "%41".repeat(CAP as usize + 1));
        assert_eq!(DataUri::parse(&over, CAP), Err(DataUriError::TooLarge { size: CAP + 1, limit: CAP }));
        // A huge payload that is not even valid base64 is refused by size before any decoding.
        let huge = format!("data:;base64,{}", "!".repeat(10 * CAP as usize));
        assert!(matches!(DataUri::parse(&huge, CAP), Err(DataUriError::TooLarge { .. })));
    }

    #[test]
    fn format_round_trips() {
        let text = DataUri::format("image/png", Some("a b.png"), b"\x89PNG");
        assert_eq!(text, "data:image/png;name=a%20b.png;base64,iVBORw==");
        let back = DataUri::parse(&text, CAP).unwrap();
        assert_eq!(
            (back.mime.as_str(), back.name.as_deref(), &back.data[..]),
            ("image/png", Some("a b.png"), &b"\x89PNG"[..])
        );
        assert!(DataUri::format("not a mime", None, b"x").starts_with("data:application/octet-stream;base64,"));
    }
}
