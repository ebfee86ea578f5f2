//! Each tool against a real manager (SQLite and PostgreSQL, the configured storage backend): happy
//! paths, error paths, the context safeguards, session semantics and `run_block`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::{Harness, expect_err};
use serde_json::{Value, json};
use workspace_core::{FileSource, NewFile, WorkspacePath, WorkspaceUri};
use workspace_testkit::{TestEnv, db_tests};

const PNG_1X1: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4, 0x89, 0x00, 0x00, 0x00, 0x0d, 0x49,
    0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x00, 0x01, 0x00, 0x00, 0x05, 0x00, 0x01, 0x0d, 0x0a, 0x2d, 0xb4, 0x00, 0x00,
    0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

fn id_of(result: &Value) -> String {
    result["file"]["id"].as_str().unwrap().to_owned()
}

async fn write_then_read_text(env: TestEnv) {
    let h = Harness::new(env);
    let written = h
        .call("s1", "write_workspace_file", json!({"filename": "notes.md", "content": "# Hello\nwörld"}))
        .await
        .unwrap();
    assert_eq!(written["file"]["path"], "/sessions/s1/notes.md");
    assert_eq!(written["file"]["source"], "copilot");
    assert_eq!(written["file"]["mime_type"], "text/markdown");
    let uri = written["uri"].as_str().unwrap();
    assert!(uri.starts_with("workspace://") && uri.ends_with("#text/markdown"), "{uri}");

    // Provenance as the manager records it.
    let info =
        h.manager().await.lookup(workspace_core::WorkspacePath::parse("/sessions/s1/notes.md").unwrap()).await.unwrap();
    assert_eq!(info.source, FileSource::Copilot);
    assert_eq!(info.source_session_id.as_deref(), Some("s1"));

    for args in [json!({"path": "notes.md"}), json!({"file_id": id_of(&written)}), json!({"file_id": uri})] {
        let read = h.call("s1", "read_workspace_file", args.clone()).await.unwrap();
        assert_eq!(read["content"], "# Hello\nwörld", "{args}");
        assert_eq!(read["file"]["size_bytes"], "# Hello\nwörld".len());
    }

    // A text file with an unknown extension is still text.
    let odd = h.call("s1", "write_workspace_file", json!({"filename": "data.zzz", "content": "plain"})).await.unwrap();
    assert!(odd["file"]["mime_type"].as_str().unwrap().starts_with("text/plain"));
    assert_eq!(h.call("s1", "read_workspace_file", json!({"path": "data.zzz"})).await.unwrap()["content"], "plain");

    // Explicit path (folder form and file form) and MIME type.
    let into_folder = h
        .call("s1", "write_workspace_file", json!({"filename": "a.json", "content": "{}", "path": "/shared/"}))
        .await
        .unwrap();
    assert_eq!(into_folder["file"]["path"], "/shared/a.json");
    let with_mime = h
        .call(
            "s1",
            "write_workspace_file",
            json!({"filename": "b", "content": "x,y", "path": "reports/b.csv", "mime_type": "text/csv"}),
        )
        .await
        .unwrap();
    assert_eq!(with_mime["file"]["path"], "/sessions/s1/reports/b.csv");
    assert_eq!(with_mime["file"]["mime_type"], "text/csv");
    assert_eq!(with_mime["file"]["name"], "b");
}

async fn write_errors(env: TestEnv) {
    let h = Harness::new(env);
    let msg = expect_err(
        h.call("s1", "write_workspace_file", json!({"filename": "a.txt", "content": "x", "content_base64": "eA=="}))
            .await,
        "invalid_input",
    );
    assert!(msg.contains("not both"), "{msg}");
    expect_err(h.call("s1", "write_workspace_file", json!({"filename": "a.txt"})).await, "invalid_input");
    expect_err(
        h.call("s1", "write_workspace_file", json!({"filename": "a.bin", "content_base64": "%%%not base64"})).await,
        "invalid_input",
    );
    expect_err(
        h.call("s1", "write_workspace_file", json!({"filename": "a.txt", "content": "x", "path": "../escape.txt"}))
            .await,
        "invalid_path",
    );
    expect_err(
        h.call("s1", "write_workspace_file", json!({"filename": "a.txt", "content": "x", "path": "/a//b"})).await,
        "invalid_path",
    );

    h.call("s1", "write_workspace_file", json!({"filename": "a.txt", "content": "one"})).await.unwrap();
    let msg = expect_err(
        h.call("s1", "write_workspace_file", json!({"filename": "a.txt", "content": "two"})).await,
        "conflict",
    );
    assert!(msg.contains("overwrite"), "{msg}");
    h.call("s1", "write_workspace_file", json!({"filename": "a.txt", "content": "two", "overwrite": true}))
        .await
        .unwrap();
    assert_eq!(h.call("s1", "read_workspace_file", json!({"path": "a.txt"})).await.unwrap()["content"], "two");
    let files = h.call("s1", "list_workspace_files", json!({})).await.unwrap();
    assert_eq!(files["count"], 1, "overwrite leaves one live file");

    // Unknown tools are structured errors too, and every error has the `{error, message}` shape.
    let err = expect_err(h.call("s1", "no_such_tool", json!({})).await, "not_found");
    assert!(err.contains("read_workspace_file"), "lists the tools: {err}");
    let user = workspace_core::UserId::new("alice").unwrap();
    let session = workspace_core::SessionId::new("s1").unwrap();
    let ctx = h.copilot.context(&user, &session).await.unwrap();
    let json = h.copilot.tools().call_json("write_workspace_file", json!({"filename": "x"}), &ctx).await;
    assert_eq!(json["error"], "invalid_input");
    assert!(json["message"].is_string());
}

async fn large_text_returns_metadata_and_preview(env: TestEnv) {
    let h = Harness::new(env);
    // 1 MiB of text, written through the manager (a model could not send that much).
    let line = "The quick brown fox jumps over the lazy dog. ";
    let text: String = line.repeat(1024 * 1024 / line.len() + 1)[..1024 * 1024].to_owned();
    let manager = h.manager().await;
    let path = WorkspacePath::parse("/big/log.txt").unwrap();
    manager.write_bytes(NewFile::new(path), text.clone().into_bytes()).await.unwrap();

    let read = h.call("s1", "read_workspace_file", json!({"path": "/big/log.txt"})).await.unwrap();
    assert!(read.get("content").is_none(), "no content for a 1 MiB file");
    assert_eq!(read["truncated"], true);
    assert_eq!(read["file"]["size_bytes"], 1024 * 1024);
    let preview = read["preview"].as_str().unwrap();
    assert_eq!(preview.chars().count(), 500);
    assert!(text.starts_with(preview));
    assert!(read["uri"].as_str().unwrap().starts_with("workspace://"));
    assert!(read["message"].as_str().unwrap().contains("offset"));
    assert!(read.to_string().len() < 4 * 1024, "the whole result stays small");
}

async fn slice_reads(env: TestEnv) {
    let h = Harness::new(env);
    // 100 000 characters of mixed widths (1, 2, 3 and 4 bytes): 1 000 000 bytes.
    let unit = "aé€😀";
    let text = unit.repeat(25_000);
    let manager = h.manager().await;
    manager
        .write_bytes(NewFile::new(WorkspacePath::parse("/sessions/s1/wide.txt").unwrap()), text.clone())
        .await
        .unwrap();
    let chars: Vec<char> = text.chars().collect();

    let read =
        h.call("s1", "read_workspace_file", json!({"path": "wide.txt", "offset": 1, "length": 6})).await.unwrap();
    assert_eq!(read["content"], "é€😀aé€");
    assert_eq!(read["offset"], 1);
    assert_eq!(read["length"], 6);
    assert_eq!(read["next_offset"], 7);
    assert_eq!(read["end_of_file"], false);

    // Deep inside the file.
    let read =
        h.call("s1", "read_workspace_file", json!({"path": "wide.txt", "offset": 77_777, "length": 10})).await.unwrap();
    assert_eq!(read["content"], chars[77_777..77_787].iter().collect::<String>());

    // The tail: fewer characters than asked, end of file.
    let read =
        h.call("s1", "read_workspace_file", json!({"path": "wide.txt", "offset": 99_998, "length": 10})).await.unwrap();
    assert_eq!(read["content"], "€😀");
    assert_eq!(read["end_of_file"], true);
    assert_eq!(read["next_offset"], Value::Null);

    // The byte cap: 32 768 characters asked, at most 32 KiB of text returned, cut on a boundary.
    let read = h.call("s1", "read_workspace_file", json!({"path": "wide.txt", "length": 32_768})).await.unwrap();
    let content = read["content"].as_str().unwrap();
    assert!(content.len() <= 32 * 1024 && content.len() > 32 * 1024 - 4, "{}", content.len());
    let n = content.chars().count();
    assert_eq!(read["length"], n);
    assert_eq!(read["next_offset"], n);
    assert_eq!(content, chars[..n].iter().collect::<String>());

    // Past the end: empty.
    let read = h.call("s1", "read_workspace_file", json!({"path": "wide.txt", "offset": 200_000})).await.unwrap();
    assert_eq!(read["content"], "");
    assert_eq!(read["end_of_file"], true);

    // Slices of a small file.
    h.call("s1", "write_workspace_file", json!({"filename": "small.txt", "content": "héllo wörld"})).await.unwrap();
    let read =
        h.call("s1", "read_workspace_file", json!({"path": "small.txt", "offset": 6, "length": 5})).await.unwrap();
    assert_eq!(read["content"], "wörld");
    assert_eq!(read["end_of_file"], true);
}

async fn binary_reads(env: TestEnv) {
    let h = Harness::new(env);
    // A small image comes inline, base64 with its MIME type.
    let written = h
        .call("s1", "write_workspace_file", json!({"filename": "dot.png", "content_base64": STANDARD.encode(PNG_1X1)}))
        .await
        .unwrap();
    assert_eq!(written["file"]["mime_type"], "image/png");
    let read = h.call("s1", "read_workspace_file", json!({"path": "dot.png"})).await.unwrap();
    assert_eq!(read["mime_type"], "image/png");
    assert_eq!(STANDARD.decode(read["content_base64"].as_str().unwrap()).unwrap(), PNG_1X1);
    assert!(read.get("content").is_none());

    // Other binary: metadata and the reference only.
    let mut blob = vec![0u8; 4096];
    for (i, b) in blob.iter_mut().enumerate() {
        *b = (i * 7 % 251) as u8;
    }
    h.call("s1", "write_workspace_file", json!({"filename": "data.bin", "content_base64": STANDARD.encode(&blob)}))
        .await
        .unwrap();
    let read = h.call("s1", "read_workspace_file", json!({"path": "data.bin"})).await.unwrap();
    assert!(read.get("content").is_none() && read.get("content_base64").is_none() && read.get("preview").is_none());
    assert!(read["uri"].as_str().unwrap().starts_with("workspace://"));
    assert!(read["message"].as_str().unwrap().contains("binary"));
    expect_err(h.call("s1", "read_workspace_file", json!({"path": "data.bin", "offset": 0})).await, "invalid_input");

    // A large image: not inline.
    let mut big_png = PNG_1X1.to_vec();
    big_png.resize(40 * 1024, 0);
    h.manager()
        .await
        .write_bytes(NewFile::new(WorkspacePath::parse("/sessions/s1/big.png").unwrap()), big_png)
        .await
        .unwrap();
    let read = h.call("s1", "read_workspace_file", json!({"path": "big.png"})).await.unwrap();
    assert!(read.get("content_base64").is_none());
    assert!(read["message"].as_str().unwrap().contains("32 KiB"));

    // force_download_url: metadata and a URL (or null on storage that cannot sign), no content.
    let read =
        h.call("s1", "read_workspace_file", json!({"path": "dot.png", "force_download_url": true})).await.unwrap();
    assert!(read.get("download_url").is_some());
    assert!(read.get("content_base64").is_none());
}

async fn read_errors(env: TestEnv) {
    let h = Harness::new(env);
    expect_err(h.call("s1", "read_workspace_file", json!({"path": "missing.txt"})).await, "not_found");
    expect_err(
        h.call("s1", "read_workspace_file", json!({"file_id": "4f1b2c3d-0000-4000-8000-00000000abcd"})).await,
        "not_found",
    );
    expect_err(h.call("s1", "read_workspace_file", json!({"file_id": "not-a-uuid"})).await, "invalid_input");
    expect_err(h.call("s1", "read_workspace_file", json!({"file_id": "workspace://nope"})).await, "invalid_input");
    expect_err(h.call("s1", "read_workspace_file", json!({})).await, "invalid_input");
    expect_err(
        h.call("s1", "read_workspace_file", json!({"path": "a", "file_id": "4f1b2c3d-0000-4000-8000-00000000abcd"}))
            .await,
        "invalid_input",
    );
    expect_err(h.call("s1", "read_workspace_file", json!({"path": "a/../b"})).await, "invalid_path");

    // Another user's file is not found, by id or by path.
    let theirs = h
        .call_as("bob", "s1", "write_workspace_file", json!({"filename": "secret.txt", "content": "x"}))
        .await
        .unwrap();
    expect_err(h.call("s1", "read_workspace_file", json!({"file_id": id_of(&theirs)})).await, "not_found");
    expect_err(h.call("s1", "read_workspace_file", json!({"path": "secret.txt"})).await, "not_found");
}

async fn list_files(env: TestEnv) {
    let h = Harness::new(env);
    for name in ["c.txt", "a.txt", "b.txt"] {
        h.call("s1", "write_workspace_file", json!({"filename": name, "content": name})).await.unwrap();
    }
    h.call("s10", "write_workspace_file", json!({"filename": "other.txt", "content": "o"})).await.unwrap();
    h.call("s1", "write_workspace_file", json!({"filename": "deep.txt", "content": "d", "path": "sub/deep.txt"}))
        .await
        .unwrap();

    let page = h.call("s1", "list_workspace_files", json!({})).await.unwrap();
    let paths: Vec<_> = page["files"].as_array().unwrap().iter().map(|f| f["path"].as_str().unwrap()).collect();
    assert_eq!(
        paths,
        ["/sessions/s1/a.txt", "/sessions/s1/b.txt", "/sessions/s1/c.txt", "/sessions/s1/sub/deep.txt"],
        "the session's folder only (not s10)"
    );
    assert!(page["files"][0].get("content").is_none(), "listing never carries content");

    let sub = h.call("s1", "list_workspace_files", json!({"path_prefix": "sub"})).await.unwrap();
    assert_eq!(sub["count"], 1);

    let all = h.call("s1", "list_workspace_files", json!({"include_all_sessions": true})).await.unwrap();
    assert_eq!(all["count"], 5);
    assert_eq!(all["scope"], "workspace");

    // Pagination.
    let first = h.call("s1", "list_workspace_files", json!({"limit": 2, "include_all_sessions": true})).await.unwrap();
    assert_eq!(first["count"], 2);
    let cursor = first["next_cursor"].as_str().unwrap();
    let rest = h
        .call("s1", "list_workspace_files", json!({"limit": 100, "include_all_sessions": true, "cursor": cursor}))
        .await
        .unwrap();
    assert_eq!(rest["count"], 3);
    assert_eq!(rest["next_cursor"], Value::Null);

    // Errors.
    expect_err(h.call("s1", "list_workspace_files", json!({"limit": 101})).await, "invalid_input");
    expect_err(h.call("s1", "list_workspace_files", json!({"limit": 0})).await, "invalid_input");
    expect_err(h.call("s1", "list_workspace_files", json!({"path_prefix": "a//b"})).await, "invalid_path");
    expect_err(h.call("s1", "list_workspace_files", json!({"cursor": "zz"})).await, "invalid_input");
    // An empty workspace lists nothing (and creates the workspace on demand).
    let empty = h.call_as("carol", "s1", "list_workspace_files", json!({})).await.unwrap();
    assert_eq!(empty["count"], 0);
}

async fn delete_files(env: TestEnv) {
    let h = Harness::new(env);
    let a = h.call("s1", "write_workspace_file", json!({"filename": "a.txt", "content": "a"})).await.unwrap();
    h.call("s1", "write_workspace_file", json!({"filename": "b.txt", "content": "b"})).await.unwrap();

    let deleted = h.call("s1", "delete_workspace_file", json!({"file_id": id_of(&a)})).await.unwrap();
    assert_eq!(deleted["deleted"], true);
    assert_eq!(deleted["file"]["path"], "/sessions/s1/a.txt");
    expect_err(h.call("s1", "read_workspace_file", json!({"file_id": id_of(&a)})).await, "not_found");

    h.call("s1", "delete_workspace_file", json!({"path": "/sessions/s1/b.txt"})).await.unwrap();
    expect_err(h.call("s1", "read_workspace_file", json!({"path": "b.txt"})).await, "not_found");
    assert_eq!(h.manager().await.usage().await.unwrap().file_count, 0);

    // Errors.
    expect_err(h.call("s1", "delete_workspace_file", json!({"file_id": id_of(&a)})).await, "not_found");
    expect_err(h.call("s1", "delete_workspace_file", json!({"path": "never.txt"})).await, "not_found");
    expect_err(h.call("s1", "delete_workspace_file", json!({})).await, "invalid_input");
    let theirs =
        h.call_as("bob", "s1", "write_workspace_file", json!({"filename": "x.txt", "content": "x"})).await.unwrap();
    expect_err(h.call("s1", "delete_workspace_file", json!({"file_id": id_of(&theirs)})).await, "not_found");
    assert!(
        h.call_as("bob", "s1", "read_workspace_file", json!({"path": "x.txt"})).await.is_ok(),
        "bob's file survives"
    );
}

async fn files_persist_across_sessions(env: TestEnv) {
    let h = Harness::new(env);
    let written =
        h.call("chat-1", "write_workspace_file", json!({"filename": "plan.md", "content": "step 1"})).await.unwrap();

    // Session 2: relative paths and the default listing are the new session's own…
    expect_err(h.call("chat-2", "read_workspace_file", json!({"path": "plan.md"})).await, "not_found");
    assert_eq!(h.call("chat-2", "list_workspace_files", json!({})).await.unwrap()["count"], 0);
    // …but the file is there by id, by reference, by absolute path, and in the full listing.
    for args in [
        json!({"file_id": id_of(&written)}),
        json!({"file_id": written["uri"]}),
        json!({"path": "/sessions/chat-1/plan.md"}),
        json!({"file_id": "workspace:///sessions/chat-1/plan.md"}),
    ] {
        assert_eq!(h.call("chat-2", "read_workspace_file", args.clone()).await.unwrap()["content"], "step 1", "{args}");
    }
    let all = h.call("chat-2", "list_workspace_files", json!({"include_all_sessions": true})).await.unwrap();
    assert_eq!(all["files"][0]["path"], "/sessions/chat-1/plan.md");

    // A new Copilot (a restarted server) sees the same files.
    let again = Harness::new(h.env);
    let read = again.call("chat-3", "read_workspace_file", json!({"path": "/sessions/chat-1/plan.md"})).await.unwrap();
    assert_eq!(read["content"], "step 1");
}

async fn run_block_qr(env: TestEnv) {
    let h = Harness::new(env);
    let result = h
        .call(
            "s1",
            "run_block",
            json!({"block_id": "qr_code", "input": {"text": "https://example.com", "module_size": 4}}),
        )
        .await
        .unwrap();
    assert_eq!(result["graph_exec_id"], "copilot-session-s1");
    assert_eq!(result["node_id"], "copilot-node-qr_code");
    let node_exec = result["node_exec_id"].as_str().unwrap();
    let suffix = node_exec.strip_prefix("copilot-s1-").unwrap();
    assert!(
        suffix.len() == 8 && suffix.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
        "{node_exec}"
    );

    // The output's media field is a workspace reference to a PNG.
    let reference = result["output"]
        .as_object()
        .unwrap()
        .values()
        .filter_map(Value::as_str)
        .find(|s| s.starts_with("workspace://"))
        .unwrap_or_else(|| panic!("no workspace:// output in {result}"))
        .to_owned();
    assert!(reference.ends_with("#image/png"), "{reference}");
    let WorkspaceUri::File { id, .. } = WorkspaceUri::parse(&reference).unwrap() else { panic!("id form expected") };
    let (info, bytes) = h.manager().await.read(id).await.unwrap();
    assert_eq!(info.mime_type, "image/png");
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"));
    assert!(info.path.as_str().starts_with("/sessions/s1/"), "{}", info.path);

    // The model can read it back (small enough to come inline).
    let read = h.call("s1", "read_workspace_file", json!({"file_id": reference})).await.unwrap();
    assert_eq!(read["file"]["mime_type"], "image/png");

    // The execution's temp directory is gone afterwards.
    assert!(!h.tmp.path().join("exec_file").join("copilot-session-s1").exists());
}

async fn run_block_errors(env: TestEnv) {
    let h = Harness::new(env);
    let msg = expect_err(h.call("s1", "run_block", json!({"block_id": "nope", "input": {}})).await, "invalid_input");
    assert!(msg.contains("qr_code"), "the schema's enum names the blocks: {msg}");
    let msg = expect_err(h.call("s1", "run_block", json!({"block_id": "qr_code", "input": {}})).await, "invalid_input");
    assert!(msg.contains("text"), "names the missing field: {msg}");
    let msg = expect_err(
        h.call("s1", "run_block", json!({"block_id": "qr_code", "input": {"text": "x", "module_size": 0}})).await,
        "invalid_input",
    );
    assert!(msg.contains("module_size"), "{msg}");
    expect_err(h.call("s1", "run_block", json!({"block_id": "qr_code", "input": "text"})).await, "invalid_input");
    // A thumbnail of a file that does not exist: the block's own error comes back structured.
    let err = h
        .call(
            "s1",
            "run_block",
            json!({"block_id": "thumbnail", "input": {"image": "workspace://4f1b2c3d-0000-4000-8000-00000000abcd"}}),
        )
        .await
        .unwrap_err();
    assert!(!err.code.is_empty() && !err.message.is_empty(), "{err:?}");
    assert_eq!(h.manager().await.usage().await.unwrap().file_count, 0, "failed runs store nothing");
}

/// SPEC §9: models send `""` for optional parameters they do not use; it counts as absent, in
/// every tool, while `content: ""` stays an empty file.
async fn empty_strings_count_as_absent(env: TestEnv) {
    let h = Harness::new(env);
    // write: an unused alternative, path, mime_type and overwrite sent as "".
    let written = h
        .call(
            "s1",
            "write_workspace_file",
            json!({"filename": "a.txt", "content": "hello", "content_base64": "", "path": "", "mime_type": "", "overwrite": ""}),
        )
        .await
        .unwrap();
    assert_eq!(written["file"]["path"], "/sessions/s1/a.txt");
    assert_eq!(written["file"]["size_bytes"], 5);
    assert_eq!(written["file"]["mime_type"], "text/plain", "mime_type \"\" is absent: from the extension");
    let from_base64 = h
        .call("s1", "write_workspace_file", json!({"filename": "b.bin", "content": "", "content_base64": "aGk="}))
        .await
        .unwrap();
    assert_eq!(from_base64["file"]["size_bytes"], 2);
    // `content: ""` alone, or with an empty alternative, is an empty file.
    for (name, args) in [
        ("e1.txt", json!({"content": ""})),
        ("e2.txt", json!({"content": "", "content_base64": ""})),
        ("e3.bin", json!({"content_base64": ""})),
    ] {
        let mut args = args;
        args["filename"] = json!(name);
        let empty = h.call("s1", "write_workspace_file", args.clone()).await.unwrap();
        assert_eq!(empty["file"]["size_bytes"], 0, "{args}");
        assert_eq!(empty["file"]["path"], format!("/sessions/s1/{name}"));
    }
    assert_eq!(h.call("s1", "read_workspace_file", json!({"path": "e1.txt"})).await.unwrap()["content"], "");
    // Both given for real is still refused, and so is a write with no content at all.
    let msg = expect_err(
        h.call("s1", "write_workspace_file", json!({"filename": "x.txt", "content": "a", "content_base64": "YQ=="}))
            .await,
        "invalid_input",
    );
    assert!(msg.contains("not both"), "{msg}");
    expect_err(
        h.call("s1", "write_workspace_file", json!({"filename": "x.txt", "path": "", "mime_type": ""})).await,
        "invalid_input",
    );
    // A required parameter sent as "" is still refused by the schema.
    let msg = expect_err(
        h.call("s1", "write_workspace_file", json!({"filename": "", "content": "x"})).await,
        "invalid_input",
    );
    assert!(msg.contains("filename"), "{msg}");

    // read: the unused one of file_id / path, and the optional slice and flag.
    let id = id_of(&written);
    for args in [
        json!({"file_id": id, "path": ""}),
        json!({"file_id": "", "path": "a.txt"}),
        json!({"path": "a.txt", "offset": "", "length": "", "force_download_url": ""}),
    ] {
        let read = h.call("s1", "read_workspace_file", args.clone()).await.unwrap();
        assert_eq!(read["content"], "hello", "{args}");
    }
    let msg =
        expect_err(h.call("s1", "read_workspace_file", json!({"file_id": "", "path": ""})).await, "invalid_input");
    assert!(msg.contains("give `file_id` or `path`"), "{msg}");

    // list: every optional parameter.
    let listed = h
        .call(
            "s1",
            "list_workspace_files",
            json!({"path_prefix": "", "limit": "", "include_all_sessions": "", "cursor": ""}),
        )
        .await
        .unwrap();
    assert_eq!(listed["count"], 5);
    assert_eq!(listed["scope"], "session s1");

    // delete: the unused selector.
    let deleted = h.call("s1", "delete_workspace_file", json!({"path": "a.txt", "file_id": ""})).await.unwrap();
    assert_eq!(deleted["file"]["id"], id.as_str());
    let b = id_of(&from_base64);
    h.call("s1", "delete_workspace_file", json!({"file_id": b, "path": ""})).await.unwrap();

    // run_block: an omitted `input` and "" for an optional input field of the block.
    let qr = h
        .call("s1", "run_block", json!({"block_id": "qr_code", "input": {"text": "hi", "module_size": ""}}))
        .await
        .unwrap();
    assert!(qr["output"]["image"].as_str().unwrap().starts_with("workspace://"), "{qr}");
    let msg = expect_err(h.call("s1", "run_block", json!({"block_id": "qr_code", "input": ""})).await, "invalid_input");
    assert!(msg.contains("text"), "an absent input is {{}}, which lacks the required `text`: {msg}");
    expect_err(h.call("s1", "run_block", json!({"block_id": ""})).await, "invalid_input");
}

/// SPEC §9: a quota error tells the model how to recover: which tools to use and how many bytes
/// must go; following that advice works.
async fn quota_errors_say_how_to_recover(env: TestEnv) {
    let h = Harness::with_limits(env, workspace_core::Limits { max_file_size: 4096, quota_bytes: 4096 });
    let big = h
        .call("s1", "write_workspace_file", json!({"filename": "big.txt", "content": "x".repeat(4000)}))
        .await
        .unwrap();
    let msg = expect_err(
        h.call("s1", "write_workspace_file", json!({"filename": "more.txt", "content": "y".repeat(200)})).await,
        "quota_exceeded",
    );
    for needle in [
        "4000 of its 4096 bytes",
        "at least 104 bytes",
        "`workspace_usage`",
        "`list_workspace_files`",
        "`delete_workspace_file`",
    ] {
        assert!(msg.contains(needle), "{needle:?} in {msg}");
    }
    assert_eq!(h.call("s1", "list_workspace_files", json!({})).await.unwrap()["count"], 1, "nothing was written");
    // Following the advice: delete, then the same write succeeds.
    h.call("s1", "delete_workspace_file", json!({"file_id": id_of(&big)})).await.unwrap();
    h.call("s1", "write_workspace_file", json!({"filename": "more.txt", "content": "y".repeat(200)})).await.unwrap();
}

db_tests!(
    empty_strings_count_as_absent,
    quota_errors_say_how_to_recover,
    write_then_read_text,
    write_errors,
    large_text_returns_metadata_and_preview,
    slice_reads,
    binary_reads,
    read_errors,
    list_files,
    delete_files,
    files_persist_across_sessions,
    run_block_qr,
    run_block_errors,
    history_tools_undo_overwrites_and_deletes,
    move_copy_and_if_match,
);

async fn move_copy_and_if_match(env: TestEnv) {
    let h = Harness::new(env);
    let written = h.call("s1", "write_workspace_file", json!({"filename": "a.md", "content": "alpha"})).await.unwrap();
    let id = written["file"]["id"].as_str().unwrap().to_owned();
    let checksum = h.manager().await.lookup(workspace_core::FileId::from_str(&id).unwrap()).await.unwrap().checksum;
    let moved = h.call("s1", "move_workspace_file", json!({"path": "a.md", "new_path": "notes/a.md"})).await.unwrap();
    assert_eq!(
        (moved["file"]["id"].as_str(), moved["file"]["path"].as_str()),
        (Some(id.as_str()), Some("/sessions/s1/notes/a.md"))
    );
    let copied = h.call("s1", "copy_workspace_file", json!({"file_id": id, "new_path": "/shared/a.md"})).await.unwrap();
    assert_ne!(copied["file"]["id"], moved["file"]["id"]);
    assert_eq!(h.call("s2", "read_workspace_file", json!({"path": "/shared/a.md"})).await.unwrap()["content"], "alpha");
    common::expect_err(
        h.call("s1", "move_workspace_file", json!({"file_id": id, "new_path": "/shared/a.md"})).await,
        "conflict",
    );
    // if_match: a stale checksum changes nothing and says what the checksum is now.
    let stale = "0".repeat(64);
    let err = h
        .call(
            "s1",
            "write_workspace_file",
            json!({"filename": "a.md", "path": "notes/a.md", "content": "beta", "if_match": stale}),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, "precondition_failed");
    assert_eq!(err.current_checksum.as_deref(), Some(checksum.as_str()));
    assert_eq!(err.to_json()["current_checksum"], checksum.as_str());
    let ok = h
        .call(
            "s1",
            "write_workspace_file",
            json!({"filename": "a.md", "path": "notes/a.md", "content": "beta", "if_match": checksum.as_str()}),
        )
        .await
        .unwrap();
    assert_eq!(ok["file"]["path"], "/sessions/s1/notes/a.md");
    common::expect_err(
        h.call("s1", "delete_workspace_file", json!({"path": "notes/a.md", "if_match": checksum.as_str()})).await,
        "precondition_failed",
    );
    common::expect_err(
        h.call("s1", "move_workspace_file", json!({"path": "notes/a.md", "new_path": "b.md", "if_match": "nothex"}))
            .await,
        "invalid_input",
    );
    common::expect_err(
        h.call_as("bob", "s1", "copy_workspace_file", json!({"file_id": id, "new_path": "/x.md"})).await,
        "not_found",
    );
}

async fn history_tools_undo_overwrites_and_deletes(env: TestEnv) {
    let h = Harness::new(env);
    let first = h.call("s1", "write_workspace_file", json!({"filename": "plan.md", "content": "v1"})).await.unwrap();
    let first_id = first["file"]["id"].as_str().unwrap().to_owned();
    h.call("s1", "write_workspace_file", json!({"filename": "plan.md", "content": "version two", "overwrite": true}))
        .await
        .unwrap();
    let versions = h.call("s1", "list_workspace_versions", json!({"path": "plan.md"})).await.unwrap();
    assert_eq!(versions["count"], 2);
    assert_eq!(versions["versions"][1]["id"], first_id.as_str());
    assert_eq!(versions["versions"][0]["is_current"], true);
    // The old id still reads the old content.
    let old = h.call("s1", "read_workspace_file", json!({"file_id": first_id})).await.unwrap();
    assert_eq!(old["content"], "v1");
    // Restoring it makes it current again.
    let restored = h.call("s1", "restore_workspace_file", json!({"file_id": first_id})).await.unwrap();
    assert_eq!(restored["file"]["path"], "/sessions/s1/plan.md");
    assert_eq!(h.call("s1", "read_workspace_file", json!({"path": "plan.md"})).await.unwrap()["content"], "v1");
    // Undo a delete.
    let deleted = h.call("s1", "delete_workspace_file", json!({"path": "plan.md"})).await.unwrap();
    let id = deleted["file"]["id"].as_str().unwrap().to_owned();
    common::expect_err(h.call("s1", "read_workspace_file", json!({"path": "plan.md"})).await, "not_found");
    h.call("s1", "restore_workspace_file", json!({"file_id": format!("workspace://{id}")})).await.unwrap();
    assert_eq!(h.call("s1", "read_workspace_file", json!({"path": "plan.md"})).await.unwrap()["content"], "v1");
    common::expect_err(
        h.call("s1", "restore_workspace_file", json!({"file_id": "workspace:///sessions/s1/plan.md"})).await,
        "invalid_input",
    );
    // Another user cannot restore it.
    common::expect_err(h.call_as("bob", "s1", "restore_workspace_file", json!({"file_id": id})).await, "not_found");
    // Usage names the largest files first.
    h.call("s1", "write_workspace_file", json!({"filename": "big.txt", "content": "x".repeat(5000)})).await.unwrap();
    let usage = h.call("s1", "workspace_usage", json!({})).await.unwrap();
    assert_eq!(usage["largest"][0]["path"], "/sessions/s1/big.txt");
    assert_eq!(usage["largest"][0]["size_bytes"], 5000);
    assert_eq!(usage["file_count"], 2);
    let sum = usage["live_bytes"].as_u64().unwrap() + usage["history_bytes"].as_u64().unwrap();
    assert_eq!(usage["used_bytes"].as_u64().unwrap(), sum);
    assert!(usage["history_bytes"].as_u64().unwrap() >= "version two".len() as u64);
}
