//! Context safeguards for file content: when bytes count as text, previews and character slices
//! cut on UTF-8 boundaries, so no tool result floods the model's context or splits a character.

/// Most bytes of file content one tool result carries (32 KiB).
pub const MAX_INLINE_BYTES: usize = 32 * 1024;
/// Most characters of one whole tool result, content and metadata together (SPEC §15).
pub const MAX_RESULT_CHARS: usize = 40_000;
/// Characters in the preview of a text file too large to inline.
pub const PREVIEW_CHARS: usize = 500;
/// Bytes looked at to decide whether content of an unknown type is text.
pub const SNIFF_BYTES: usize = 8 * 1024;

/// Whether a MIME type announces text the model can read.
pub fn is_text_mime(mime: &str) -> bool {
    let essence = workspace_core::mime::essence(mime);
    let Some((ty, sub)) = essence.split_once('/') else {
        return false;
    };
    ty == "text"
        || matches!(
            sub,
            "json"
                | "xml"
                | "javascript"
                | "ecmascript"
                | "x-yaml"
                | "yaml"
                | "toml"
                | "x-toml"
                | "csv"
                | "x-sh"
                | "sql"
                | "graphql"
                | "x-python"
                | "markdown"
                | "x-httpd-php"
        )
        || sub.ends_with("+json")
        || sub.ends_with("+xml")
}

/// Whether a MIME type is a generic "don't know" that content sniffing may refine.
pub fn is_unknown_mime(mime: &str) -> bool {
    workspace_core::mime::essence(mime) == workspace_core::mime::OCTET_STREAM
}

/// Whether the first bytes of a file look like UTF-8 text: valid UTF-8 (a character cut at the
/// end of the sample is fine) and no NUL.
pub fn looks_like_text(head: &[u8]) -> bool {
    !head.contains(&0) && valid_prefix_len(head).is_some_and(|n| head.len() - n < 4)
}

/// Length of the longest valid UTF-8 prefix, or `None` when an invalid sequence occurs before
/// the end (a sequence merely cut short by the end of `bytes` is not invalid).
pub fn valid_prefix_len(bytes: &[u8]) -> Option<usize> {
    match std::str::from_utf8(bytes) {
        Ok(_) => Some(bytes.len()),
        Err(e) if e.error_len().is_none() => Some(e.valid_up_to()),
        Err(_) => None,
    }
}

/// The first `max_chars` characters of the valid UTF-8 prefix of `bytes`.
pub fn preview(bytes: &[u8], max_chars: usize) -> String {
    let valid = valid_prefix_len(bytes).unwrap_or_else(|| match std::str::from_utf8(bytes) {
        Err(e) => e.valid_up_to(),
        Ok(_) => bytes.len(),
    });
    let text = std::str::from_utf8(&bytes[..valid]).unwrap_or_default();
    text.chars().take(max_chars).collect()
}

/// Content of a file that is not valid UTF-8 where it should be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the file is not valid UTF-8 text")]
pub struct NotUtf8;

/// Collects the characters `offset..offset + length` of a UTF-8 stream fed in chunks, stopping at
/// `max_bytes` of output. Chunks may split characters anywhere.
#[derive(Debug)]
pub struct CharSlicer {
    offset: usize,
    length: usize,
    max_bytes: usize,
    seen: usize,
    out: String,
    carry: Vec<u8>,
    full: bool,
}

/// What a [`CharSlicer`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slice {
    /// The characters collected.
    pub text: String,
    /// Character offset of the first one.
    pub offset: usize,
    /// How many characters were collected.
    pub chars: usize,
    /// Whether the collection stopped at the byte cap before `length` characters.
    pub capped: bool,
    /// Whether the file has characters after the slice (`None` when not known: the stream was
    /// not read to its end).
    pub more: Option<bool>,
}

impl CharSlicer {
    /// Characters `offset..offset + length`, at most `max_bytes` bytes of them.
    pub fn new(offset: usize, length: usize, max_bytes: usize) -> Self {
        Self { offset, length, max_bytes, seen: 0, out: String::new(), carry: Vec::new(), full: false }
    }

    /// Feeds the next chunk; returns `true` once the slice is complete and reading can stop.
    pub fn push(&mut self, chunk: &[u8]) -> Result<bool, NotUtf8> {
        if self.full {
            return Ok(true);
        }
        let mut buf = std::mem::take(&mut self.carry);
        buf.extend_from_slice(chunk);
        let valid = valid_prefix_len(&buf).ok_or(NotUtf8)?;
        let text = std::str::from_utf8(&buf[..valid]).map_err(|_| NotUtf8)?;
        let wanted = self.length.saturating_sub(self.out_chars());
        for ch in text.chars() {
            if self.seen < self.offset {
                self.seen += 1;
                continue;
            }
            if self.out_chars() >= self.length || wanted == 0 || self.out.len() + ch.len_utf8() > self.max_bytes {
                self.full = true;
                return Ok(true);
            }
            self.out.push(ch);
            self.seen += 1;
        }
        self.carry = buf[valid..].to_vec();
        Ok(false)
    }

    fn out_chars(&self) -> usize {
        self.seen.saturating_sub(self.offset)
    }

    /// Ends the slice. `at_end` says whether the whole stream was fed.
    pub fn finish(self, at_end: bool) -> Result<Slice, NotUtf8> {
        if at_end && !self.full && !self.carry.is_empty() {
            return Err(NotUtf8);
        }
        let chars = self.out_chars();
        Ok(Slice {
            capped: self.full && chars < self.length,
            offset: self.offset,
            chars,
            more: if self.full {
                Some(true)
            } else if at_end {
                Some(false)
            } else {
                None
            },
            text: self.out,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mime_classes() {
        for t in ["text/plain", "text/csv; charset=utf-8", "application/json", "application/ld+json", "image/svg+xml"] {
            assert!(is_text_mime(t), "{t}");
        }
        for t in ["image/png", "application/pdf", "application/octet-stream", "nonsense"] {
            assert!(!is_text_mime(t), "{t}");
        }
    }

    #[test]
    fn sniffing_tolerates_a_cut_character_only() {
        assert!(looks_like_text("héllo".as_bytes()));
        assert!(looks_like_text(&"é".as_bytes()[..1]));
        assert!(!looks_like_text(b"a\0b"));
        assert!(!looks_like_text(&[0xff, 0xfe, b'a']));
    }

    #[test]
    fn preview_never_splits_a_character() {
        let text = "ééé".as_bytes();
        assert_eq!(preview(&text[..5], 10), "éé");
        assert_eq!(preview(text, 2), "éé");
    }

    fn slice(text: &str, chunk: usize, offset: usize, length: usize, cap: usize) -> Slice {
        let mut s = CharSlicer::new(offset, length, cap);
        let mut done = false;
        for part in text.as_bytes().chunks(chunk) {
            if s.push(part).unwrap() {
                done = true;
                break;
            }
        }
        s.finish(!done).unwrap()
    }

    #[test]
    fn slices_by_characters_across_any_chunking() {
        let text = "aé€😀b".repeat(5);
        for chunk in 1..8 {
            let got = slice(&text, chunk, 1, 4, 1000);
            assert_eq!(got.text, "é€😀b", "chunk {chunk}");
            assert_eq!((got.chars, got.capped, got.more), (4, false, Some(true)));
            let tail = slice(&text, chunk, 23, 100, 1000);
            assert_eq!(tail.text, "😀b");
            assert_eq!(tail.more, Some(false));
        }
    }

    #[test]
    fn the_byte_cap_stops_on_a_boundary() {
        let got = slice(&"€".repeat(10), 3, 0, 10, 10);
        assert_eq!(got.text, "€€€");
        assert!(got.capped);
        assert_eq!(got.more, Some(true));
    }

    #[test]
    fn invalid_utf8_is_refused() {
        let mut s = CharSlicer::new(0, 10, 100);
        assert_eq!(s.push(&[b'a', 0xff, b'b']), Err(NotUtf8));
        let mut s = CharSlicer::new(0, 10, 100);
        assert_eq!(s.push(&"é".as_bytes()[..1]), Ok(false));
        assert_eq!(s.finish(true), Err(NotUtf8));
    }
}
