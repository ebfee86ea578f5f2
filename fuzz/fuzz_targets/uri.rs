//! `WorkspaceUri` parsing: whatever parses formats back to text that parses to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use workspace_core::WorkspaceUri;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else { return };
    for candidate in [input.to_owned(), format!("workspace://{input}")] {
        if let Ok(uri) = WorkspaceUri::parse(&candidate) {
            let text = uri.to_string();
            assert!(text.starts_with("workspace://"));
            assert_eq!(WorkspaceUri::parse(&text), Ok(uri), "round trip of {candidate:?}");
        }
    }
});
