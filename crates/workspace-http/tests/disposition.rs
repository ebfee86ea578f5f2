//! Property test: for any Unicode file name the Content-Disposition value is a valid single-line
//! header and a standard parser (Python's `email` package) reads back the name, minus control
//! characters.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use workspace_http::disposition::{Disposition, content_disposition};

fn expected(name: &str) -> String {
    let clean: String = name.chars().filter(|c| !c.is_control()).collect();
    if clean.trim().is_empty() { "download".into() } else { clean }
}

#[test]
fn any_unicode_name_round_trips_through_a_standard_parser() {
    // Names mixing the characters that break naive headers with arbitrary Unicode.
    let tricky = prop_oneof![
        Just('"'),
        Just('\\'),
        Just(';'),
        Just('='),
        Just('%'),
        Just('\''),
        Just(' '),
        Just('\r'),
        Just('\n'),
        Just('\0'),
        Just('\u{202e}'),
        Just('😀'),
        Just('é'),
        Just('\u{7f}'),
        any::<char>(),
    ];
    let strategy = proptest::collection::vec(tricky, 0..40).prop_map(|cs| cs.into_iter().collect::<String>());
    let mut runner = TestRunner::new(Config { cases: 400, ..Config::default() });
    let mut names = Vec::new();
    for _ in 0..400 {
        names.push(strategy.new_tree(&mut runner).unwrap().current());
    }
    names.extend(["plain.txt", "", "\r\n", "a\"b\\c", "日本語.pdf"].map(String::from));
    let headers: Vec<String> = names
        .iter()
        .map(|name| {
            let value = content_disposition(Disposition::Attachment, name);
            let text = value.to_str().expect("visible ASCII only").to_owned();
            assert!(!text.contains(['\r', '\n', '\0']), "{text}");
            text
        })
        .collect();
    let parsed = common::python::parse_disposition(&headers);
    for ((name, header), got) in names.iter().zip(&headers).zip(parsed) {
        assert_eq!(got, expected(name), "name {name:?} header {header}");
    }
}
