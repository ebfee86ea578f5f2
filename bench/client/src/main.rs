//! `workspace-bench`: the load generator behind `bench/run.sh`. Each subcommand runs one
//! bounded measurement against one server on loopback and appends one JSON line to the results
//! file; `report` turns the results into `docs/BENCHMARKS.md`.

// A benchmark binary: failing loudly on a broken invariant is what we want.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod feed;
mod http;
mod media;
mod report;
mod rss;
mod seed;

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::{Parser, Subcommand, ValueEnum};
use hyper::Method;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::http::{Conn, Target, empty, expect_status, multipart_prefix, multipart_suffix, patterned};

#[derive(Debug, Parser)]
#[command(name = "workspace-bench", about = "Side-by-side benchmarks: our server, nginx, dufs")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Form {
    /// Our upload route: multipart/form-data POST.
    Multipart,
    /// A plain PUT of the bytes (nginx WebDAV, dufs).
    Put,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// GET the URL as is.
    Plain,
    /// GET a random `--range-size` slice of a `--file-size` file.
    Range,
    /// GET the URL with `&cursor=` at a random seeded position (see `seed`).
    List,
}

#[derive(Debug, clap::Args)]
struct Common {
    /// Append the result as a JSON line under this key.
    #[arg(long)]
    key: String,
    /// The results file (JSON lines).
    #[arg(long)]
    results: PathBuf,
    /// Extra request header, `Name: value` (repeatable).
    #[arg(long = "header")]
    headers: Vec<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Downloads a URL `--runs` times, one after another; MB/s of each run and the median.
    Download {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        url: String,
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Bytes each response must carry.
        #[arg(long)]
        expect: u64,
    },
    /// Uploads `--size` bytes in one streamed request; MB/s and (with `--pid`) peak RSS.
    Upload {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        url: String,
        #[arg(long)]
        size: u64,
        #[arg(long, value_enum)]
        form: Form,
        /// Process whose peak RSS to record.
        #[arg(long)]
        pid: Option<u32>,
        /// Write the file id of the answer (our server) to this file.
        #[arg(long)]
        id_out: Option<PathBuf>,
    },
    /// `--parallel` concurrent downloads of `--slice` bytes each (ranges of the file).
    ParallelDownload {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        url: String,
        #[arg(long, default_value_t = 8)]
        parallel: u64,
        #[arg(long)]
        slice: u64,
        #[arg(long)]
        file_size: u64,
        #[arg(long)]
        pid: Option<u32>,
    },
    /// Many small writes from `--concurrency` clients; `{n}` in the URL becomes a unique name.
    SmallWrites {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        url: String,
        #[arg(long, value_enum)]
        form: Form,
        #[arg(long, default_value_t = 16)]
        concurrency: u64,
        #[arg(long, default_value_t = 20.0)]
        seconds: f64,
        #[arg(long, default_value_t = 4096)]
        size: u64,
        /// Upper bound on the writes of the whole run.
        #[arg(long, default_value_t = 1_000_000)]
        max: u64,
        /// Change-feed streams of the same user held open during the run (needs `--events-url`);
        /// after the writes, waits until every stream received every write's event.
        #[arg(long, default_value_t = 0)]
        subscribers: u64,
        /// The events route (`…/api/workspace/events`).
        #[arg(long)]
        events_url: Option<String>,
        /// Headers of the streams instead of `--header` (e.g. another user's token: streams that
        /// receive none of the writes), `Name: value` (repeatable).
        #[arg(long = "events-header")]
        events_headers: Vec<String>,
        /// Process whose peak RSS to record.
        #[arg(long)]
        pid: Option<u32>,
    },
    /// Latency and throughput of GETs from `--concurrency` keep-alive connections.
    Load {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        url: String,
        #[arg(long, value_enum, default_value = "plain")]
        mode: Mode,
        #[arg(long, default_value_t = 1)]
        concurrency: u64,
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        #[arg(long, default_value_t = 1_000_000)]
        max: u64,
        #[arg(long, default_value_t = 1 << 20)]
        range_size: u64,
        #[arg(long, default_value_t = 0)]
        file_size: u64,
        /// Seeded file count (`--mode list`).
        #[arg(long, default_value_t = 0)]
        seeded: u64,
        /// A file of request targets (`/path?query`, one a line) on the URL's server: each
        /// request GETs one of them at random instead of the URL's own path (`--mode plain`).
        #[arg(long)]
        paths: Option<PathBuf>,
    },
    /// Uploads `--count` files of `--size` bytes to our server (`{n}` in the URL becomes the
    /// number) and writes the same bytes to `{--www}/{n}.bin` for the peers; writes our download
    /// targets to `--ours-out` and the peers' to `--peers-out` (one a line).
    SmallFiles {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        url: String,
        #[arg(long, default_value_t = 64)]
        count: u64,
        #[arg(long, default_value_t = 4096)]
        size: u64,
        /// Directory the peers serve these files from.
        #[arg(long)]
        www: PathBuf,
        /// The peers' URL path of `--www`.
        #[arg(long, default_value = "/small")]
        www_path: String,
        #[arg(long)]
        ours_out: PathBuf,
        #[arg(long)]
        peers_out: PathBuf,
    },
    /// The disk's rate for a new file written durably: `--size` bytes in 1 MiB writes, then
    /// fdatasync (what `dd conv=fdatasync` measures), MB/s. The file is removed afterwards.
    Disk {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        path: PathBuf,
        #[arg(long)]
        size: u64,
    },
    /// Serves a stand-in images API on 127.0.0.1:`--port` whose image is `--size` bytes at a URL
    /// on the same port (for `media`); runs until killed.
    ServeMedia {
        #[arg(long)]
        port: u16,
        #[arg(long)]
        size: u64,
    },
    /// Makes our server store the stand-in API's image (`run_block` of the image block over
    /// `/mcp`, which calls `store_media_file` on its URL); time and (with `--pid`) peak RSS.
    Media {
        #[command(flatten)]
        common: Common,
        /// Our server's base URL (`http://127.0.0.1:PORT`).
        #[arg(long)]
        base: String,
        #[arg(long, default_value = "bench-media")]
        session: String,
        /// Bytes the stored file must have.
        #[arg(long)]
        expect: u64,
        #[arg(long)]
        pid: Option<u32>,
    },
    /// Seeds a workspace with `--count` files for the listing benchmark.
    Seed {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        database_url: String,
        #[arg(long)]
        user: String,
        #[arg(long)]
        count: u64,
        #[arg(long, default_value_t = 2000)]
        via_manager: u64,
    },
    /// Writes the Markdown report from the results file.
    Report {
        #[arg(long)]
        results: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// Text appended verbatim (the analysis).
        #[arg(long)]
        notes: Option<PathBuf>,
        /// `key=value` facts about the run (machine, load, date, mode).
        #[arg(long = "meta")]
        meta: Vec<String>,
    },
}

fn headers(raw: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    raw.iter()
        .map(|h| {
            let (name, value) = h.split_once(':').with_context(|| format!("header `{h}` needs `Name: value`"))?;
            Ok((name.trim().to_owned(), value.trim().to_owned()))
        })
        .collect()
}

fn record(common: &Common, mut value: Value) -> anyhow::Result<()> {
    value["key"] = json!(common.key);
    // The 1-minute load average when the measure ended: figures are read next to it.
    if let Some(load) =
        std::fs::read_to_string("/proc/loadavg").ok().and_then(|l| l.split(' ').next()?.parse::<f64>().ok())
    {
        value["loadavg"] = json!(load);
    }
    let line = serde_json::to_string(&value)?;
    println!("{line}");
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&common.results)?;
    writeln!(file, "{line}")?;
    Ok(())
}

/// 1 MiB of pseudo-random bytes (incompressible, same for every request).
fn pattern() -> Bytes {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    let mut buf = vec![0u8; 1 << 20];
    rng.fill(&mut buf[..]);
    Bytes::from(buf)
}

fn mbps(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 / 1e6 / elapsed.as_secs_f64().max(1e-9)
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return 0.0;
    }
    let mid = v.len() / 2;
    if v.len() % 2 == 1 { v[mid] } else { (v[mid - 1] + v[mid]) / 2.0 }
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Download { common, url, runs, expect } => {
            let target = Target::parse(&url)?;
            let hdrs = headers(&common.headers)?;
            let mut conn = Conn::open(&target.addr).await?;
            let mut rates = Vec::new();
            for _ in 0..runs {
                let started = Instant::now();
                let answer = conn.send(Method::GET, &target.path, &hdrs, empty(), None, false).await?;
                let elapsed = started.elapsed();
                expect_status(&answer, &[200], "download")?;
                if answer.bytes != expect {
                    bail!("download: got {} bytes, expected {expect}", answer.bytes);
                }
                rates.push(mbps(answer.bytes, elapsed));
            }
            record(&common, json!({"median_mbps": median(&rates), "runs_mbps": rates, "bytes": expect}))
        }
        Command::Upload { common, url, size, form, pid, id_out } => {
            let target = Target::parse(&url)?;
            let mut hdrs = headers(&common.headers)?;
            let (prefix, suffix) = match form {
                Form::Multipart => {
                    hdrs.push(("content-type".into(), format!("multipart/form-data; boundary={}", http::BOUNDARY)));
                    (multipart_prefix("big.bin"), multipart_suffix())
                }
                Form::Put => (Bytes::new(), Bytes::new()),
            };
            let (body, len) = patterned(&pattern(), size, prefix, suffix);
            let mut conn = Conn::open(&target.addr).await?;
            let watch = rss::maybe(pid);
            let started = Instant::now();
            let answer = conn.send(method_of(form), &target.path, &hdrs, body, Some(len), true).await?;
            let elapsed = started.elapsed();
            let peak = rss::finish(watch).await;
            expect_status(&answer, &[200, 201, 204], "upload")?;
            if let Some(out) = id_out {
                let info: Value = serde_json::from_slice(&answer.head).context("upload answer is not JSON")?;
                let id = info["id"].as_str().context("upload answer has no id")?;
                std::fs::write(out, id)?;
            }
            record(
                &common,
                json!({"mbps": mbps(size, elapsed), "seconds": elapsed.as_secs_f64(), "bytes": size,
                "peak_rss_kib": peak}),
            )
        }
        Command::ParallelDownload { common, url, parallel, slice, file_size, pid } => {
            let target = Target::parse(&url)?;
            let hdrs = headers(&common.headers)?;
            let watch = rss::maybe(pid);
            let started = Instant::now();
            let mut tasks = Vec::new();
            for i in 0..parallel {
                let (target, mut hdrs) = (target.clone(), hdrs.clone());
                let start = (i * slice) % file_size.saturating_sub(slice - 1).max(1);
                hdrs.push(("range".into(), format!("bytes={}-{}", start, start + slice - 1)));
                tasks.push(tokio::spawn(async move {
                    let mut conn = Conn::open(&target.addr).await?;
                    let answer = conn.send(Method::GET, &target.path, &hdrs, empty(), None, false).await?;
                    expect_status(&answer, &[206], "ranged download")?;
                    anyhow::ensure!(answer.bytes == slice, "got {} bytes, expected {slice}", answer.bytes);
                    Ok::<_, anyhow::Error>(answer.bytes)
                }));
            }
            let mut total = 0;
            for task in tasks {
                total += task.await??;
            }
            let elapsed = started.elapsed();
            let peak = rss::finish(watch).await;
            record(
                &common,
                json!({"total_mbps": mbps(total, elapsed), "bytes": total, "parallel": parallel,
                "peak_rss_kib": peak}),
            )
        }
        Command::SmallWrites {
            common,
            url,
            form,
            concurrency,
            seconds,
            size,
            max,
            subscribers,
            events_url,
            events_headers,
            pid,
        } => {
            let hdrs = headers(&common.headers)?;
            let feed = match (subscribers, &events_url) {
                (0, _) => None,
                (n, Some(events_url)) => {
                    let own = events_headers.is_empty();
                    let stream_headers = if own { hdrs.clone() } else { headers(&events_headers)? };
                    Some((feed::Subscribers::open(events_url, &stream_headers, n).await?, own))
                }
                (_, None) => bail!("--subscribers needs --events-url"),
            };
            let watch = rss::maybe(pid);
            let payload = pattern().slice(..size as usize);
            let deadline = Instant::now() + Duration::from_secs_f64(seconds);
            let issued = Arc::new(AtomicU64::new(0));
            let started = Instant::now();
            let mut tasks = Vec::new();
            for worker in 0..concurrency {
                let (url, mut hdrs, payload, issued) = (url.clone(), hdrs.clone(), payload.clone(), issued.clone());
                if form == Form::Multipart {
                    hdrs.push(("content-type".into(), format!("multipart/form-data; boundary={}", http::BOUNDARY)));
                }
                tasks.push(tokio::spawn(async move {
                    let first = Target::parse(&url)?;
                    let mut conn = Conn::open(&first.addr).await?;
                    let (mut done, mut latencies) = (0u64, Vec::new());
                    let mut i = 0u64;
                    while Instant::now() < deadline && issued.fetch_add(1, Ordering::Relaxed) < max {
                        let name = format!("w{worker}-{i}");
                        i += 1;
                        let target = Target::parse(&url.replace("{n}", &name))?;
                        let (prefix, suffix) = match form {
                            Form::Multipart => (multipart_prefix(&format!("{name}.bin")), multipart_suffix()),
                            Form::Put => (Bytes::new(), Bytes::new()),
                        };
                        let (body, len) = patterned(&payload, size, prefix, suffix);
                        let sent = Instant::now();
                        let answer = conn.send(method_of(form), &target.path, &hdrs, body, Some(len), true).await?;
                        latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
                        expect_status(&answer, &[200, 201, 204], "small write")?;
                        done += 1;
                    }
                    Ok::<_, anyhow::Error>((done, latencies))
                }));
            }
            let (mut done, mut latencies) = (0, Vec::new());
            for task in tasks {
                let (d, l) = task.await??;
                done += d;
                latencies.extend(l);
            }
            let elapsed = started.elapsed();
            latencies.sort_by(f64::total_cmp);
            let mut result = json!({"writes_per_s": done as f64 / elapsed.as_secs_f64(), "writes": done,
                "seconds": elapsed.as_secs_f64(), "concurrency": concurrency, "size": size,
                "p50_ms": percentile(&latencies, 0.5), "p99_ms": percentile(&latencies, 0.99)});
            if let Some((feed, own)) = &feed {
                result["subscribers"] = json!(subscribers);
                result["streams_of_the_writers_user"] = json!(own);
                if *own {
                    // Every stream gets every write's event: wait for the last of them.
                    let (drain, fewest) = feed.drain(done, Duration::from_secs(60)).await;
                    result["all_delivered"] = json!(fewest >= done);
                    result["drain_seconds"] = json!(drain.as_secs_f64());
                }
                result["events_delivered"] = json!(feed.total());
            }
            result["peak_rss_kib"] = json!(rss::finish(watch).await);
            drop(feed);
            record(&common, result)
        }
        Command::Load { common, url, mode, concurrency, seconds, max, range_size, file_size, seeded, paths } => {
            let hdrs = headers(&common.headers)?;
            let paths: Arc<Vec<String>> = Arc::new(match &paths {
                Some(file) => {
                    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
                    let list: Vec<String> = text.lines().filter(|l| !l.is_empty()).map(str::to_owned).collect();
                    if list.is_empty() {
                        bail!("{} names no target", file.display());
                    }
                    list
                }
                None => Vec::new(),
            });
            if mode == Mode::Range && file_size < range_size {
                bail!("--mode range needs --file-size ≥ --range-size");
            }
            if mode == Mode::List && seeded == 0 {
                bail!("--mode list needs --seeded");
            }
            let deadline = Instant::now() + Duration::from_secs_f64(seconds);
            let issued = Arc::new(AtomicU64::new(0));
            let started = Instant::now();
            let mut tasks = Vec::new();
            for worker in 0..concurrency {
                let (url, hdrs, issued, paths) = (url.clone(), hdrs.clone(), issued.clone(), paths.clone());
                tasks.push(tokio::spawn(async move {
                    let target = Target::parse(&url)?;
                    let mut conn = Conn::open(&target.addr).await?;
                    let mut rng = rand::rngs::StdRng::seed_from_u64(worker);
                    let (mut latencies, mut bytes) = (Vec::new(), 0u64);
                    while Instant::now() < deadline && issued.fetch_add(1, Ordering::Relaxed) < max {
                        let mut hdrs = hdrs.clone();
                        let mut path = target.path.clone();
                        let mut expect_status_code = 200;
                        match mode {
                            Mode::Plain if !paths.is_empty() => path = paths[rng.random_range(0..paths.len())].clone(),
                            Mode::Plain => {}
                            Mode::Range => {
                                let slots = file_size / range_size;
                                let start = rng.random_range(0..slots) * range_size;
                                hdrs.push(("range".into(), format!("bytes={}-{}", start, start + range_size - 1)));
                                expect_status_code = 206;
                            }
                            Mode::List => {
                                let at = rng.random_range(0..seeded);
                                let cursor = hex_encode(seed::path_of(at).as_bytes());
                                path = format!("{path}&cursor={cursor}");
                            }
                        }
                        let sent = Instant::now();
                        let answer = conn.send(Method::GET, &path, &hdrs, empty(), None, false).await?;
                        latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
                        expect_status(&answer, &[expect_status_code], "load")?;
                        if mode == Mode::Range && answer.bytes != range_size {
                            bail!("range: got {} bytes, expected {range_size}", answer.bytes);
                        }
                        bytes += answer.bytes;
                    }
                    Ok::<_, anyhow::Error>((latencies, bytes))
                }));
            }
            let (mut latencies, mut bytes) = (Vec::new(), 0);
            for task in tasks {
                let (l, b) = task.await??;
                latencies.extend(l);
                bytes += b;
            }
            let elapsed = started.elapsed();
            latencies.sort_by(f64::total_cmp);
            let mean = latencies.iter().sum::<f64>() / latencies.len().max(1) as f64;
            record(
                &common,
                json!({"requests": latencies.len(), "req_per_s": latencies.len() as f64 / elapsed.as_secs_f64(),
                "p50_ms": percentile(&latencies, 0.5), "p99_ms": percentile(&latencies, 0.99), "mean_ms": mean,
                "mbps": mbps(bytes, elapsed), "concurrency": concurrency}),
            )
        }
        Command::Seed { common, database_url, user, count, via_manager } => {
            let result = seed::seed(&database_url, &user, count, via_manager).await?;
            record(&common, result)
        }
        Command::SmallFiles { common, url, count, size, www, www_path, ours_out, peers_out } => {
            let hdrs = headers(&common.headers)?;
            let mut hdrs = hdrs;
            hdrs.push(("content-type".into(), format!("multipart/form-data; boundary={}", http::BOUNDARY)));
            std::fs::create_dir_all(&www)?;
            let first = Target::parse(&url)?;
            let mut conn = Conn::open(&first.addr).await?;
            let (mut ours, mut peers) = (String::new(), String::new());
            let pattern = pattern();
            for n in 0..count {
                // Each file its own bytes: a slice of the pattern at its own offset.
                let at = (n * 4099) as usize % (pattern.len() - size as usize);
                let payload = pattern.slice(at..at + size as usize);
                std::fs::write(www.join(format!("{n}.bin")), &payload)?;
                let target = Target::parse(&url.replace("{n}", &n.to_string()))?;
                let (body, len) = patterned(&payload, size, multipart_prefix(&format!("{n}.bin")), multipart_suffix());
                let answer = conn.send(Method::POST, &target.path, &hdrs, body, Some(len), true).await?;
                expect_status(&answer, &[201], "small file upload")?;
                let info: Value = serde_json::from_slice(&answer.head).context("upload answer is not JSON")?;
                let id = info["id"].as_str().context("upload answer has no id")?;
                let prefix = first.path.split("/files").next().unwrap_or_default();
                ours.push_str(&format!("{prefix}/files/{id}/download\n"));
                peers.push_str(&format!("{}/{n}.bin\n", www_path.trim_end_matches('/')));
            }
            std::fs::write(ours_out, ours)?;
            std::fs::write(peers_out, peers)?;
            record(&common, json!({"files": count, "size": size}))
        }
        Command::Disk { common, path, size } => {
            let chunk = pattern();
            let started = Instant::now();
            let written = tokio::task::spawn_blocking(move || -> anyhow::Result<u64> {
                let mut file =
                    std::fs::File::create_new(&path).with_context(|| format!("creating {}", path.display()))?;
                let mut written = 0u64;
                while written < size {
                    let n = (size - written).min(chunk.len() as u64) as usize;
                    file.write_all(&chunk[..n])?;
                    written += n as u64;
                }
                file.sync_data()?;
                drop(file);
                std::fs::remove_file(&path)?;
                Ok(written)
            })
            .await??;
            let elapsed = started.elapsed();
            record(&common, json!({"mbps": mbps(written, elapsed), "bytes": written, "seconds": elapsed.as_secs_f64()}))
        }
        Command::ServeMedia { port, size } => media::serve(port, size, pattern()).await,
        Command::Media { common, base, session, expect, pid } => {
            let hdrs = headers(&common.headers)?;
            let watch = rss::maybe(pid);
            let mut result = media::store(&base, &hdrs, &session, expect).await?;
            result["peak_rss_kib"] = json!(rss::finish(watch).await);
            record(&common, result)
        }
        Command::Report { results, out, notes, meta } => report::write(&results, &out, notes.as_deref(), &meta),
    }
}

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The method of an upload form.
fn method_of(form: Form) -> Method {
    match form {
        Form::Multipart => Method::POST,
        Form::Put => Method::PUT,
    }
}
