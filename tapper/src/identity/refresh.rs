//! The background task that keeps the metadata cache filled: it lists every runtime's
//! containers on an interval, and right away when an event met an unknown container, so
//! the event path never waits on a runtime.

use std::{
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use tokio::sync::Notify;

use super::{
    cache::{Listing, MetadataCache},
    sources::Sources,
};

/// Refreshes asked for by unknown containers come at most this often.
const MIN_GAP: Duration = Duration::from_millis(100);

/// Lists the runtimes until the process ends (the task holds nothing that needs a clean
/// shutdown).
pub async fn run(
    mut sources: Sources,
    cache: Arc<RwLock<MetadataCache>>,
    unknown_seen: Arc<Notify>,
    every: Duration,
) {
    let mut cri_health = Health::default();
    let mut podman_health = Health::default();
    loop {
        if let Some(cri) = sources.cri.as_mut() {
            let result = cri
                .list()
                .await
                .map_err(|status| status.message().to_owned());
            let what = format!("the CRI runtime at {}", cri.socket().display());
            store(&cache, cri_health.note(&what, result));
        }
        if let Some(podman) = sources.podman.as_ref() {
            let what = format!("podman's storage at {}", podman.root().display());
            store(&cache, podman_health.note(&what, podman.list()));
        }
        tokio::time::sleep(MIN_GAP).await;
        tokio::select! {
            _ = tokio::time::sleep(every.saturating_sub(MIN_GAP)) => {}
            _ = unknown_seen.notified() => {}
        }
    }
}

fn store(cache: &RwLock<MetadataCache>, listing: Option<Listing>) {
    if let Some(listing) = listing {
        let mut cache = cache.write().unwrap_or_else(|e| e.into_inner());
        cache.update(listing, Instant::now());
    }
}

/// Whether a source answered last time, so that only changes are logged.
#[derive(Default)]
struct Health {
    answered: Option<bool>,
}

impl Health {
    fn note(&mut self, what: &str, result: Result<Listing, String>) -> Option<Listing> {
        let ok = result.is_ok();
        if self.answered != Some(ok) {
            match &result {
                Ok(listing) => tracing::info!(
                    "{what} lists {} containers in {} pods",
                    listing.containers.len(),
                    listing.pods.len()
                ),
                Err(err) => tracing::warn!(
                    "{what} did not answer ({err}); names stay null until it does, retrying"
                ),
            }
        }
        self.answered = Some(ok);
        result.ok()
    }
}
