//! The client registry and fan-out: every message is serialised once and handed to each
//! subscribed client's bounded queue with `try_send`. A client whose queue is full (it reads
//! slower than the feed produces) is dropped and counted; nobody ever waits for it, so a slow
//! client can neither stall the others nor make the server's memory grow.

use super::protocol::{RawFilter, Topic, Topics};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::{mpsc, Notify};

/// Messages queued per client before it counts as too slow and is dropped.
pub const QUEUE_LIMIT: usize = 64;

/// One serialised message, shared by every client that receives it.
pub type Frame = Arc<str>;

/// Feed counters (exported in health and `/metrics`).
#[derive(Debug, Default)]
pub struct FeedStats {
    /// Clients connected now.
    pub clients: AtomicU64,
    /// Clients ever connected.
    pub connections_total: AtomicU64,
    /// Clients dropped for being slow: their queue was full, or one write stalled.
    pub slow_dropped_total: AtomicU64,
    /// Upgrades refused (foreign Origin, failed auth hook).
    pub refused_total: AtomicU64,
    /// Messages queued to clients.
    pub messages_total: AtomicU64,
}

/// A snapshot of [`FeedStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct FeedCounts {
    /// Clients connected now.
    pub clients: u64,
    /// Clients ever connected.
    pub connections_total: u64,
    /// Slow clients dropped.
    pub slow_dropped_total: u64,
    /// Upgrades refused.
    pub refused_total: u64,
    /// Messages queued to clients.
    pub messages_total: u64,
}

impl FeedStats {
    /// Current values.
    #[must_use]
    pub fn snapshot(&self) -> FeedCounts {
        FeedCounts {
            clients: self.clients.load(Ordering::Relaxed),
            connections_total: self.connections_total.load(Ordering::Relaxed),
            slow_dropped_total: self.slow_dropped_total.load(Ordering::Relaxed),
            refused_total: self.refused_total.load(Ordering::Relaxed),
            messages_total: self.messages_total.load(Ordering::Relaxed),
        }
    }
}

/// What the connection task holds for its client.
#[derive(Debug)]
pub struct ClientHandle {
    /// Registry id.
    pub id: u64,
    /// The queue's receiving end.
    pub rx: mpsc::Receiver<Frame>,
    /// Notified when the hub drops the client (slow): the task must close at once.
    pub kill: Arc<Notify>,
}

#[derive(Debug)]
struct Slot {
    tx: mpsc::Sender<Frame>,
    kill: Arc<Notify>,
    topics: Topics,
    filter: RawFilter,
    /// Flows already sent: key string -> (last_ns, packets), to send only changes.
    seen: HashMap<String, (u64, u64)>,
}

/// The registry.
#[derive(Debug, Default)]
pub struct Hub {
    clients: Mutex<HashMap<u64, Slot>>,
    next_id: AtomicU64,
    /// The latest message of each periodic topic, sent at once to a new subscriber.
    latest: Mutex<HashMap<Topic, Frame>>,
    /// Counters.
    pub stats: FeedStats,
}

/// Result of offering one frame to one client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// Queued.
    Queued,
    /// The queue was full: the client was dropped.
    Dropped,
    /// The client is gone.
    Gone,
}

impl Hub {
    /// An empty hub.
    #[must_use]
    pub fn new() -> Hub {
        Hub::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Slot>> {
        self.clients.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a client with an empty subscription.
    pub fn register(&self) -> ClientHandle {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let (tx, rx) = mpsc::channel(QUEUE_LIMIT);
        let kill = Arc::new(Notify::new());
        self.lock().insert(
            id,
            Slot {
                tx,
                kill: kill.clone(),
                topics: Topics::default(),
                filter: RawFilter::new(),
                seen: HashMap::new(),
            },
        );
        self.stats.clients.fetch_add(1, Ordering::Relaxed);
        self.stats.connections_total.fetch_add(1, Ordering::Relaxed);
        ClientHandle { id, rx, kill }
    }

    /// Removes a client (its connection ended). Idempotent.
    pub fn unregister(&self, id: u64) {
        if self.lock().remove(&id).is_some() {
            self.stats.clients.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Counts a client dropped by its own connection task for being slow (`why`: a write
    /// stalled, a ping went unanswered).
    pub fn count_slow(&self, id: u64, why: &'static str) {
        self.stats
            .slow_dropped_total
            .fetch_add(1, Ordering::Relaxed);
        tracing::warn!(client = id, why, "websocket client too slow, dropped");
    }

    /// Number of registered clients.
    #[must_use]
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when no client is registered.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds topics (and replaces the flow filter when one is given); returns the new set and
    /// the latest message of each newly added periodic topic, to send right away.
    pub fn subscribe(
        &self,
        id: u64,
        topics: &[Topic],
        filter: Option<RawFilter>,
    ) -> (Topics, Vec<Frame>) {
        let mut clients = self.lock();
        let Some(slot) = clients.get_mut(&id) else {
            return (Topics::default(), Vec::new());
        };
        let before = slot.topics;
        for t in topics {
            slot.topics.0 |= t.bit();
        }
        if let Some(f) = filter {
            if f != slot.filter {
                slot.seen.clear();
            }
            slot.filter = f;
        }
        let now = slot.topics;
        drop(clients);
        let latest = self.latest.lock().unwrap_or_else(PoisonError::into_inner);
        let fresh = topics
            .iter()
            .filter(|t| !before.has(**t))
            .filter_map(|t| latest.get(t).cloned())
            .collect();
        (now, fresh)
    }

    /// Removes topics; returns the new set.
    pub fn unsubscribe(&self, id: u64, topics: &[Topic]) -> Topics {
        let mut clients = self.lock();
        let Some(slot) = clients.get_mut(&id) else {
            return Topics::default();
        };
        for t in topics {
            slot.topics.0 &= !t.bit();
        }
        if !slot.topics.has(Topic::Flows) {
            slot.seen.clear();
        }
        slot.topics
    }

    /// The current flow filter of a client.
    #[must_use]
    pub fn filter_of(&self, id: u64) -> Option<RawFilter> {
        self.lock().get(&id).map(|s| s.filter.clone())
    }

    fn offer_locked(&self, clients: &mut HashMap<u64, Slot>, id: u64, frame: &Frame) -> Offer {
        let Some(slot) = clients.get(&id) else {
            return Offer::Gone;
        };
        match slot.tx.try_send(frame.clone()) {
            Ok(()) => {
                self.stats.messages_total.fetch_add(1, Ordering::Relaxed);
                Offer::Queued
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                if let Some(slot) = clients.remove(&id) {
                    slot.kill.notify_one();
                    self.stats.clients.fetch_sub(1, Ordering::Relaxed);
                    self.stats
                        .slow_dropped_total
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        client = id,
                        queue = QUEUE_LIMIT,
                        "websocket client too slow: dropped"
                    );
                }
                Offer::Dropped
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                if clients.remove(&id).is_some() {
                    self.stats.clients.fetch_sub(1, Ordering::Relaxed);
                }
                Offer::Gone
            }
        }
    }

    /// Queues a frame for one client.
    pub fn send_to(&self, id: u64, frame: &Frame) -> Offer {
        let mut clients = self.lock();
        self.offer_locked(&mut clients, id, frame)
    }

    /// Queues a frame for every subscriber of `topic` and remembers it for new subscribers;
    /// returns how many clients got it.
    pub fn broadcast(&self, topic: Topic, frame: &Frame) -> usize {
        self.latest
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(topic, frame.clone());
        self.broadcast_transient(topic, frame)
    }

    /// Forgets the remembered messages (nobody is connected: they would only go stale).
    pub fn forget_latest(&self) {
        self.latest
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// Like [`Hub::broadcast`] without remembering the frame (flow changes, alert transitions).
    pub fn broadcast_transient(&self, topic: Topic, frame: &Frame) -> usize {
        let mut clients = self.lock();
        let ids: Vec<u64> = clients
            .iter()
            .filter(|(_, s)| s.topics.has(topic))
            .map(|(id, _)| *id)
            .collect();
        ids.into_iter()
            .filter(|id| self.offer_locked(&mut clients, *id, frame) == Offer::Queued)
            .count()
    }

    /// Distinct flow filters of the clients subscribed to `flows`, each with its clients.
    #[must_use]
    pub fn flow_groups(&self) -> Vec<(RawFilter, Vec<u64>)> {
        let clients = self.lock();
        let mut groups: HashMap<&RawFilter, Vec<u64>> = HashMap::new();
        for (id, s) in clients.iter() {
            if s.topics.has(Topic::Flows) {
                groups.entry(&s.filter).or_default().push(*id);
            }
        }
        groups
            .into_iter()
            .map(|(f, ids)| (f.clone(), ids))
            .collect()
    }

    /// Keeps, for one client, only the flows that changed since it last got them, and
    /// records them as sent. `flows` holds (key, last_ns, packets, json).
    pub fn changed_for(
        &self,
        id: u64,
        flows: &[(String, u64, u64, Arc<serde_json::Value>)],
    ) -> Vec<Arc<serde_json::Value>> {
        let mut clients = self.lock();
        let Some(slot) = clients.get_mut(&id) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut next = HashMap::with_capacity(flows.len());
        for (key, last, packets, json) in flows {
            if slot.seen.get(key) != Some(&(*last, *packets)) {
                out.push(json.clone());
            }
            next.insert(key.clone(), (*last, *packets));
        }
        slot.seen = next;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(s: &str) -> Frame {
        Arc::from(s)
    }

    #[test]
    fn a_full_queue_drops_only_that_client() {
        let hub = Hub::new();
        let mut slow = hub.register();
        let mut fast = hub.register();
        hub.subscribe(slow.id, &[Topic::Metrics], None);
        hub.subscribe(fast.id, &[Topic::Metrics], None);
        for i in 0..QUEUE_LIMIT {
            assert_eq!(hub.broadcast(Topic::Metrics, &frame(&i.to_string())), 2);
            // the fast client reads everything
            assert_eq!(fast.rx.try_recv().as_deref(), Ok(i.to_string().as_str()));
        }
        // the slow one never read: the next message overflows its queue
        assert_eq!(hub.broadcast(Topic::Metrics, &frame("x")), 1);
        assert_eq!(hub.stats.snapshot().slow_dropped_total, 1);
        assert_eq!(hub.stats.snapshot().clients, 1);
        assert_eq!(fast.rx.try_recv().as_deref(), Ok("x"));
        // the dropped client's queue holds at most QUEUE_LIMIT frames, then ends
        let mut n = 0;
        while slow.rx.try_recv().is_ok() {
            n += 1;
        }
        assert_eq!(n, QUEUE_LIMIT);
        assert!(matches!(
            slow.rx.try_recv(),
            Err(mpsc::error::TryRecvError::Disconnected)
        ));
        // later broadcasts skip it
        assert_eq!(hub.broadcast(Topic::Metrics, &frame("y")), 1);
    }

    #[test]
    fn topics_and_latest() {
        let hub = Hub::new();
        hub.broadcast(Topic::Health, &frame("h1"));
        let mut c = hub.register();
        assert_eq!(
            hub.broadcast(Topic::Health, &frame("h2")),
            0,
            "not subscribed yet"
        );
        let (t, fresh) = hub.subscribe(c.id, &[Topic::Health, Topic::Metrics], None);
        assert!(t.has(Topic::Health) && t.has(Topic::Metrics));
        assert_eq!(
            fresh.iter().map(|f| f.to_string()).collect::<Vec<_>>(),
            vec!["h2"]
        );
        let (_, again) = hub.subscribe(c.id, &[Topic::Health], None);
        assert!(again.is_empty(), "already subscribed: nothing resent");
        hub.unsubscribe(c.id, &[Topic::Health]);
        assert_eq!(hub.broadcast(Topic::Health, &frame("h3")), 0);
        assert_eq!(hub.broadcast(Topic::Metrics, &frame("m")), 1);
        assert_eq!(c.rx.try_recv().as_deref(), Ok("m"));
        hub.unregister(c.id);
        hub.unregister(c.id);
        assert_eq!(hub.stats.snapshot().clients, 0);
        assert!(hub.is_empty());
    }

    #[test]
    fn flow_groups_and_changes() {
        let hub = Hub::new();
        let a = hub.register();
        let b = hub.register();
        let mut f = RawFilter::new();
        f.insert("port".into(), "53".into());
        hub.subscribe(a.id, &[Topic::Flows], Some(f.clone()));
        hub.subscribe(b.id, &[Topic::Flows], Some(f.clone()));
        let groups = hub.flow_groups();
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].1.len(), 2);
        let j = Arc::new(serde_json::json!({"k": 1}));
        let flows = vec![
            ("k1".to_string(), 10, 1, j.clone()),
            ("k2".to_string(), 10, 1, j.clone()),
        ];
        assert_eq!(hub.changed_for(a.id, &flows).len(), 2);
        assert_eq!(
            hub.changed_for(a.id, &flows).len(),
            0,
            "unchanged flows are not resent"
        );
        let flows2 = vec![
            ("k1".to_string(), 11, 2, j.clone()),
            ("k2".to_string(), 10, 1, j),
        ];
        assert_eq!(hub.changed_for(a.id, &flows2).len(), 1);
        assert_eq!(hub.filter_of(b.id), Some(f));
    }
}
