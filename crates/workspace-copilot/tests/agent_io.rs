//! Agent file I/O (SPEC §15) through the tools, on SQLite and PostgreSQL with the configured
//! storage: line reads, grep, glob, edit, append, their bad inputs, and the context budget of
//! every tool's result (checked against its output schema too).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Harness, expect_err};
use serde_json::{Value, json};
use workspace_copilot::mcp::annotations_for;
use workspace_copilot::{McpServer, resources};
use workspace_core::{SessionId, Settings, UserId};
use workspace_testkit::{TestEnv, db_tests};

fn numbered(n: usize) -> String {
    (1..=n).map(|i| format!("line {i}\n")).collect()
}

async fn write(h: &Harness, session: &str, path: &str, content: &str) -> Value {
    let name = path.rsplit('/').next().unwrap();
    h.call(
        session,
        "write_workspace_file",
        json!({"filename": name, "path": path, "content": content, "overwrite": true}),
    )
    .await
    .unwrap()
}

async fn line_reads(env: TestEnv) {
    let h = Harness::new(env);
    write(&h, "s1", "log.txt", &numbered(1000)).await;
    let got =
        h.call("s1", "read_workspace_file", json!({"path": "log.txt", "start_line": 2, "end_line": 4})).await.unwrap();
    assert_eq!(got["content"], "2\tline 2\n3\tline 3\n4\tline 4\n");
    assert_eq!((got["total_lines"].as_u64(), got["end_line"].as_u64()), (Some(1000), Some(4)));
    assert_eq!(got["truncated"], false);
    assert!(got["message"].as_str().unwrap().contains("lines 5 to 1000 follow"), "{}", got["message"]);
    let last = h.call("s1", "read_workspace_file", json!({"path": "log.txt", "start_line": 1000})).await.unwrap();
    assert_eq!(last["content"], "1000\tline 1000\n");

    // Bad input: 0 and past the end state total_lines; end before start is refused.
    for start in [0, 1001] {
        let msg = expect_err(
            h.call("s1", "read_workspace_file", json!({"path": "log.txt", "start_line": start})).await,
            "invalid_input",
        );
        assert!(msg.contains("total_lines 1000"), "{msg}");
    }
    let msg = expect_err(
        h.call("s1", "read_workspace_file", json!({"path": "log.txt", "start_line": 5, "end_line": 4})).await,
        "invalid_input",
    );
    assert!(msg.contains("before start_line"), "{msg}");

    // The 32 KiB budget stops between lines and says where to continue; following it reads every
    // line exactly once.
    let wide: String = (1..=2000).map(|i| format!("{i:05} {}\n", "x".repeat(90))).collect();
    write(&h, "s1", "wide.txt", &wide).await;
    let mut next = Some(1u64);
    let mut seen = Vec::new();
    while let Some(start) = next {
        let got = h.call("s1", "read_workspace_file", json!({"path": "wide.txt", "start_line": start})).await.unwrap();
        let content = got["content"].as_str().unwrap();
        assert!(content.len() <= 32 * 1024, "{} bytes", content.len());
        for line in content.lines() {
            seen.push(line.split('\t').next().unwrap().parse::<u64>().unwrap());
        }
        next = got["next_start_line"].as_u64();
        if next.is_some() {
            assert_eq!(got["truncated"], true);
            assert!(got["message"].as_str().unwrap().contains("start_line="), "{}", got["message"]);
        }
    }
    assert_eq!(seen, (1..=2000).collect::<Vec<_>>());

    // One line longer than the budget continues by character offset.
    let long = format!("head\n{}\ntail\n", "é".repeat(40_000));
    write(&h, "s1", "long.txt", &long).await;
    let mut offset = 0u64;
    let mut pieces = String::new();
    loop {
        let got = h
            .call(
                "s1",
                "read_workspace_file",
                json!({"path": "long.txt", "start_line": 2, "end_line": 2, "offset": offset}),
            )
            .await
            .unwrap();
        let content = got["content"].as_str().unwrap();
        assert!(content.len() <= 32 * 1024);
        pieces.push_str(content.strip_prefix("2\t").unwrap().trim_end_matches('\n'));
        match got["next_offset"].as_u64() {
            Some(next) => {
                assert_eq!(got["next_start_line"], 2);
                assert!(got["message"].as_str().unwrap().contains(&format!("offset={next}")));
                offset = next;
            }
            None => break,
        }
    }
    assert_eq!(pieces, "é".repeat(40_000));

    // A large file read whole gives size, lines and checksum, and names the line read.
    let big = h.call("s1", "read_workspace_file", json!({"path": "wide.txt"})).await.unwrap();
    assert_eq!(big["total_lines"], 2000);
    let message = big["message"].as_str().unwrap();
    let checksum = big["file"]["checksum"].as_str().unwrap();
    for needle in ["2000 lines", checksum, "start_line", &big["file"]["size_bytes"].to_string()] {
        assert!(message.contains(needle), "{needle} in {message}");
    }
    // Binary files have no lines.
    h.call("s1", "write_workspace_file", json!({"filename": "b.bin", "content_base64": "AAECAwQ="})).await.unwrap();
    expect_err(h.call("s1", "read_workspace_file", json!({"path": "b.bin", "start_line": 1})).await, "invalid_input");
}

async fn grep(env: TestEnv) {
    let settings = Settings { grep_max_file_bytes: 64 * 1024, ..Settings::default() };
    let h = Harness::with_settings(env, settings);
    write(&h, "s1", "a.md", "# Title\nTODO: write intro\nbody\ntodo lower\n").await;
    write(&h, "s1", "notes/b.txt", "nothing\nTODO(x) fix [1]\n").await;
    write(&h, "s2", "c.md", "TODO elsewhere\n").await;
    h.call("s1", "write_workspace_file", json!({"filename": "bin.dat", "content_base64": "VE9ETwBUT0RP"}))
        .await
        .unwrap();
    write(&h, "s1", "huge.txt", &"TODO\n".repeat(20_000)).await;

    // The session's folder by default; binaries and oversize files are skipped and counted.
    let got = h.call("s1", "grep_workspace_files", json!({"pattern": "TODO"})).await.unwrap();
    let hits: Vec<(String, u64)> = got["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["path"].as_str().unwrap().to_owned(), m["line"].as_u64().unwrap()))
        .collect();
    assert_eq!(hits, [("/sessions/s1/a.md".to_owned(), 2), ("/sessions/s1/notes/b.txt".to_owned(), 2)]);
    assert_eq!((got["files_scanned"].as_u64(), got["files_skipped"].as_u64()), (Some(2), Some(2)));
    assert_eq!(got["truncated"], false);
    assert!(got["matches"][0]["file_id"].as_str().unwrap().len() == 36);
    assert_eq!(got["matches"][0]["text"], "TODO: write intro");

    // `/` is the whole workspace; case folding; glob on names; literal metacharacters.
    let all = h
        .call(
            "s1",
            "grep_workspace_files",
            json!({"pattern": "todo", "path_prefix": "/", "case_insensitive": true, "glob": "*.md"}),
        )
        .await
        .unwrap();
    assert_eq!(all["matches"].as_array().unwrap().len(), 3, "{all}");
    let literal =
        h.call("s1", "grep_workspace_files", json!({"pattern": "(x) fix [1]", "literal": true})).await.unwrap();
    assert_eq!(literal["matches"][0]["path"], "/sessions/s1/notes/b.txt");
    let context = h.call("s1", "grep_workspace_files", json!({"pattern": "^body$", "context_lines": 1})).await.unwrap();
    assert_eq!(context["matches"][0]["before"], json!(["TODO: write intro"]));
    assert_eq!(context["matches"][0]["after"], json!(["todo lower"]));

    // max_matches caps and says so.
    write(&h, "s3", "many.txt", &"hit\n".repeat(50)).await;
    let capped = h.call("s3", "grep_workspace_files", json!({"pattern": "hit", "max_matches": 7})).await.unwrap();
    assert_eq!(capped["matches"].as_array().unwrap().len(), 7);
    assert_eq!(capped["truncated"], true);
    assert!(capped["message"].as_str().unwrap().contains("more matches exist"));

    // Bad input: an invalid regex names the problem.
    let msg =
        expect_err(h.call("s1", "grep_workspace_files", json!({"pattern": "TODO(unclosed"})).await, "invalid_input");
    assert!(msg.contains("invalid regular expression") && msg.contains("unclosed"), "{msg}");
    let msg =
        expect_err(h.call("s1", "grep_workspace_files", json!({"pattern": "x", "glob": "a[b"})).await, "invalid_input");
    assert!(msg.contains("invalid glob"), "{msg}");

    // A catastrophic-backtracking pattern stays linear: 60 KB of `a` without a match.
    write(&h, "s4", "evil.txt", &format!("{}!\n", "a".repeat(60_000))).await;
    let started = Instant::now();
    let got = h.call("s4", "grep_workspace_files", json!({"pattern": "^(a+)+$"})).await.unwrap();
    assert_eq!(got["matches"].as_array().unwrap().len(), 0);
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
}

/// Files kept in rows and blob files interleave in path order, line numbers intact.
async fn grep_mixes_row_and_blob_files(env: TestEnv) {
    let h = Harness::new(env);
    write(&h, "s5", "a.txt", "x\nmark\n").await;
    write(&h, "s5", "b.txt", &format!("{}mark\n", "filler line\n".repeat(6000))).await;
    write(&h, "s5", "c.txt", "mark\n").await;
    let mixed = h.call("s5", "grep_workspace_files", json!({"pattern": "mark"})).await.unwrap();
    let got: Vec<(String, u64)> = mixed["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["path"].as_str().unwrap().rsplit('/').next().unwrap().to_owned(), m["line"].as_u64().unwrap()))
        .collect();
    assert_eq!(got, [("a.txt".to_owned(), 2), ("b.txt".to_owned(), 6001), ("c.txt".to_owned(), 1)]);
}

async fn glob(env: TestEnv) {
    let h = Harness::new(env);
    for name in ["a.md", "x/b.md", "x/y/c.md", "x/d.txt"] {
        let (dir, file) = name.rsplit_once('/').map_or(("", name), |(d, f)| (d, f));
        let path = if dir.is_empty() { file.to_owned() } else { format!("{dir}/{file}") };
        h.call("s1", "write_workspace_file", json!({"filename": file, "content": "z", "path": path})).await.unwrap();
    }
    write(&h, "s2", "other.md", "z").await;
    let paths = |v: &Value| -> Vec<String> {
        v["files"].as_array().unwrap().iter().map(|f| f["path"].as_str().unwrap().to_owned()).collect()
    };
    let all = h.call("s1", "glob_workspace_files", json!({"pattern": "**/*.md"})).await.unwrap();
    assert_eq!(paths(&all), ["/sessions/s1/a.md", "/sessions/s1/x/b.md", "/sessions/s1/x/y/c.md"]);
    assert_eq!(all["truncated"], false);
    let one_level = h.call("s1", "glob_workspace_files", json!({"pattern": "x/*.md"})).await.unwrap();
    assert_eq!(paths(&one_level), ["/sessions/s1/x/b.md"], "`*` stays in one folder");
    let txt = h.call("s1", "glob_workspace_files", json!({"pattern": "*.txt", "path_prefix": "x"})).await.unwrap();
    assert_eq!(paths(&txt), ["/sessions/s1/x/d.txt"]);
    let everywhere =
        h.call("s1", "glob_workspace_files", json!({"pattern": "*.md", "path_prefix": "/"})).await.unwrap();
    assert_eq!(everywhere["count"], 4);
    expect_err(h.call("s1", "glob_workspace_files", json!({"pattern": "{a,"})).await, "invalid_input");
}

async fn edit(env: TestEnv) {
    let h = Harness::new(env);
    let written = write(&h, "s1", "doc.md", "alpha\nbeta\ngamma\nbeta\n").await;
    let first = written["file"]["checksum"].as_str().unwrap().to_owned();

    // 0 and 2+ matches: the count, nothing written.
    let msg = expect_err(
        h.call("s1", "edit_workspace_file", json!({"path": "doc.md", "old_text": "delta", "new_text": "x"})).await,
        "invalid_input",
    );
    assert!(msg.contains("matches 0 times"), "{msg}");
    let msg = expect_err(
        h.call("s1", "edit_workspace_file", json!({"path": "doc.md", "old_text": "beta", "new_text": "x"})).await,
        "invalid_input",
    );
    assert!(msg.contains("matches 2 times") && msg.contains("replace_all"), "{msg}");
    let read = h.call("s1", "read_workspace_file", json!({"path": "doc.md"})).await.unwrap();
    assert_eq!((read["file"]["checksum"].as_str(), read["file"]["version"].as_u64()), (Some(first.as_str()), Some(1)));

    // dry_run shows the diff and writes nothing.
    let dry = h
        .call(
            "s1",
            "edit_workspace_file",
            json!({"path": "doc.md", "old_text": "gamma", "new_text": "GAMMA", "dry_run": true}),
        )
        .await
        .unwrap();
    assert_eq!(dry["written"], false);
    assert!(dry["diff"].as_str().unwrap().contains("-gamma\n+GAMMA\n"), "{}", dry["diff"]);
    let read = h.call("s1", "read_workspace_file", json!({"path": "doc.md"})).await.unwrap();
    assert_eq!(read["file"]["checksum"], first.as_str());

    // One match: a new version with the diff's checksum.
    let done = h
        .call(
            "s1",
            "edit_workspace_file",
            json!({"path": "doc.md", "old_text": "gamma", "new_text": "GAMMA", "if_match": first}),
        )
        .await
        .unwrap();
    assert_eq!(done["written"], true);
    assert_eq!(done["checksum"], dry["checksum"], "the dry run predicted the checksum");
    assert!(done["diff"].as_str().unwrap().starts_with("--- a/sessions/s1/doc.md\n+++ b/sessions/s1/doc.md\n@@"));
    let read = h.call("s1", "read_workspace_file", json!({"path": "doc.md"})).await.unwrap();
    assert_eq!(read["content"], "alpha\nbeta\nGAMMA\nbeta\n");
    assert_eq!(
        (read["file"]["checksum"].clone(), read["file"]["version"].as_u64()),
        (done["checksum"].clone(), Some(2))
    );

    // A stale if_match: precondition_failed with the current checksum, nothing written.
    let stale = h
        .copilot
        .tools()
        .call_json(
            "edit_workspace_file",
            json!({"path": "doc.md", "old_text": "alpha", "new_text": "A", "if_match": first}),
            &h.copilot.context(&UserId::new("alice").unwrap(), &SessionId::new("s1").unwrap()).await.unwrap(),
        )
        .await;
    assert_eq!(stale["error"], "precondition_failed", "{stale}");
    assert_eq!(stale["current_checksum"], done["checksum"]);
    assert!(stale["message"].is_string());

    // replace_all replaces every occurrence, in one version.
    let all = h
        .call(
            "s1",
            "edit_workspace_file",
            json!({"path": "doc.md", "old_text": "beta", "new_text": "B", "replace_all": true}),
        )
        .await
        .unwrap();
    assert_eq!(all["replacements"], 2);
    let read = h.call("s1", "read_workspace_file", json!({"path": "doc.md"})).await.unwrap();
    assert_eq!(read["content"], "alpha\nB\nGAMMA\nB\n");
    assert_eq!(read["file"]["version"], 3);
    // Every edit is a version: the first content is still there.
    let versions = h.call("s1", "list_workspace_versions", json!({"path": "doc.md"})).await.unwrap();
    assert_eq!(versions["count"], 3);
    // An older version is not edited; binaries are not text.
    let old = versions["versions"].as_array().unwrap().iter().find(|v| v["version"] == 1).unwrap()["id"].clone();
    expect_err(
        h.call("s1", "edit_workspace_file", json!({"file_id": old, "old_text": "alpha", "new_text": "x"})).await,
        "not_current",
    );
}

async fn append(env: TestEnv) {
    let h = Harness::new(env);
    let created = h
        .call("s1", "write_workspace_file", json!({"filename": "log.txt", "content": "one\n", "append": true}))
        .await
        .unwrap();
    assert_eq!(created["file"]["version"], 1);
    let appended = h
        .call("s1", "write_workspace_file", json!({"filename": "log.txt", "content": "two\n", "append": true}))
        .await
        .unwrap();
    assert_eq!((appended["file"]["version"].as_u64(), appended["file"]["size_bytes"].as_u64()), (Some(2), Some(8)));
    let read = h.call("s1", "read_workspace_file", json!({"path": "log.txt"})).await.unwrap();
    assert_eq!(read["content"], "one\ntwo\n");
    let stale = created["file"]["checksum"].as_str().unwrap();
    let err = h
        .call(
            "s1",
            "write_workspace_file",
            json!({"filename": "log.txt", "content": "x", "append": true, "if_match": stale}),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, "precondition_failed");
    assert_eq!(err.current_checksum.as_deref(), appended["file"]["checksum"].as_str());
    // A blob-sized file appends by streaming.
    let big = "y".repeat(200_000);
    h.call("s1", "write_workspace_file", json!({"filename": "big.txt", "content": big})).await.unwrap();
    let grown = h
        .call("s1", "write_workspace_file", json!({"filename": "big.txt", "content": "END", "append": true}))
        .await
        .unwrap();
    assert_eq!(grown["file"]["size_bytes"], 200_003);
    let tail =
        h.call("s1", "read_workspace_file", json!({"path": "big.txt", "offset": 199_998, "length": 10})).await.unwrap();
    assert_eq!(tail["content"], "yyEND");
}

/// Every tool, driven with large inputs: each result matches its output schema, and the largest
/// stays within 40 000 characters (SPEC §15).
async fn every_result_fits_the_context_budget(env: TestEnv) {
    let h = Harness::new(env);
    let big_lines: String = (0..20_000).map(|i| format!("{i} TODO {}\n", "w".repeat(60))).collect();
    write(&h, "s1", "big.txt", &big_lines).await;
    write(&h, "s1", "long-line.txt", &"z".repeat(300_000)).await;
    for i in 0..120 {
        let name = format!("{}-{i}.md", "n".repeat(150));
        write(&h, "s1", &name, &format!("TODO {}\n", "q".repeat(2000))).await;
    }
    let png: &[u8] = &[
        0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00,
        0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4, 0x89, 0x00, 0x00, 0x00,
        0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x00, 0x01, 0x00, 0x00, 0x05, 0x00, 0x01, 0x0d, 0x0a, 0x2d,
        0xb4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
    ];
    let png64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, png);
    h.call("s1", "write_workspace_file", json!({"filename": "img.png", "content_base64": png64})).await.unwrap();
    let calls: Vec<(&str, Value)> = vec![
        ("list_workspace_files", json!({"limit": 100})),
        ("read_workspace_file", json!({"path": "big.txt"})),
        ("read_workspace_file", json!({"path": "big.txt", "start_line": 1})),
        ("read_workspace_file", json!({"path": "long-line.txt", "start_line": 1})),
        ("read_workspace_file", json!({"path": "long-line.txt", "offset": 0, "length": 32768})),
        ("read_workspace_file", json!({"path": "img.png"})),
        ("grep_workspace_files", json!({"pattern": "TODO", "max_matches": 500})),
        ("grep_workspace_files", json!({"pattern": "TODO", "max_matches": 500, "context_lines": 10})),
        ("glob_workspace_files", json!({"pattern": "**"})),
        (
            "edit_workspace_file",
            json!({"path": "big.txt", "old_text": "TODO", "new_text": "DONE", "replace_all": true, "dry_run": true}),
        ),
        ("write_workspace_file", json!({"filename": "w.txt", "content": "x".repeat(100_000)})),
        ("write_workspace_file", json!({"filename": "w.txt", "content": "x".repeat(100_000), "append": true})),
        ("list_workspace_versions", json!({"path": "w.txt"})),
        ("workspace_usage", json!({})),
        ("copy_workspace_file", json!({"path": "big.txt", "new_path": "copy.txt"})),
        ("move_workspace_file", json!({"path": "copy.txt", "new_path": "moved.txt"})),
        ("delete_workspace_file", json!({"path": "moved.txt"})),
        ("run_block", json!({"block_id": "qr_code", "input": {"text": "x".repeat(500)}})),
    ];
    let mut called: Vec<&str> = Vec::new();
    let mut largest = (0, "");
    for (tool, args) in &calls {
        let result = h.call("s1", tool, args.clone()).await.unwrap_or_else(|e| panic!("{tool}: {e}"));
        h.copilot.tools().check_output(tool, &result).unwrap_or_else(|e| panic!("{tool}: {e}"));
        let chars = result.to_string().chars().count();
        assert!(chars <= 40_000, "{tool} returned {chars} characters");
        if let Some(content) = result["content"].as_str() {
            assert!(content.len() <= 32 * 1024, "{tool}: {} bytes of content", content.len());
        }
        if chars > largest.0 {
            largest = (chars, tool);
        }
        called.push(tool);
    }
    // restore, last: the deleted copy comes back.
    let trashed = h.manager().await.trash(10, None).await.unwrap();
    let id = trashed.files[0].file.id.to_string();
    let restored = h.call("s1", "restore_workspace_file", json!({"file_id": id})).await.unwrap();
    h.copilot.tools().check_output("restore_workspace_file", &restored).unwrap();
    called.push("restore_workspace_file");
    // Errors match the output schemas too.
    let err = h.copilot.tools().call_json("read_workspace_file", json!({"path": "nope"}), &ctx(&h).await).await;
    h.copilot.tools().check_output("read_workspace_file", &err).unwrap();
    for def in h.copilot.tools().definitions() {
        assert!(called.contains(&def.name.as_str()), "{} was driven", def.name);
    }
    println!("largest tool result: {} characters ({})", largest.0, largest.1);
    assert!(largest.0 > 20_000, "the inputs were large enough to test the budget");
}

async fn ctx(h: &Harness) -> workspace_copilot::ToolContext {
    h.copilot.context(&UserId::new("alice").unwrap(), &SessionId::new("s1").unwrap()).await.unwrap()
}

/// MCP surface without a transport: output schemas and annotations on every tool; resources
/// listed in pages of 100 and read within the limits.
async fn mcp_schemas_annotations_and_resources(env: TestEnv) {
    let h = Harness::new(env);
    let server = McpServer::for_user(h.copilot.clone(), UserId::new("alice").unwrap(), SessionId::new("s1").unwrap());
    for tool in server.mcp_tools() {
        let schema = tool.output_schema.as_ref().unwrap_or_else(|| panic!("{} has an outputSchema", tool.name));
        assert_eq!(schema["type"], "object");
        let a = tool.annotations.clone().unwrap();
        let name = tool.name.as_ref();
        let read_only = [
            "list_workspace_files",
            "read_workspace_file",
            "grep_workspace_files",
            "glob_workspace_files",
            "list_workspace_versions",
            "workspace_usage",
        ];
        let destructive = [
            "write_workspace_file",
            "edit_workspace_file",
            "move_workspace_file",
            "delete_workspace_file",
            "restore_workspace_file",
        ];
        assert_eq!(a.read_only_hint, Some(read_only.contains(&name)), "{name}");
        if destructive.contains(&name) {
            assert_eq!(a.destructive_hint, Some(true), "{name}");
        }
        assert_eq!(annotations_for(name), a);
    }
    for i in 0..205 {
        write(&h, "s1", &format!("f{i:03}.txt"), &format!("file {i}")).await;
    }
    write(&h, "s2", "elsewhere.txt", "no").await;
    write(&h, "s1", "large.txt", &numbered(10_000)).await;
    let manager = ctx(&h).await.manager().clone();
    let (page1, next) = resources::list(&manager, None).await.unwrap();
    assert_eq!(page1.len(), 100);
    let (page2, next) = resources::list(&manager, next).await.unwrap();
    let (page3, next) = resources::list(&manager, next).await.unwrap();
    assert_eq!((page2.len(), page3.len(), next), (100, 6, None));
    assert!(page1.iter().chain(&page2).chain(&page3).all(|r| r.name.starts_with("/sessions/s1/")), "session scope");
    let (_, body) = resources::read(&manager, &page1[0].uri).await.unwrap();
    assert_eq!(body, resources::ResourceBody::Text { text: "file 0".into(), mime_type: "text/plain".into() });
    let (_, by_path) = resources::read(&manager, "workspace:///sessions/s1/f001.txt").await.unwrap();
    assert!(matches!(by_path, resources::ResourceBody::Text { text, .. } if text == "file 1"));
    let err = resources::read(&manager, "workspace:///sessions/s1/large.txt").await.unwrap_err();
    assert!(err.message.contains("read_workspace_file") && err.message.contains("10000 lines"), "{}", err.message);
    let err = resources::read(&manager, "workspace:///sessions/s1/missing.txt").await.unwrap_err();
    assert_eq!(err.code, "not_found");
}

db_tests!(
    line_reads,
    grep,
    grep_mixes_row_and_blob_files,
    glob,
    edit,
    append,
    every_result_fits_the_context_budget,
    mcp_schemas_annotations_and_resources,
);
