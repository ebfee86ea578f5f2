//! MIME rules (SPEC §5): the declared type if valid, else by extension, else
//! `application/octet-stream`; magic bytes are sniffed and recorded when they disagree.

/// The type used when nothing better is known.
pub const OCTET_STREAM: &str = "application/octet-stream";

/// How many leading bytes the sniffer looks at.
pub const SNIFF_LEN: usize = 8192;

/// Chooses the MIME type recorded for a file.
///
/// A declared type counts when it parses as `type/subtype` and is not the generic
/// `application/octet-stream` that browsers send for anything unknown. Parameters such as
/// `charset` are kept; the type is lower-cased.
pub fn choose(declared: Option<&str>, file_name: &str) -> mime::Mime {
    if let Some(declared) = declared.map(str::trim).filter(|d| !d.is_empty())
        && let Ok(parsed) = declared.parse::<mime::Mime>()
        && parsed.essence_str() != OCTET_STREAM
    {
        return normalise(&parsed);
    }
    mime_guess::from_path(file_name).first().unwrap_or(mime::APPLICATION_OCTET_STREAM)
}

/// The type with its `type/subtype` lower-cased (parameters as given).
fn normalise(m: &mime::Mime) -> mime::Mime {
    // `Mime`'s Display keeps parameters; the essence is already lower-case.
    let text = m.to_string();
    let lowered = match text.split_once(';') {
        Some((_, params)) => format!("{};{params}", m.essence_str()),
        None => m.essence_str().to_owned(),
    };
    lowered.parse().unwrap_or_else(|_| m.clone())
}

/// The type the content's magic bytes announce, if recognisable.
pub fn sniff(head: &[u8]) -> Option<&'static str> {
    infer::get(head).map(|t| t.mime_type())
}

/// The essence (`type/subtype`) of a MIME string, lower-cased, without parameters.
pub fn essence(mime: &str) -> String {
    mime.split(';').next().unwrap_or_default().trim().to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_then_extension_then_octet_stream() {
        let choose = |d, n| choose(d, n).to_string();
        assert_eq!(choose(Some("image/png"), "x.bin"), "image/png");
        assert_eq!(choose(Some("Text/Plain; charset=utf-8"), "x"), "text/plain; charset=utf-8");
        assert_eq!(choose(Some("not a mime"), "cat.jpg"), "image/jpeg");
        assert_eq!(choose(Some("application/octet-stream"), "a.pdf"), "application/pdf");
        assert_eq!(choose(None, "notes.txt"), "text/plain");
        assert_eq!(choose(None, "README"), OCTET_STREAM);
        assert_eq!(choose(Some(""), "x.unknownext"), OCTET_STREAM);
    }

    #[test]
    fn sniffs_magic_bytes() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), Some("image/png"));
        assert_eq!(sniff(b"%PDF-1.7\n"), Some("application/pdf"));
        assert_eq!(sniff(b"hello"), None);
        assert_eq!(essence("Image/PNG; x=1"), "image/png");
    }
}
