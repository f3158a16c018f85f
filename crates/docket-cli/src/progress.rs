//! Progress lines on standard error for long commands: a ticker that says,
//! every [`TICK`], how many bytes a directory holds so far and for how long
//! it has been running (the bytes are measured, nothing is estimated).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often a progress line is printed.
pub const TICK: Duration = Duration::from_secs(2);

/// Prints a progress line every [`TICK`] until dropped.
#[derive(Debug)]
pub struct Ticker {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Ticker {
    /// Starts ticking: `what: N MB in DIR after S s`.
    pub fn start(what: &'static str, dir: PathBuf) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            let started = Instant::now();
            let mut next = TICK;
            while !stopping.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
                if started.elapsed() >= next {
                    let mb = bytes_in(&dir) as f64 / 1e6;
                    eprintln!("{what}: {mb:.1} MB in {} after {} s", dir.display(), next.as_secs());
                    next += TICK;
                }
            }
        });
        Self { stop, thread: Some(thread) }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Bytes of the files directly in `dir` (0 if it cannot be read yet).
fn bytes_in(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(Result::ok).filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum())
        .unwrap_or(0)
}
