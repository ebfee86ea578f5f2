//! Renders the results file (one JSON object per line, each with a `key`) as Markdown. A key
//! measured more than once (`bench/run.sh` repeats each throughput measure, interleaving ours and
//! the peers) is shown as the median of its runs with their spread (min–max).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use serde_json::Value;

/// Every run of each key, in the order they ran.
type Results = HashMap<String, Vec<Value>>;

/// The field of every run of `key`.
fn runs(results: &Results, key: &str, field: &str) -> Vec<f64> {
    results.get(key).map(|runs| runs.iter().filter_map(|r| r.get(field)?.as_f64()).collect()).unwrap_or_default()
}

/// The median over the runs of `key`.
fn get(results: &Results, key: &str, field: &str) -> Option<f64> {
    let mut v = runs(results, key, field);
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 1 { v[mid] } else { (v[mid - 1] + v[mid]) / 2.0 })
}

/// The largest value over the runs of `key` (peak memory).
fn max(results: &Results, key: &str, field: &str) -> Option<f64> {
    runs(results, key, field).into_iter().reduce(f64::max)
}

/// `median` alone for one run; `median (min–max)` for several.
fn fmt_runs(results: &Results, key: Option<&str>, field: &str, digits: usize) -> String {
    let Some(key) = key else { return "–".to_owned() };
    let v = runs(results, key, field);
    let Some(median) = get(results, key, field) else { return "–".to_owned() };
    if v.len() < 2 {
        return format!("{median:.digits$}");
    }
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{median:.digits$} ({lo:.digits$}–{hi:.digits$})")
}

fn fmt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "–".to_owned(), |v| format!("{v:.digits$}"))
}

/// Whether `ours` ≥ `factor` × `peer` in each pair of runs (the i-th run of ours against the
/// i-th of the peer: they ran back to back).
fn every_run(results: &Results, ours: &str, peer: &str, field: &str, factor: f64) -> Option<bool> {
    let (o, p) = (runs(results, ours, field), runs(results, peer, field));
    if o.is_empty() || o.len() != p.len() {
        return None;
    }
    Some(o.iter().zip(&p).all(|(o, p)| *o >= factor * p))
}

fn ratio(ours: Option<f64>, peer: Option<f64>) -> String {
    match (ours, peer) {
        (Some(o), Some(p)) if p > 0.0 => format!("{:.2}×", o / p),
        _ => "–".to_owned(),
    }
}

fn verdict(ok: Option<bool>) -> &'static str {
    match ok {
        Some(true) => "yes",
        Some(false) => "**no**",
        None => "–",
    }
}

/// 4 KiB writes per second of v1 (every write a blob in the GCS emulator) on PostgreSQL, 16
/// clients of one user, on this machine: the base of the "5×" target of issue #18.
const V1_PG_SMALL_WRITES: f64 = 285.0;

struct Row {
    measure: &'static str,
    /// The result key and field of each column: ours, nginx, dufs.
    keys: [Option<String>; 3],
    field: &'static str,
    digits: usize,
    target: &'static str,
    met: Option<bool>,
}

impl Row {
    /// A row of our figure alone (memory, latency of our own routes).
    fn ours(measure: &'static str, key: &'static str, field: &'static str, digits: usize) -> Self {
        Self { measure, keys: [Some(key.to_owned()), None, None], field, digits, target: "(context)", met: None }
    }

    /// A row of ours, nginx and dufs under `{prefix}_ours`, `{prefix}_nginx`, `{prefix}_dufs`.
    fn side_by_side(measure: &'static str, prefix: &str, field: &'static str, digits: usize) -> Self {
        Self {
            measure,
            keys: ["ours", "nginx", "dufs"].map(|server| Some(format!("{prefix}_{server}"))),
            field,
            digits,
            target: "(context)",
            met: None,
        }
    }

    fn target(mut self, target: &'static str, met: Option<bool>) -> Self {
        self.target = target;
        self.met = met;
        self
    }
}

pub fn write(results_path: &Path, out: &Path, notes: Option<&Path>, meta: &[String]) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(results_path).with_context(|| format!("reading {}", results_path.display()))?;
    let mut results = Results::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let value: Value = serde_json::from_str(line)?;
        let key = value["key"].as_str().context("a result without key")?.to_owned();
        results.entry(key).or_default().push(value);
    }
    let r = &results;
    let at_least =
        |ours: &str, peer: &str, field: &str, factor: f64| Some(get(r, ours, field)? >= factor * get(r, peer, field)?);
    let under_64 = |key: &str| max(r, key, "peak_rss_kib").map(|k| k / 1024.0 < 64.0);
    let feed_delivered =
        r.get("sw_ours_feed").map(|runs| runs.iter().all(|v| v["all_delivered"].as_bool() == Some(true)));
    let media_stored = r.get("media_ours").map(|runs| runs.iter().all(|v| v["stored"].as_bool() == Some(true)));
    let rows = [
        Row::side_by_side("1. download 1 file, MB/s", "dl", "median_mbps", 0)
            .target("≥ 1.2× nginx in every run", every_run(r, "dl_ours", "dl_nginx", "median_mbps", 1.2)),
        Row::side_by_side("2. upload 1 file, MB/s", "up", "mbps", 0)
            .target("≥ 0.8× disk (row 2b)", at_least("up_ours", "disk", "mbps", 0.8)),
        Row::ours("2b. the disk: dd + fdatasync of a new file, MB/s", "disk", "mbps", 0),
        Row::side_by_side("3. 8 parallel downloads, total MB/s", "pdl", "total_mbps", 0),
        Row::side_by_side("4. 1 MiB range reads, 16 conns, req/s", "range", "req_per_s", 0)
            .target("≥ 1.0× nginx", at_least("range_ours", "range_nginx", "req_per_s", 1.0)),
        Row::side_by_side("4b. 1 MiB range, p99 ms", "range", "p99_ms", 2),
        Row::side_by_side("5. 4 KiB reads, 16 conns, req/s", "small_read", "req_per_s", 0)
            .target("≥ 1.0× dufs", at_least("small_read_ours", "small_read_dufs", "req_per_s", 1.0)),
        Row::side_by_side("5b. 4 KiB reads, p99 ms", "small_read", "p99_ms", 2),
        Row::side_by_side("6. 4 KiB writes/s, 16 clients, one user", "sw", "writes_per_s", 0)
            .target("≥ 1.0× dufs, every 201 durable", at_least("sw_ours", "sw_dufs", "writes_per_s", 1.0)),
        Row::side_by_side("6b. 4 KiB write p99 latency, ms", "sw", "p99_ms", 2),
        Row::ours(
            "6c. 4 KiB writes/s on PostgreSQL + the GCS emulator, 16 clients, one user",
            "sw_pg",
            "writes_per_s",
            0,
        )
        .target(
            "≥ 1425/s (5× v1's 285/s), every 201 durable",
            get(r, "sw_pg", "writes_per_s").map(|v| v >= 5.0 * V1_PG_SMALL_WRITES),
        ),
        Row::ours("6d. 4 KiB write p99 on PostgreSQL + the GCS emulator, ms", "sw_pg", "p99_ms", 2),
        Row::ours("7a. list page of 100, p50 ms", "list_ours", "p50_ms", 2),
        Row::ours("7b. list page of 100, p99 ms", "list_ours", "p99_ms", 2)
            .target("< 5 ms (with history)", get(r, "list_ours", "p99_ms").map(|v| v < 5.0)),
        Row::ours("7c. folder listing (delimiter=/), page of 100 folders, p50 ms", "list_folders_ours", "p50_ms", 2),
        Row::ours("7d. folder listing (delimiter=/), page of 100 folders, p99 ms", "list_folders_ours", "p99_ms", 2)
            .target("< 10 ms", get(r, "list_folders_ours", "p99_ms").map(|v| v < 10.0)),
        Row::ours(
            "7e. list newest first (sort=created_at&order=desc), page of 100, p99 ms",
            "list_newest_ours",
            "p99_ms",
            2,
        )
        .target("< 5 ms", get(r, "list_newest_ours", "p99_ms").map(|v| v < 5.0)),
        Row::ours(
            "7f. list largest first (sort=size&order=desc), page of 100, p99 ms",
            "list_largest_ours",
            "p99_ms",
            2,
        )
        .target("< 5 ms", get(r, "list_largest_ours", "p99_ms").map(|v| v < 5.0)),
        Row::ours("7g. name search (q=f00012, 1 file in 1000), page of 100, p99 ms", "list_search_ours", "p99_ms", 2)
            .target("< 5 ms", get(r, "list_search_ours", "p99_ms").map(|v| v < 5.0)),
        Row::ours(
            "8a. small writes/s, 16 clients, 200 event streams of another user open",
            "sw_ours_feed_idle",
            "writes_per_s",
            0,
        )
        .target("≥ 0.9× row 6 (ours)", at_least("sw_ours_feed_idle", "sw_ours", "writes_per_s", 0.9)),
        Row::ours(
            "8b. small writes/s, 16 clients, 200 streams of the writers' user (each write sent 200×)",
            "sw_ours_feed",
            "writes_per_s",
            0,
        ),
        Row::ours("8c. seconds until every stream had every event", "sw_ours_feed", "drain_seconds", 2)
            .target("all delivered", feed_delivered),
        Row::ours("9. store_media_file of a remote URL (run_block), MB/s", "media_ours", "mbps", 0)
            .target("stored whole", media_stored),
    ];
    // Peak RSS of our server in each scenario (MiB; the largest over repeated runs).
    let rss_rows: [(&str, &str); 8] = [
        ("during the upload", "up_ours"),
        ("8 parallel downloads", "pdl_ours"),
        ("small writes (row 6)", "sw_ours"),
        ("after 100 000 small writes (fewer in quick mode: see the raw results)", "sw_ours_many"),
        ("200 event streams + 16 writers", "sw_ours_feed"),
        ("200 idle event streams + 16 writers", "sw_ours_feed_idle"),
        ("store_media_file of a remote URL (row 9)", "media_ours"),
        ("small writes on PostgreSQL + GCS (row 6c; a second server)", "sw_pg"),
    ];

    let mut md = String::new();
    writeln!(md, "# Benchmarks\n")?;
    writeln!(md, "<!-- Generated by bench/run.sh; edit bench/NOTES.md or bench/client/src/report.rs instead. -->\n")?;
    writeln!(
        md,
        "Our server with its defaults (SQLite + local disk; every 201 durable: a file above the inline threshold"
    )?;
    writeln!(
        md,
        "is a blob, fsynced, renamed and its directory fsynced; every change commits to SQLite and waits for a"
    )?;
    writeln!(
        md,
        "group fsync of its WAL) side by side with nginx (sendfile; WebDAV `PUT`) and dufs, all on loopback in"
    )?;
    writeln!(
        md,
        "one run on the same machine and the same bytes. Neither peer fsyncs an upload. Row 6c runs a second"
    )?;
    writeln!(md, "server of ours on PostgreSQL + the GCS emulator (fake-gcs-server) in the same run.\n")?;
    writeln!(md, "## Run\n")?;
    for item in meta {
        let (k, v) = item.split_once('=').unwrap_or((item.as_str(), ""));
        writeln!(md, "- **{k}**: {v}")?;
    }
    writeln!(md, "\n## Results\n")?;
    writeln!(md, "Each figure is the median of its runs, with their spread (min–max) when there were several.")?;
    writeln!(md, "Ratios are ours ÷ peer of the medians (for latencies, lower is better).\n")?;
    writeln!(md, "| measure | ours | nginx | dufs | ours/nginx | ours/dufs | target | met |")?;
    writeln!(md, "|---|---:|---:|---:|---:|---:|---|---|")?;
    for row in &rows {
        let [ours, nginx, dufs] = row.keys.each_ref().map(|k| k.as_deref().and_then(|k| get(r, k, row.field)));
        let [ours_text, nginx_text, dufs_text] =
            row.keys.each_ref().map(|k| fmt_runs(r, k.as_deref(), row.field, row.digits));
        writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            row.measure,
            ours_text,
            nginx_text,
            dufs_text,
            ratio(ours, nginx),
            ratio(ours, dufs),
            row.target,
            verdict(row.met)
        )?;
    }
    writeln!(md, "\n### Peak memory of our server\n")?;
    writeln!(md, "| scenario | peak RSS, MiB | target | met |")?;
    writeln!(md, "|---|---:|---|---|")?;
    for (scenario, key) in rss_rows {
        let peak = max(r, key, "peak_rss_kib").map(|k| k / 1024.0);
        writeln!(md, "| {scenario} | {} | < 64 MiB | {} |", fmt(peak, 1), verdict(under_64(key)))?;
    }
    if let Some(seed) = results.get("seed").and_then(|runs| runs.last()) {
        writeln!(
            md,
            "\nListing workspace: {} files in {} folders ({} written through `WorkspaceManager`, the rest copies of its row, each with one older version: {} history rows), seeded in {:.1} s.",
            seed["count"],
            seed["folders"],
            seed["via_manager"],
            seed["history_rows"],
            seed["seconds"].as_f64().unwrap_or(0.0)
        )?;
    }
    writeln!(md, "\n<details><summary>Raw results (JSON lines)</summary>\n\n```json")?;
    let mut keys: Vec<_> = results.keys().collect();
    keys.sort();
    for key in keys {
        for run in &results[key] {
            writeln!(md, "{}", serde_json::to_string(run)?)?;
        }
    }
    writeln!(md, "```\n\n</details>\n")?;
    if let Some(notes) = notes {
        md.push_str(&std::fs::read_to_string(notes).with_context(|| format!("reading {}", notes.display()))?);
    }
    std::fs::write(out, md)?;
    Ok(())
}
