//! Data-URI parsing: never more bytes than the cap, never empty, and formatting what was parsed
//! gives a URI that parses to the same bytes and type.
#![no_main]

use libfuzzer_sys::fuzz_target;
use workspace_exec::DataUri;

const CAP: u64 = 4096;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else { return };
    for candidate in [input.to_owned(), format!("data:{input}")] {
        if let Ok(parsed) = DataUri::parse(&candidate, CAP) {
            assert!(!parsed.data.is_empty());
            assert!(parsed.data.len() as u64 <= CAP, "decoded {} bytes past the cap", parsed.data.len());
            let again = DataUri::format(&parsed.mime, parsed.name.as_deref(), &parsed.data);
            let reparsed = DataUri::parse(&again, CAP).expect("formatted URIs parse");
            assert_eq!(reparsed.data, parsed.data);
            assert_eq!(reparsed.mime, parsed.mime);
            assert_eq!(reparsed.name, parsed.name);
        }
    }
});
