//! `Content-Disposition` values (RFC 6266 with RFC 8187 `filename*`), built so that no file
//! name can inject a header or break the value.

use axum::http::HeaderValue;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// How the browser should treat a download.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Show it in the page.
    Inline,
    /// Save it.
    Attachment,
}

/// RFC 8187 `attr-char`: everything else is percent-encoded in `filename*`.
const ATTR_CHAR_ESCAPES: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// Builds the header value. Control characters are dropped; the ASCII `filename="…"` fallback
/// escapes `"` and `\` and replaces non-ASCII characters with `_`. Names that are not plain
/// printable ASCII, or that hold `"` or `\`, also get `filename*=UTF-8''…`, so parsers read the
/// exact name from a value with nothing to unescape. An empty result becomes `download`.
pub fn content_disposition(disposition: Disposition, file_name: &str) -> HeaderValue {
    let clean: String = file_name.chars().filter(|c| !c.is_control()).collect();
    let clean = if clean.trim().is_empty() { "download".to_owned() } else { clean };
    let kind = match disposition {
        Disposition::Inline => "inline",
        Disposition::Attachment => "attachment",
    };
    let mut value = format!("{kind}; filename=\"");
    let last = clean.chars().count() - 1;
    for (i, c) in clean.chars().enumerate() {
        match c {
            // A backslash right before the closing quote trips naive parsers that count quotes.
            '\\' if i == last => value.push('_'),
            '"' | '\\' => {
                value.push('\\');
                value.push(c);
            }
            ' '..='~' => value.push(c),
            _ => value.push('_'),
        }
    }
    value.push('"');
    if !clean.chars().all(|c| (' '..='~').contains(&c) && c != '"' && c != '\\') {
        value.push_str("; filename*=UTF-8''");
        value.extend(utf8_percent_encode(&clean, ATTR_CHAR_ESCAPES));
    }
    // Only printable ASCII was pushed, so this cannot fail; fall back to a constant regardless.
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn text(v: &HeaderValue) -> &str {
        v.to_str().unwrap()
    }

    #[test]
    fn plain_ascii_names() {
        assert_eq!(text(&content_disposition(Disposition::Attachment, "a.txt")), "attachment; filename=\"a.txt\"");
        assert_eq!(
            text(&content_disposition(Disposition::Inline, "say \"hi\" \\ bye;.txt")),
            "inline; filename=\"say \\\"hi\\\" \\\\ bye;.txt\"; filename*=UTF-8''say%20%22hi%22%20%5C%20bye%3B.txt"
        );
    }

    #[test]
    fn unicode_and_hostile_names() {
        assert_eq!(
            text(&content_disposition(Disposition::Attachment, "naïve 😀.png")),
            "attachment; filename=\"na_ve _.png\"; filename*=UTF-8''na%C3%AFve%20%F0%9F%98%80.png"
        );
        let injected = content_disposition(Disposition::Attachment, "a\r\nSet-Cookie: x=1\0.txt");
        assert_eq!(text(&injected), "attachment; filename=\"aSet-Cookie: x=1.txt\"");
        assert_eq!(text(&content_disposition(Disposition::Attachment, "\r\n")), "attachment; filename=\"download\"");
    }

    proptest! {
        #[test]
        fn always_a_valid_single_line_header(name in any::<String>()) {
            let value = content_disposition(Disposition::Attachment, &name);
            let bytes = value.as_bytes();
            prop_assert!(bytes.iter().all(|b| (0x20..0x7f).contains(b)), "printable ASCII only");
            prop_assert!(text(&value).starts_with("attachment; filename=\""));
        }
    }
}
