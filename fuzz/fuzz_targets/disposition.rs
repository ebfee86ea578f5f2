//! The Content-Disposition builder: for any name the value is one line of visible ASCII, starts
//! with the disposition, and its quoted fallback is well-formed (quotes only escaped inside).
#![no_main]

use libfuzzer_sys::fuzz_target;
use workspace_http::disposition::{Disposition, content_disposition};

fuzz_target!(|name: &str| {
    for kind in [Disposition::Inline, Disposition::Attachment] {
        let value = content_disposition(kind, name);
        let bytes = value.as_bytes();
        assert!(bytes.iter().all(|b| (0x20..0x7f).contains(b)), "printable ASCII only");
        let text = value.to_str().unwrap();
        let rest = text.strip_prefix("inline; filename=\"").or_else(|| text.strip_prefix("attachment; filename=\""));
        let rest = rest.expect("starts with the disposition and the fallback");
        // Walk the quoted string: it must close, with only \" and \\ as escapes.
        let mut chars = rest.chars();
        let mut closed = false;
        while let Some(c) = chars.next() {
            match c {
                '\\' => assert!(matches!(chars.next(), Some('"' | '\\')), "bad escape in {text}"),
                '"' => {
                    closed = true;
                    break;
                }
                _ => {}
            }
        }
        assert!(closed, "the quoted fallback closes: {text}");
        let tail: String = chars.collect();
        assert!(tail.is_empty() || tail.starts_with("; filename*=UTF-8''"), "{text}");
    }
});
