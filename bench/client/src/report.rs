//! Renders the results file (one JSON object per line, each with a `key`) as Markdown.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use serde_json::Value;

type Results = HashMap<String, Value>;

fn get(results: &Results, key: &str, field: &str) -> Option<f64> {
    results.get(key)?.get(field)?.as_f64()
}

fn fmt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "–".to_owned(), |v| format!("{v:.digits$}"))
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

struct Row {
    measure: &'static str,
    ours: Option<f64>,
    nginx: Option<f64>,
    dufs: Option<f64>,
    digits: usize,
    target: &'static str,
    met: Option<bool>,
}

pub fn write(results_path: &Path, out: &Path, notes: Option<&Path>, meta: &[String]) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(results_path).with_context(|| format!("reading {}", results_path.display()))?;
    let mut results = Results::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let value: Value = serde_json::from_str(line)?;
        let key = value["key"].as_str().context("a result without key")?.to_owned();
        results.insert(key, value);
    }
    let r = &results;
    let kib_to_mib = |v: Option<f64>| v.map(|k| k / 1024.0);
    let dl = |k| get(r, k, "median_mbps");
    let up = |k| get(r, k, "mbps");
    let pdl = |k| get(r, k, "total_mbps");
    let sw = |k| get(r, k, "writes_per_s");
    let at_least = |ours: Option<f64>, peer: Option<f64>, factor: f64| Some(ours? >= factor * peer?);
    let rss_up = kib_to_mib(get(r, "up_ours", "peak_rss_kib"));
    let rss_pdl = kib_to_mib(get(r, "pdl_ours", "peak_rss_kib"));
    let list_p99 = get(r, "list_ours", "p99_ms");
    let folders_p99 = get(r, "list_folders_ours", "p99_ms");
    let sorted_p99 = |key| get(r, key, "p99_ms");
    let rss_feed = match (get(r, "sw_ours_feed", "peak_rss_kib"), get(r, "sw_ours_feed_idle", "peak_rss_kib")) {
        (Some(a), Some(b)) => kib_to_mib(Some(a.max(b))),
        (a, b) => kib_to_mib(a.or(b)),
    };
    let feed_delivered = r.get("sw_ours_feed").and_then(|v| v["all_delivered"].as_bool());
    let rows = [
        Row {
            measure: "1. download 1 file, MB/s (median)",
            ours: dl("dl_ours"),
            nginx: dl("dl_nginx"),
            dufs: dl("dl_dufs"),
            digits: 0,
            target: "≥ 0.9× nginx",
            met: at_least(dl("dl_ours"), dl("dl_nginx"), 0.9),
        },
        Row {
            measure: "2. upload 1 file, MB/s",
            ours: up("up_ours"),
            nginx: up("up_nginx"),
            dufs: up("up_dufs"),
            digits: 0,
            target: "≥ 1.2× dufs",
            met: at_least(up("up_ours"), up("up_dufs"), 1.2),
        },
        Row {
            measure: "3a. our peak RSS during the upload, MiB",
            ours: rss_up,
            nginx: None,
            dufs: None,
            digits: 1,
            target: "< 64 MiB",
            met: rss_up.map(|v| v < 64.0),
        },
        Row {
            measure: "3b. our peak RSS, 8 parallel downloads, MiB",
            ours: rss_pdl,
            nginx: None,
            dufs: None,
            digits: 1,
            target: "< 64 MiB",
            met: rss_pdl.map(|v| v < 64.0),
        },
        Row {
            measure: "3c. 8 parallel downloads, total MB/s",
            ours: pdl("pdl_ours"),
            nginx: pdl("pdl_nginx"),
            dufs: pdl("pdl_dufs"),
            digits: 0,
            target: "(context)",
            met: None,
        },
        Row {
            measure: "4. small writes/s, 16 clients",
            ours: sw("sw_ours"),
            nginx: sw("sw_nginx"),
            dufs: sw("sw_dufs"),
            digits: 0,
            target: "≥ 1.5× dufs",
            met: at_least(sw("sw_ours"), sw("sw_dufs"), 1.5),
        },
        Row {
            measure: "4b. small write p99 latency, ms",
            ours: get(r, "sw_ours", "p99_ms"),
            nginx: get(r, "sw_nginx", "p99_ms"),
            dufs: get(r, "sw_dufs", "p99_ms"),
            digits: 2,
            target: "(context)",
            met: None,
        },
        Row {
            measure: "5a. list page of 100, p50 ms",
            ours: get(r, "list_ours", "p50_ms"),
            nginx: None,
            dufs: None,
            digits: 2,
            target: "(context)",
            met: None,
        },
        Row {
            measure: "5b. list page of 100, p99 ms",
            ours: list_p99,
            nginx: None,
            dufs: None,
            digits: 2,
            target: "< 5 ms (with history)",
            met: list_p99.map(|v| v < 5.0),
        },
        Row {
            measure: "5c. folder listing (delimiter=/), page of 100 folders, p50 ms",
            ours: get(r, "list_folders_ours", "p50_ms"),
            nginx: None,
            dufs: None,
            digits: 2,
            target: "(context)",
            met: None,
        },
        Row {
            measure: "5d. folder listing (delimiter=/), page of 100 folders, p99 ms",
            ours: folders_p99,
            nginx: None,
            dufs: None,
            digits: 2,
            target: "< 10 ms",
            met: folders_p99.map(|v| v < 10.0),
        },
        Row {
            measure: "5e. list newest first (sort=created_at&order=desc), page of 100, p99 ms",
            ours: sorted_p99("list_newest_ours"),
            nginx: None,
            dufs: None,
            digits: 2,
            target: "< 5 ms",
            met: sorted_p99("list_newest_ours").map(|v| v < 5.0),
        },
        Row {
            measure: "5f. list largest first (sort=size&order=desc), page of 100, p99 ms",
            ours: sorted_p99("list_largest_ours"),
            nginx: None,
            dufs: None,
            digits: 2,
            target: "< 5 ms",
            met: sorted_p99("list_largest_ours").map(|v| v < 5.0),
        },
        Row {
            measure: "5g. name search (q=f00012, 1 file in 1000), page of 100, p99 ms",
            ours: sorted_p99("list_search_ours"),
            nginx: None,
            dufs: None,
            digits: 2,
            target: "< 5 ms",
            met: sorted_p99("list_search_ours").map(|v| v < 5.0),
        },
        Row {
            measure: "6a. 1 MiB range, p50 ms, 16 conns",
            ours: get(r, "range_ours", "p50_ms"),
            nginx: get(r, "range_nginx", "p50_ms"),
            dufs: get(r, "range_dufs", "p50_ms"),
            digits: 2,
            target: "(context)",
            met: None,
        },
        Row {
            measure: "6b. 1 MiB range, p99 ms, 16 conns",
            ours: get(r, "range_ours", "p99_ms"),
            nginx: get(r, "range_nginx", "p99_ms"),
            dufs: get(r, "range_dufs", "p99_ms"),
            digits: 2,
            target: "(context)",
            met: None,
        },
        Row {
            measure: "6c. 1 MiB range, req/s, 16 conns",
            ours: get(r, "range_ours", "req_per_s"),
            nginx: get(r, "range_nginx", "req_per_s"),
            dufs: get(r, "range_dufs", "req_per_s"),
            digits: 0,
            target: "≥ 0.8× nginx (SPEC aim)",
            met: at_least(get(r, "range_ours", "req_per_s"), get(r, "range_nginx", "req_per_s"), 0.8),
        },
        Row {
            measure: "7a. small writes/s, 16 clients, 200 event streams of other users open",
            ours: sw("sw_ours_feed_idle"),
            nginx: None,
            dufs: None,
            digits: 0,
            target: "≥ 0.9× row 4 (ours)",
            met: at_least(sw("sw_ours_feed_idle"), sw("sw_ours"), 0.9),
        },
        Row {
            measure: "7a'. small writes/s, 16 clients, 200 streams of the writers' user (each write sent 200×)",
            ours: sw("sw_ours_feed"),
            nginx: None,
            dufs: None,
            digits: 0,
            target: "(context: fan-out)",
            met: None,
        },
        Row {
            measure: "7b. our peak RSS, 200 event streams + 16 writers, MiB",
            ours: rss_feed,
            nginx: None,
            dufs: None,
            digits: 1,
            target: "< 64 MiB",
            met: rss_feed.map(|v| v < 64.0),
        },
        Row {
            measure: "7c. seconds until every stream had every event",
            ours: get(r, "sw_ours_feed", "drain_seconds"),
            nginx: None,
            dufs: None,
            digits: 2,
            target: "all delivered",
            met: feed_delivered,
        },
    ];

    let mut md = String::new();
    writeln!(md, "# Benchmarks\n")?;
    writeln!(md, "<!-- Generated by bench/run.sh; edit bench/NOTES.md or bench/client/src/report.rs instead. -->\n")?;
    writeln!(md, "Our server (SQLite + local disk, every 201 durable: blob fsync, rename, directory fsync, SQLite")?;
    writeln!(
        md,
        "commit followed by a group fsync of its WAL) side by side with nginx (sendfile; WebDAV `PUT`) and dufs, all on"
    )?;
    writeln!(md, "loopback in one run on the same machine and the same bytes. Neither peer fsyncs an upload.\n")?;
    writeln!(md, "## Run\n")?;
    for item in meta {
        let (k, v) = item.split_once('=').unwrap_or((item.as_str(), ""));
        writeln!(md, "- **{k}**: {v}")?;
    }
    writeln!(md, "\n## Results\n")?;
    writeln!(md, "Ratios are ours ÷ peer (for latencies, lower is better).\n")?;
    writeln!(md, "| measure | ours | nginx | dufs | ours/nginx | ours/dufs | target | met |")?;
    writeln!(md, "|---|---:|---:|---:|---:|---:|---|---|")?;
    for row in &rows {
        writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            row.measure,
            fmt(row.ours, row.digits),
            fmt(row.nginx, row.digits),
            fmt(row.dufs, row.digits),
            ratio(row.ours, row.nginx),
            ratio(row.ours, row.dufs),
            row.target,
            verdict(row.met)
        )?;
    }
    if let Some(seed) = results.get("seed") {
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
        writeln!(md, "{}", serde_json::to_string(&results[key])?)?;
    }
    writeln!(md, "```\n\n</details>\n")?;
    if let Some(notes) = notes {
        md.push_str(&std::fs::read_to_string(notes).with_context(|| format!("reading {}", notes.display()))?);
    }
    std::fs::write(out, md)?;
    Ok(())
}
