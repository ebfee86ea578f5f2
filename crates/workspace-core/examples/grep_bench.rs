//! Grep against ripgrep (SPEC §15, issue #16): the same 1 000 files (10 MiB) written into a
//! workspace (a SQLite file on disk; 10 KiB files are kept in their rows, as the default
//! `WS_INLINE_MAX_BYTES` does) and into a folder on disk, searched for the same pattern. Prints
//! the best of several warm runs of each. Run by `bench/grep.sh` (release build).
//!
//!   cargo run --release -p workspace-core --example grep_bench -- [files] [bytes per file]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::process::Command;
use std::time::{Duration, Instant};

use workspace_core::{
    Db, GrepOptions, InMemoryStorage, NewFile, PathPrefix, Settings, Storage, UserId, WorkspacePath, Workspaces,
};

const RUNS: usize = 7;
const WORDS: [&str; 16] = [
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "kilo", "lima",
    "mike", "november", "oscar", "papa",
];

/// Deterministic text: lines of words, with `needle` on about one line in 500.
fn content(seed: u64, bytes: usize) -> String {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let mut next = || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 33) as usize
    };
    let mut out = String::with_capacity(bytes + 100);
    while out.len() < bytes {
        let words = 6 + next() % 8;
        for w in 0..words {
            if w > 0 {
                out.push(' ');
            }
            out.push_str(WORDS[next() % WORDS.len()]);
        }
        if next() % 500 == 0 {
            out.push_str(" needle42");
        }
        out.push('\n');
    }
    out.truncate(bytes);
    out
}

fn best(times: &mut [Duration]) -> Duration {
    times.sort();
    times[0]
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let files: usize = args.get(1).map_or(1000, |a| a.parse().unwrap());
    let size: usize = args.get(2).map_or(10 * 1024, |a| a.parse().unwrap());
    let pattern = std::env::var("GREP_BENCH_PATTERN").unwrap_or_else(|_| "needle[0-9]+".into());
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("files");

    let url = format!("sqlite://{}?mode=rwc", dir.path().join("bench.db").display());
    let db = Db::connect(&url).await.unwrap();
    workspace_migrations::migrate(db.conn()).await.unwrap();
    let workspaces = Workspaces::new(db, Storage::new(InMemoryStorage::new()), Settings::default()).unwrap();
    let manager = workspaces.manager(&UserId::new("bench").unwrap(), None).await.unwrap();
    for i in 0..files {
        let text = content(i as u64, size);
        let rel = format!("dir{:02}/file{i:04}.txt", i % 20);
        let on_disk = tree.join(&rel);
        std::fs::create_dir_all(on_disk.parent().unwrap()).unwrap();
        std::fs::write(&on_disk, &text).unwrap();
        let path = WorkspacePath::parse(&format!("/{rel}")).unwrap();
        manager.write_bytes(NewFile::new(path), text.into_bytes()).await.unwrap();
    }

    let mut ours = Vec::new();
    let mut found = 0;
    for _ in 0..RUNS {
        let started = Instant::now();
        let result = manager
            .grep(GrepOptions {
                pattern: pattern.clone(),
                literal: false,
                case_insensitive: false,
                prefix: PathPrefix::ROOT,
                glob: None,
                context_lines: 0,
                max_matches: usize::MAX - 1,
            })
            .await
            .unwrap();
        ours.push(started.elapsed());
        assert_eq!(result.files_scanned as usize, files);
        found = result.matches.len();
    }

    let rg = |threads: Option<&str>| {
        let mut times = Vec::new();
        let mut lines = 0;
        for _ in 0..RUNS {
            let mut cmd = Command::new("rg");
            cmd.args(["--no-config", "--no-filename", "--count-matches", "--no-messages"]);
            if let Some(j) = threads {
                cmd.args(["-j", j]);
            }
            cmd.arg(&pattern).arg(&tree);
            let started = Instant::now();
            let out = cmd.output().expect("ripgrep (rg) is installed");
            times.push(started.elapsed());
            lines = String::from_utf8_lossy(&out.stdout).lines().map(|l| l.trim().parse::<usize>().unwrap_or(0)).sum();
        }
        (best(&mut times), lines)
    };
    let (rg_default, rg_found) = rg(None);
    let (rg_one, _) = rg(Some("1"));
    let ours = best(&mut ours);
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("files: {files} x {size} bytes = {:.1} MiB; pattern `{pattern}`", (files * size) as f64 / 1048576.0);
    println!("matches: ours {found} lines, ripgrep {rg_found}");
    println!("ours (workspace grep, SQLite on disk): {:.1} ms", ms(ours));
    println!("ripgrep (default threads): {:.1} ms", ms(rg_default));
    println!("ripgrep (-j1): {:.1} ms", ms(rg_one));
    println!("ratio ours / ripgrep: {:.2}x (vs -j1: {:.2}x)", ms(ours) / ms(rg_default), ms(ours) / ms(rg_one));
}
