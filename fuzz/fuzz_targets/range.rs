//! The Range header parser: a parsed range resolves, against any size, to a non-empty range
//! inside the object, or to "unsatisfiable".
#![no_main]

use libfuzzer_sys::fuzz_target;
use workspace_http::range::parse_range;

fuzz_target!(|input: (&str, u64)| {
    let (header, size) = input;
    let size = size % (1 << 40);
    if let Some(range) = parse_range(header) {
        if let Ok(resolved) = range.resolve(size) {
            assert!(resolved.start < resolved.end, "{header:?} -> {resolved:?}");
            assert!(resolved.end <= size, "{header:?} -> {resolved:?} past {size}");
        }
    }
});
