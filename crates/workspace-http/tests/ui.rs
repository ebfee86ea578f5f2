//! The web UI as a browser fetches it: `/` and every embedded asset with the right
//! `Content-Type`, `nosniff` and the strict CSP, nothing loaded from another origin, no inline
//! script, and no HTML built from strings in the scripts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Server;
use workspace_http::ui::{ASSETS, UI_CSP};
use workspace_testkit::{DbKind, TestEnv};

fn expected_type(name: &str) -> &'static str {
    match name.rsplit('.').next().unwrap() {
        "html" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        other => panic!("add the content type of .{other} to this test"),
    }
}

fn assert_ui_headers(response: &reqwest::Response, content_type: &str, what: &str) {
    let headers = response.headers();
    assert_eq!(response.status(), 200, "{what}");
    assert_eq!(headers["content-type"], content_type, "{what}");
    assert_eq!(headers["x-content-type-options"], "nosniff", "{what}");
    assert_eq!(headers["content-security-policy"], UI_CSP, "{what}");
    assert_eq!(headers["x-frame-options"], "DENY", "{what}");
}

#[test]
fn the_policy_is_strict() {
    let directives: Vec<&str> = UI_CSP.split(';').map(str::trim).collect();
    for required in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' blob: data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ] {
        assert!(directives.contains(&required), "CSP lacks `{required}`: {UI_CSP}");
    }
    assert!(!UI_CSP.contains("unsafe"), "no unsafe-inline or unsafe-eval: {UI_CSP}");
    assert!(!UI_CSP.contains('*'), "no wildcard sources: {UI_CSP}");
}

#[tokio::test]
async fn index_and_every_asset_are_served_with_type_nosniff_and_csp() {
    let env = TestEnv::new(DbKind::Sqlite).await.unwrap();
    let s = Server::start(env).await;

    let index = s.client.get(s.url("/")).send().await.unwrap();
    assert_ui_headers(&index, "text/html; charset=utf-8", "/");
    let html = index.text().await.unwrap();
    assert!(html.contains(r#"<script type="module" src="/ui/app.js"></script>"#));

    for asset in ASSETS {
        let path = format!("/ui/{}", asset.name);
        let response = s.client.get(s.url(&path)).send().await.unwrap();
        assert_ui_headers(&response, expected_type(asset.name), &path);
        assert_eq!(response.bytes().await.unwrap().as_ref(), asset.body, "{path} is the embedded file");
    }

    let missing = s.client.get(s.url("/ui/nope.js")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.json::<serde_json::Value>().await.unwrap()["error"], "not_found");
    let traversal = s.client.get(s.url("/ui/..%2FCargo.toml")).send().await.unwrap();
    assert_eq!(traversal.status(), 404);
    // The API keeps answering JSON 404 for unknown routes.
    let unknown = s.client.get(s.url("/nope")).send().await.unwrap();
    assert_eq!(unknown.status(), 404);
}

#[test]
fn no_asset_references_another_origin() {
    for asset in ASSETS {
        let text = std::str::from_utf8(asset.body).unwrap().to_ascii_lowercase();
        for scheme in ["http://", "https://", "//cdn", "@import"] {
            assert!(!text.contains(scheme), "{} contains `{scheme}`", asset.name);
        }
    }
}

#[test]
fn pages_have_no_inline_script_and_scripts_build_no_html_from_strings() {
    let text = |name: &str| std::str::from_utf8(workspace_http::ui::asset(name).unwrap().body).unwrap();
    let html = text("index.html");
    for (i, chunk) in html.split("<script").enumerate().skip(1) {
        let tag_end = chunk.find('>').unwrap();
        assert!(chunk[..tag_end].contains("src=\"/ui/"), "script {i} has a src on this origin");
        assert!(chunk[tag_end + 1..].trim_start().starts_with("</script>"), "script {i} has no inline body");
    }
    let lower = html.to_ascii_lowercase();
    for forbidden in [" onclick=", " onload=", " onerror=", " onsubmit=", " style=", "javascript:"] {
        assert!(!lower.contains(forbidden), "index.html contains `{forbidden}`");
    }
    for asset in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
        let js = text(asset.name);
        for forbidden in [".innerHTML", ".outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"] {
            assert!(!js.contains(forbidden), "{} uses `{forbidden}`", asset.name);
        }
        // Every module it imports is embedded.
        for line in js.lines().filter(|l| l.starts_with("import ")) {
            let from = line.rsplit("from '").next().unwrap().trim_end_matches("';");
            let name =
                from.strip_prefix("./").unwrap_or_else(|| panic!("{}: import `{from}` is not local", asset.name));
            assert!(workspace_http::ui::asset(name).is_some(), "{} imports {name}, which is not embedded", asset.name);
        }
    }
    for href in ["/ui/app.css", "/ui/app.js"] {
        assert!(html.contains(href));
    }
}
