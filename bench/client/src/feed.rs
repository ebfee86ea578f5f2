//! Change-feed subscribers for the small-writes run: `n` Server-Sent Events streams of the
//! writers' user, each on its own connection, counting the events it receives.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use http_body_util::BodyExt;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use crate::http::{Target, empty};

/// Open streams and what each has received.
pub struct Subscribers {
    counts: Vec<Arc<AtomicU64>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Subscribers {
    /// Opens `n` streams of `url` (the events route) with `headers`; returns once every stream
    /// answered 200.
    pub async fn open(url: &str, headers: &[(String, String)], n: u64) -> anyhow::Result<Self> {
        let target = Target::parse(url)?;
        let mut counts = Vec::new();
        let mut tasks = Vec::new();
        for _ in 0..n {
            let stream = TcpStream::connect(&target.addr).await.with_context(|| format!("connecting to {url}"))?;
            stream.set_nodelay(true)?;
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            let mut request = Request::builder()
                .method(Method::GET)
                .uri(&target.path)
                .header("host", &target.addr)
                .header("accept", "text/event-stream");
            for (name, value) in headers {
                request = request.header(name, value);
            }
            let response = sender.send_request(request.body(empty())?).await?;
            if response.status() != 200 {
                bail!("event stream: {}", response.status());
            }
            let count = Arc::new(AtomicU64::new(0));
            let seen = Arc::clone(&count);
            let mut body = response.into_body();
            tasks.push(tokio::spawn(async move {
                let mut pending = String::new();
                while let Some(Ok(frame)) = body.frame().await {
                    let Ok(data) = frame.into_data() else { continue };
                    pending.push_str(&String::from_utf8_lossy(&data));
                    // Count complete `id:` lines; keep a partial last line for the next chunk.
                    let complete = pending.rfind('\n').map_or(0, |i| i + 1);
                    let ids = pending[..complete].lines().filter(|line| line.starts_with("id:")).count();
                    seen.fetch_add(ids as u64, Ordering::Relaxed);
                    pending.drain(..complete);
                }
            }));
            counts.push(count);
        }
        Ok(Self { counts, tasks })
    }

    /// Waits until every stream received at least `expected` events, up to `limit`; returns the
    /// time it took and the fewest events any stream received.
    pub async fn drain(&self, expected: u64, limit: Duration) -> (Duration, u64) {
        let started = Instant::now();
        loop {
            let fewest = self.counts.iter().map(|c| c.load(Ordering::Relaxed)).min().unwrap_or(0);
            if fewest >= expected || started.elapsed() > limit {
                return (started.elapsed(), fewest);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Events received by all streams together.
    pub fn total(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }
}

impl Drop for Subscribers {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}
