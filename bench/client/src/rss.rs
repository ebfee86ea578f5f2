//! Peak resident memory of a process during one phase: the kernel's high-water mark (reset at the
//! start of the phase through `/proc/<pid>/clear_refs`) and VmRSS sampled every 5 ms.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::task::JoinHandle;

fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Watches one process until [`RssWatch::finish`].
#[derive(Debug)]
pub struct RssWatch {
    pid: u32,
    stop: Arc<AtomicBool>,
    task: JoinHandle<u64>,
}

impl RssWatch {
    pub fn start(pid: u32) -> Self {
        // "5" resets VmHWM to the current RSS (Linux ≥ 4.0); without permission we only sample.
        let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let task = tokio::spawn(async move {
            let mut peak = 0;
            while !flag.load(Ordering::Relaxed) {
                peak = peak.max(status_kib(pid, "VmRSS:").unwrap_or(0));
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            peak
        });
        Self { pid, stop, task }
    }

    /// Peak RSS in KiB over the phase.
    pub async fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let sampled = self.task.await.unwrap_or(0);
        sampled.max(status_kib(self.pid, "VmHWM:").unwrap_or(0))
    }
}

/// Starts a watch when a pid was given.
pub fn maybe(pid: Option<u32>) -> Option<RssWatch> {
    pid.map(RssWatch::start)
}

pub async fn finish(watch: Option<RssWatch>) -> Option<u64> {
    match watch {
        Some(w) => Some(w.finish().await),
        None => None,
    }
}
