//! One output stream of a child, read line by line on a thread into a shared list that
//! callers can wait on.

use std::{
    io::{BufRead, BufReader, Read},
    sync::{Arc, Condvar, Mutex, MutexGuard},
    thread::JoinHandle,
    time::Instant,
};

#[derive(Default)]
struct Captured {
    lines: Vec<String>,
    /// The stream reached its end (the child closed it, usually by exiting).
    ended: bool,
}

/// The lines of one stream, as far as they have been read.
pub struct Lines {
    shared: Arc<(Mutex<Captured>, Condvar)>,
    reader: Option<JoinHandle<()>>,
}

/// Why [`Lines::wait_for`] found nothing.
pub enum Missed {
    Ended,
    TimedOut,
}

impl Lines {
    pub fn read(stream: impl Read + Send + 'static) -> Lines {
        let shared = Arc::new((Mutex::new(Captured::default()), Condvar::new()));
        let writer = shared.clone();
        let reader = std::thread::spawn(move || {
            let (captured, changed) = &*writer;
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                lock(captured).lines.push(line);
                changed.notify_all();
            }
            lock(captured).ended = true;
            changed.notify_all();
        });
        Lines {
            shared,
            reader: Some(reader),
        }
    }

    /// The first line, in order, for which `f` returns `Some`, waiting until `deadline`.
    pub fn wait_for<T>(
        &self,
        deadline: Instant,
        mut f: impl FnMut(&str) -> Option<T>,
    ) -> Result<T, Missed> {
        let (captured, changed) = &*self.shared;
        let mut seen = 0;
        let mut guard = lock(captured);
        loop {
            for line in &guard.lines[seen..] {
                if let Some(found) = f(line) {
                    return Ok(found);
                }
            }
            seen = guard.lines.len();
            if guard.ended {
                return Err(Missed::Ended);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Missed::TimedOut);
            }
            guard = changed
                .wait_timeout(guard, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Every line read so far.
    pub fn snapshot(&self) -> Vec<String> {
        lock(&self.shared.0).lines.clone()
    }

    /// Every line, after the stream ended (the child has exited).
    pub fn finish(&mut self) -> Vec<String> {
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        std::mem::take(&mut lock(&self.shared.0).lines)
    }
}

fn lock(m: &Mutex<Captured>) -> MutexGuard<'_, Captured> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
