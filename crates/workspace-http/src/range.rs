//! The `Range` request header (RFC 9110 §14.2): one byte range is honoured; anything the RFC
//! lets a server ignore (other units, several ranges, bad syntax) means "send the whole file".

use workspace_core::ByteRange;

/// Parses a `Range` header value. `None` means "ignore it and answer 200 with the full body".
/// Whether a parsed range fits the file is decided later, against the file size (416 if not).
pub fn parse_range(header: &str) -> Option<ByteRange> {
    let (unit, spec) = header.trim().split_once('=')?;
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return None;
    }
    let spec = spec.trim();
    if spec.contains(',') {
        // Several ranges: serving the whole representation is allowed and simplest.
        return None;
    }
    let (first, last) = spec.split_once('-')?;
    let (first, last) = (first.trim(), last.trim());
    let number = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    match (first.is_empty(), last.is_empty()) {
        (true, true) => None,
        (true, false) => number(last).map(ByteRange::Suffix),
        (false, true) => number(first).map(ByteRange::From),
        (false, false) => {
            let (start, end) = (number(first)?, number(last)?);
            // last < first makes the whole header invalid, hence ignored.
            (end >= start).then(|| ByteRange::Bounded { start, end: end.saturating_add(1) })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_ranges() {
        assert_eq!(parse_range("bytes=0-0"), Some(ByteRange::Bounded { start: 0, end: 1 }));
        assert_eq!(parse_range("bytes=10-19"), Some(ByteRange::Bounded { start: 10, end: 20 }));
        assert_eq!(parse_range("bytes=5-"), Some(ByteRange::From(5)));
        assert_eq!(parse_range("bytes=-5"), Some(ByteRange::Suffix(5)));
        assert_eq!(parse_range("Bytes = 1-2"), Some(ByteRange::Bounded { start: 1, end: 3 }));
        assert_eq!(parse_range("bytes=-0"), Some(ByteRange::Suffix(0)), "valid syntax, unsatisfiable later");
    }

    #[test]
    fn ignorable_headers() {
        for h in [
            "",
            "bytes",
            "bytes=",
            "bytes=-",
            "bytes=5-1",
            "bytes=a-b",
            "bytes=+1-2",
            "bytes=0-1,3-4",
            "items=0-1",
            "bytes=1-2-3",
            "bytes=99999999999999999999999-",
        ] {
            assert_eq!(parse_range(h), None, "{h:?}");
        }
    }
}
