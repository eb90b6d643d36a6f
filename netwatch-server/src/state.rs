//! State shared by the ingest, the HTTP API and the WebSocket feed.

use crate::config::Config;
use crate::host::HostSample;
use crate::ingest::IngestCounters;
use crate::store::Store;
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use tokio::sync::{broadcast, watch};

/// Cheap to clone: every field is shared.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The flow store. A `std` lock: every critical section is short and never awaits.
    pub store: Arc<RwLock<Store>>,
    /// Effective configuration.
    pub config: Arc<Config>,
    /// Connection-level ingest counters.
    pub ingest: Arc<IngestCounters>,
    /// Latest CPU/memory sample of the server process.
    pub host: Arc<Mutex<HostSample>>,
    /// Bumped after every stored batch: a WebSocket feed can wait on it for changes.
    pub updates: watch::Sender<u64>,
    /// Shutdown broadcast: subscribe and stop when it fires.
    pub shutdown: broadcast::Sender<()>,
    /// Wall clock at start, ns.
    pub started_wall_ns: u64,
    /// Prometheus metrics (issue 7): HTTP and WebSocket counters, read at `/metrics`.
    pub metrics: Arc<crate::metrics::Metrics>,
}

impl AppState {
    /// New state around an empty store.
    #[must_use]
    pub fn new(config: Config) -> AppState {
        let store = Store::new(config.store.clone());
        let (updates, _) = watch::channel(0);
        let (shutdown, _) = broadcast::channel(1);
        AppState {
            store: Arc::new(RwLock::new(store)),
            config: Arc::new(config),
            ingest: Arc::new(IngestCounters::default()),
            host: Arc::new(Mutex::new(HostSample::default())),
            updates,
            shutdown,
            started_wall_ns: crate::clock::wall_ns(),
            metrics: Arc::new(crate::metrics::Metrics::new()),
        }
    }

    /// Read access to the store (a poisoned lock is still usable: the store has no
    /// invariant that a panic in a reader could break).
    pub fn read(&self) -> RwLockReadGuard<'_, Store> {
        self.store.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Write access to the store.
    pub fn write(&self) -> RwLockWriteGuard<'_, Store> {
        self.store.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// The latest host sample.
    #[must_use]
    pub fn host_sample(&self) -> HostSample {
        *self.host.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
