//! `WorkspacePath` parsing and session resolution: a parsed path obeys every rule and re-parses
//! to itself; resolution never escapes its session for relative input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use workspace_core::{PathPrefix, SessionId, WorkspacePath};

fn check(path: &WorkspacePath) {
    let text = path.as_str();
    assert!(text.starts_with('/'));
    assert!(text.len() <= 1024);
    assert!(!text.contains('\\'));
    assert!(!text.chars().any(char::is_control));
    for segment in text[1..].split('/') {
        assert!(!segment.is_empty() && segment != "." && segment != "..", "bad segment in {text:?}");
        assert!(segment.len() <= 255);
    }
    assert_eq!(WorkspacePath::parse(text).as_ref(), Ok(path), "re-parses to itself");
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        assert!(WorkspacePath::from_bytes(data).is_err());
        return;
    };
    if let Ok(path) = WorkspacePath::parse(input) {
        check(&path);
    }
    let session = SessionId::new("s1").ok();
    if let Ok(path) = WorkspacePath::resolve(input, session.as_ref()) {
        check(&path);
        if !input.starts_with('/') {
            assert!(path.as_str().starts_with("/sessions/s1/"), "relative input stays in its session");
            assert!(path.starts_with(&PathPrefix::session(session.as_ref().unwrap()).unwrap()));
        }
    }
    if let Ok(prefix) = PathPrefix::parse(input)
        && let Some(dir) = prefix.as_dir()
    {
        check(&WorkspacePath::parse(dir).unwrap());
    }
});
