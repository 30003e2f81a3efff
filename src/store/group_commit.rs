//! Group commit: many concurrent writers share one `fsync`.
//!
//! A writer takes a ticket after its write is applied and waits until a flush that
//! *started after* its ticket completes. One flusher thread runs flushes back to back, so
//! under load each flush covers every write that arrived while the previous one ran; when
//! the previous flush covered several writers, it first pauses [`GATHER`] so that more
//! join (a lone writer is never delayed).

use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::watch;

use super::StoreError;

/// How long the flusher lets writers gather before a flush, when the previous flush
/// covered more than one writer. Why: on a fast disk a flush takes ~100 µs, so under load
/// each covered only 2–3 writers, and the per-flush cost (a VM exit per I/O request, the
/// flusher's context switches) came to ~20 µs per request. A lone writer (the previous
/// flush covered only it) is never delayed.
const GATHER: std::time::Duration = std::time::Duration::from_micros(200);

type FlushFn = Box<dyn Fn() -> Result<(), String> + Send + Sync>;

struct State {
    requested: u64,
    failed: Option<String>,
    shutdown: bool,
}

/// Shared flusher handle.
#[derive(Clone)]
pub struct GroupCommit {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    wake: std::sync::Condvar,
    done: watch::Sender<u64>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl GroupCommit {
    /// Starts the flusher thread around `flush` (for sled: `Db::flush`).
    pub fn start(flush: FlushFn) -> Result<Self, StoreError> {
        Self::start_named("sigil-group-commit", flush)
    }

    /// [`GroupCommit::start`] with a thread name of its own.
    pub fn start_named(name: &str, flush: FlushFn) -> Result<Self, StoreError> {
        let (done, _) = watch::channel(0u64);
        let inner = Arc::new(Inner {
            state: Mutex::new(State { requested: 0, failed: None, shutdown: false }),
            wake: std::sync::Condvar::new(),
            done,
            thread: Mutex::new(None),
        });
        let worker = inner.clone();
        let handle = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || worker.run(flush))
            .map_err(|e| StoreError::Backend(format!("cannot start flusher: {e}")))?;
        if let Ok(mut t) = inner.thread.lock() {
            *t = Some(handle);
        }
        Ok(Self { inner })
    }

    /// Flushes what is pending, stops the flusher thread and waits for it, so that whatever
    /// the flush function holds (the database handle and its file lock) is released.
    pub fn shutdown(&self) {
        if let Ok(mut st) = self.inner.state.lock() {
            st.shutdown = true;
        }
        self.inner.wake.notify_all();
        let handle = self.inner.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(h) = handle {
            let _ = h.join();
        }
    }

    /// True once a flush has failed (every later write is refused).
    pub fn is_failed(&self) -> bool {
        self.inner.state.lock().map_or(true, |st| st.failed.is_some())
    }

    /// Waits until everything written before this call is durable.
    pub async fn durable(&self) -> Result<(), StoreError> {
        let ticket = {
            let mut st = self.inner.state.lock().map_err(|_| StoreError::Backend("flusher poisoned".into()))?;
            if let Some(e) = &st.failed {
                return Err(StoreError::Backend(e.clone()));
            }
            st.requested += 1;
            st.requested
        };
        self.inner.wake.notify_one();
        let mut rx = self.inner.done.subscribe();
        loop {
            if *rx.borrow_and_update() >= ticket {
                break;
            }
            if rx.changed().await.is_err() {
                return Err(StoreError::Backend("flusher stopped".into()));
            }
        }
        let st = self.inner.state.lock().map_err(|_| StoreError::Backend("flusher poisoned".into()))?;
        match &st.failed {
            Some(e) => Err(StoreError::Backend(e.clone())),
            None => Ok(()),
        }
    }
}

impl Inner {
    fn run(&self, flush: FlushFn) {
        let mut completed = 0u64;
        let mut last_batch = 0u64;
        loop {
            let target = {
                let Ok(mut st) = self.state.lock() else {
                    return;
                };
                while st.requested <= completed {
                    if st.shutdown {
                        return;
                    }
                    st = match self.wake.wait(st) {
                        Ok(s) => s,
                        Err(_) => return,
                    };
                }
                if last_batch > 1 {
                    drop(st);
                    std::thread::sleep(GATHER);
                    // Read after the pause: every writer counted here has already written.
                    st = match self.state.lock() {
                        Ok(s) => s,
                        Err(_) => return,
                    };
                }
                st.requested
            };
            let started = Instant::now();
            let result = flush();
            metrics_hook(started.elapsed(), target - completed);
            if let Err(e) = result {
                // Fail closed: once durability is in doubt, every later write reports it.
                if let Ok(mut st) = self.state.lock() {
                    st.failed = Some(e);
                }
            }
            last_batch = target - completed;
            completed = target;
            self.done.send_replace(completed);
        }
    }
}

fn metrics_hook(elapsed: std::time::Duration, batch: u64) {
    metrics::histogram!("sigil_store_flush_seconds").record(elapsed.as_secs_f64());
    metrics::histogram!("sigil_store_flush_batch_size").record(batch as f64);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_writers_share_flushes() {
        let flushes = Arc::new(AtomicU64::new(0));
        let f = flushes.clone();
        let gc = GroupCommit::start(Box::new(move || {
            std::thread::sleep(std::time::Duration::from_millis(5));
            f.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }))
        .unwrap();
        let mut handles = Vec::new();
        for _ in 0..64 {
            let gc = gc.clone();
            handles.push(tokio::spawn(async move { gc.durable().await }));
        }
        for h in handles {
            h.await.unwrap().unwrap();
        }
        let n = flushes.load(Ordering::SeqCst);
        assert!((1..64).contains(&n), "64 writers took {n} flushes");
    }

    #[tokio::test]
    async fn a_failed_flush_fails_the_writer() {
        let gc = GroupCommit::start(Box::new(|| Err("disk on fire".into()))).unwrap();
        assert!(gc.durable().await.is_err());
    }
}
