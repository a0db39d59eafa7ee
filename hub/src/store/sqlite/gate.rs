//! How many reader queries run at once: one fewer than the machine has cores (at least
//! one), so heavy scans queue among themselves instead of starving the writer of CPU.

use std::{
    sync::{Condvar, Mutex, PoisonError},
    time::{Duration, Instant},
};

/// A counting gate with a bounded wait.
pub struct Gate {
    running: Mutex<usize>,
    freed: Condvar,
    max: usize,
}

/// A place in the gate, given back on drop.
pub struct Pass<'a>(&'a Gate);

impl Gate {
    /// A gate sized for this machine.
    pub fn for_this_machine() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Self::new(cores.saturating_sub(1).max(1))
    }

    pub fn new(max: usize) -> Self {
        Self {
            running: Mutex::new(0),
            freed: Condvar::new(),
            max,
        }
    }

    /// Waits up to `wait` for a place; `None` when the gate stayed full that long.
    pub fn enter(&self, wait: Duration) -> Option<Pass<'_>> {
        let deadline = Instant::now().checked_add(wait);
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        while *running >= self.max {
            let left = deadline?.checked_duration_since(Instant::now())?;
            running = self
                .freed
                .wait_timeout(running, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        *running += 1;
        Some(Pass(self))
    }
}

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        *self
            .0
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner) -= 1;
        self.0.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_gate_waits_then_gives_up_and_frees_on_drop() {
        let gate = Gate::new(1);
        let first = gate.enter(Duration::ZERO).unwrap();
        assert!(gate.enter(Duration::from_millis(20)).is_none());
        drop(first);
        assert!(gate.enter(Duration::ZERO).is_some());
    }
}
