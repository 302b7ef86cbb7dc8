//! The subscription of an instance: what its subscriber hears (Redis through
//! [`crate::store::subscriber`], or the named `memory://` store, which delivers PUBLISH
//! synchronously) is checked, applied to the near cache, tracked by its numbering, and queued
//! for JS.
//!
//! - Channels carry the key prefix (`{keyPrefix}permissions:invalidate`, …), so ERPs sharing
//!   one Redis under different prefixes never hear each other.
//! - The near cache is trusted only between a confirmed SUBSCRIBE and the loss of that
//!   connection.
//! - Each message is applied to the near cache right here in Rust, then handed to JS through
//!   a *weak* threadsafe function (`call_async_catch`): it never keeps Node alive, and a JS
//!   exception comes back as an `Err` (reported on stderr) instead of killing the process.
//!   The JS dispatcher catches its handlers' errors itself, so that path is a last resort.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use napi::bindgen_prelude::spawn;
use napi::bindgen_prelude::FnArgs;
use napi::threadsafe_function::{ThreadsafeFunction, UnknownReturnValue};
use napi::Status;
use parking_lot::Mutex;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::names::channels::{channel_index, channel_of};
use crate::near_cache::NearCache;
use crate::rules::CHANNELS;
use crate::store::memory::{MemDeliver, MemoryStore};
use crate::store::pubsub::{MessageRules, Rejected};
use crate::store::subscriber::{supervise, Listener};
use crate::store::{Backend, Store};

/// Messages waiting for JS; beyond this they are dropped (pub/sub is at-most-once anyway,
/// and the near cache has already applied them).
const DELIVERY_QUEUE: usize = 10_000;

/// The JS callback of a subscription: `onMessage(channel, payload)`.
pub type MessageFn = ThreadsafeFunction<
    (String, String),
    UnknownReturnValue,
    FnArgs<(String, String)>,
    Status,
    false,
    true,
>;

/// The state of the subscriber link, shared with its tasks.
pub struct Link {
    connected: watch::Sender<bool>,
    /// Successful subscriptions after the first one.
    resubscribes: AtomicU64,
    subscriptions: AtomicU64,
    /// Messages dropped because JS did not keep up.
    dropped: AtomicU64,
    /// Bytes of messages waiting for JS (bounded by `MessageRules::queue_budget`).
    queued_bytes: AtomicUsize,
    /// Received messages dropped before the near cache or JS saw them, by reason.
    oversize: AtomicU64,
    unsigned: AtomicU64,
    bad_signature: AtomicU64,
    /// The last sequence number heard per (sender, channel), and what it has found.
    tracker: Mutex<SeqTracker>,
    seq: SeqCounts,
}

impl Link {
    fn reject(&self, why: Rejected) {
        let counter = match why {
            Rejected::Oversize => &self.oversize,
            Rejected::Unsigned => &self.unsigned,
            Rejected::BadSignature => &self.bad_signature,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Senders whose numbering a subscriber remembers; beyond this the least recently heard is
/// forgotten (counted). A forgotten sender heard again is a new one: its next message is a
/// late join (a drop) unless it is its first.
pub const MAX_SENDERS: usize = 4096;
/// An origin (nodeId) longer than this is not remembered for restart detection.
const MAX_ORIGIN_BYTES: usize = 256;

/// What one numbered message says about the stream (sender, channel) it belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Heard {
    /// The next number of a stream we follow, or number 1 of a new one.
    InOrder,
    /// Numbers were skipped: messages of this sender were lost.
    Gap,
    /// A number not above the last one heard (a replay, a duplicate or a reordering).
    OutOfOrder,
    /// A new sender id from a nodeId we heard under another sender id: that node restarted
    /// (or reconfigured); what its old instance sent last may be lost.
    Restart,
    /// The first message we hear of a (sender, channel) is not its first (seq > 1): the
    /// ones before it may have been sent while we were subscribed, and lost.
    LateJoin,
}

struct SenderLog {
    /// The highest number heard per channel (0: none yet).
    last: [u64; 3],
    /// When it was last heard (the tracker's clock), its key in `by_tick`.
    tick: u64,
    origin: Option<String>,
}

/// The last sequence number heard per (sender, channel), for at most `max` senders.
pub struct SeqTracker {
    max: usize,
    senders: HashMap<String, SenderLog>,
    /// Least recently heard first.
    by_tick: BTreeMap<u64, String>,
    /// nodeId → the sender id it was last heard under (only senders still tracked).
    origins: HashMap<String, String>,
    tick: u64,
}

impl SeqTracker {
    pub fn new(max: usize) -> SeqTracker {
        SeqTracker {
            max: max.max(1),
            senders: HashMap::new(),
            by_tick: BTreeMap::new(),
            origins: HashMap::new(),
            tick: 0,
        }
    }

    /// How many senders are tracked.
    pub fn senders(&self) -> usize {
        self.senders.len()
    }

    /// Message `seq` of `sender` on channel `idx`, sent by node `origin` → what it says, and
    /// whether a sender had to be forgotten to make room for this one.
    pub fn observe(
        &mut self,
        idx: usize,
        sender: &str,
        seq: u64,
        origin: Option<&str>,
    ) -> (Heard, bool) {
        let idx = idx.min(2);
        self.tick += 1;
        let tick = self.tick;
        if let Some(st) = self.senders.get_mut(sender) {
            self.by_tick.remove(&st.tick);
            st.tick = tick;
            self.by_tick.insert(tick, sender.to_string());
            let last = st.last[idx];
            let heard = if last == 0 {
                if seq == 1 {
                    Heard::InOrder
                } else {
                    Heard::LateJoin
                }
            } else if seq == last + 1 {
                Heard::InOrder
            } else if seq > last {
                Heard::Gap
            } else {
                Heard::OutOfOrder
            };
            st.last[idx] = st.last[idx].max(seq);
            return (heard, false);
        }
        let origin = origin.filter(|o| !o.is_empty() && o.len() <= MAX_ORIGIN_BYTES);
        let restart = origin
            .and_then(|o| self.origins.get(o))
            .is_some_and(|prev| prev != sender);
        let mut forgot = false;
        while self.senders.len() >= self.max {
            let Some((_, oldest)) = self.by_tick.pop_first() else {
                break;
            };
            if let Some(old) = self.senders.remove(&oldest) {
                if let Some(o) = old.origin {
                    if self.origins.get(&o) == Some(&oldest) {
                        self.origins.remove(&o);
                    }
                }
            }
            forgot = true;
        }
        let mut last = [0; 3];
        last[idx] = seq;
        self.senders.insert(
            sender.to_string(),
            SenderLog {
                last,
                tick,
                origin: origin.map(str::to_string),
            },
        );
        self.by_tick.insert(tick, sender.to_string());
        if let Some(o) = origin {
            self.origins.insert(o.to_string(), sender.to_string());
        }
        let heard = if restart {
            Heard::Restart
        } else if seq == 1 {
            Heard::InOrder
        } else {
            Heard::LateJoin
        };
        (heard, forgot)
    }
}

/// What the subscriber's sequence tracking has counted (`pubsub.status()`).
#[derive(Default)]
pub struct SeqCounts {
    numbered: AtomicU64,
    /// Messages with no (valid) sender id and number: another library version, or a raw
    /// PUBLISH. Applied, not tracked.
    unnumbered: AtomicU64,
    gaps: AtomicU64,
    out_of_order: AtomicU64,
    sender_restarts: AtomicU64,
    late_joins: AtomicU64,
    forgotten: AtomicU64,
    /// Times the near caches were dropped for any of the reasons above (or an unsigned
    /// setup's oversize message, which may have been an invalidation).
    near_drops: AtomicU64,
}

/// The numbering fields of a message, borrowed from it where they hold no escapes; anything
/// else in it is skipped, not copied. A `sender` or `seq` of another type leaves the message
/// unnumbered; an `origin` of another type is left out.
#[derive(serde::Deserialize)]
struct Numbering<'a> {
    #[serde(borrow, default, deserialize_with = "text_or_none")]
    sender: Option<Cow<'a, str>>,
    #[serde(default)]
    seq: Option<u64>,
    #[serde(borrow, default, deserialize_with = "text_or_none")]
    origin: Option<Cow<'a, str>>,
}

/// A string field as text; a field of any other type as none.
fn text_or_none<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Cow<'de, str>>, D::Error> {
    struct Text;
    impl<'de> serde::de::Visitor<'de> for Text {
        type Value = Option<Cow<'de, str>>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
            Ok(Some(Cow::Borrowed(v)))
        }
        fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(Cow::Owned(v.to_string())))
        }
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut a: A,
        ) -> Result<Self::Value, A::Error> {
            while a.next_element::<serde::de::IgnoredAny>()?.is_some() {}
            Ok(None)
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut a: A,
        ) -> Result<Self::Value, A::Error> {
            while a
                .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                .is_some()
            {}
            Ok(None)
        }
    }
    d.deserialize_any(Text)
}

/// The numbering of a message: none unless it is a JSON object with a sender id as this library
/// makes them and a sequence number ≥ 1.
fn numbering(payload: &str) -> Option<Numbering<'_>> {
    if !payload.trim_start().starts_with('{') {
        return None;
    }
    serde_json::from_str::<Numbering>(payload)
        .ok()
        .filter(|n| n.sender.as_deref().is_some_and(sender_ok) && n.seq.is_some_and(|q| q >= 1))
}

/// A sender id as this library makes them (hex, 64 to 256 bits).
fn sender_ok(s: &str) -> bool {
    (16..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Tracks one received message's number (after it passed `MessageRules::open`, so with a
/// secret only verified messages count) and drops the near caches when it shows that a
/// message may have been lost. The JS near cache follows: the clear moves the generation
/// word it checks on every hit.
fn track(near: &NearCache, link: &Link, idx: usize, payload: &str) {
    let n = numbering(payload);
    let fields = n.as_ref().map(|n| {
        (
            n.sender.as_deref().unwrap_or(""),
            n.seq.unwrap_or(0),
            n.origin.as_deref(),
        )
    });
    let c = &link.seq;
    let Some((sender, seq, origin)) = fields else {
        c.unnumbered.fetch_add(1, Ordering::Relaxed);
        return;
    };
    c.numbered.fetch_add(1, Ordering::Relaxed);
    let (heard, forgot) = link.tracker.lock().observe(idx, sender, seq, origin);
    if forgot {
        c.forgotten.fetch_add(1, Ordering::Relaxed);
    }
    let counter = match heard {
        Heard::InOrder => return,
        Heard::Gap => &c.gaps,
        Heard::OutOfOrder => &c.out_of_order,
        Heard::Restart => &c.sender_restarts,
        Heard::LateJoin => &c.late_joins,
    };
    counter.fetch_add(1, Ordering::Relaxed);
    drop_near(near, link);
}

/// Drops every near-cache entry (Rust, and through the generation word the JS copy).
fn drop_near(near: &NearCache, link: &Link) {
    near.clear();
    link.seq.near_drops.fetch_add(1, Ordering::Relaxed);
}

struct Running {
    tasks: Vec<JoinHandle<()>>,
    memory: Option<(MemoryStore, u64)>,
}

/// Per instance: the near cache and the subscriber.
pub struct PubSubState {
    pub near: Arc<NearCache>,
    running: Mutex<Option<Running>>,
    link: Arc<Link>,
}

impl PubSubState {
    pub fn new(near: NearCache) -> PubSubState {
        PubSubState {
            near: Arc::new(near),
            running: Mutex::new(None),
            link: Arc::new(Link {
                connected: watch::channel(false).0,
                resubscribes: AtomicU64::new(0),
                subscriptions: AtomicU64::new(0),
                dropped: AtomicU64::new(0),
                queued_bytes: AtomicUsize::new(0),
                oversize: AtomicU64::new(0),
                unsigned: AtomicU64::new(0),
                bad_signature: AtomicU64::new(0),
                tracker: Mutex::new(SeqTracker::new(MAX_SENDERS)),
                seq: SeqCounts::default(),
            }),
        }
    }

    /// Stops the subscriber (its tasks are aborted, its connection dropped) and distrusts the
    /// near cache. Idempotent.
    pub fn close(&self) {
        if let Some(r) = self.running.lock().take() {
            for t in r.tasks {
                t.abort();
            }
            if let Some((m, id)) = r.memory {
                m.unsubscribe(id);
            }
        }
        self.near.set_trusted(false);
        self.link.connected.send_replace(false);
    }

    /// Starts the subscriber on `store` (idempotent; `tsfn`, the JS callback, is made only
    /// when it starts).
    pub fn start(
        &self,
        store: &Arc<Store>,
        tsfn: impl FnOnce() -> napi::Result<MessageFn>,
    ) -> napi::Result<()> {
        let mut running = self.running.lock();
        if running.is_some() {
            return Ok(());
        }
        let (tx, rx) = mpsc::channel(DELIVERY_QUEUE);
        let mut tasks = vec![spawn(deliver(tsfn()?, rx, self.link.clone()))];
        let channels: Vec<String> = CHANNELS.iter().map(|c| store.key(c)).collect();
        let receiver = Arc::new(Receiver {
            near: self.near.clone(),
            tx,
            link: self.link.clone(),
            rules: store.messages.clone(),
            prefix: store.prefix().to_string(),
        });
        let memory = match &store.backend {
            Backend::Memory(m) => {
                let on: MemDeliver = Arc::new(move |ch: &str, payload: &str| {
                    receiver.message(ch, payload.as_bytes())
                });
                let sid = m.subscribe(channels, on);
                self.near.set_trusted(true);
                self.link.subscriptions.fetch_add(1, Ordering::AcqRel);
                self.link.connected.send_replace(true);
                Some((m.clone(), sid))
            }
            Backend::Redis(_) => {
                tasks.push(spawn(supervise(store.clone(), channels, receiver)));
                None
            }
        };
        *running = Some(Running { tasks, memory });
        Ok(())
    }

    /// Follows whether the subscriber holds a confirmed subscription.
    pub fn watch_connected(&self) -> watch::Receiver<bool> {
        self.link.connected.subscribe()
    }

    /// The counters of `pubsub.status()` (see `NativeCache::pubsub_status`).
    pub fn status(&self, rules: Option<&MessageRules>) -> serde_json::Value {
        let link = &self.link;
        let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
        serde_json::json!({
            "subscribed": self.is_subscribed(),
            "connected": self.is_connected(),
            "resubscribes": n(&link.resubscribes),
            "dropped": n(&link.dropped),
            "rejected": {
                "oversize": n(&link.oversize),
                "unsigned": n(&link.unsigned),
                "badSignature": n(&link.bad_signature),
            },
            "signed": rules.is_some_and(|r| r.signs()),
            "maxMessageBytes": rules.map(|r| r.max_bytes()),
            "sender": rules.map(|r| r.sender()),
            "numbered": n(&link.seq.numbered),
            "unnumbered": n(&link.seq.unnumbered),
            "gaps": n(&link.seq.gaps),
            "outOfOrder": n(&link.seq.out_of_order),
            "senderRestarts": n(&link.seq.sender_restarts),
            "lateJoins": n(&link.seq.late_joins),
            "forgottenSenders": n(&link.seq.forgotten),
            "nearDrops": n(&link.seq.near_drops),
            "senders": link.tracker.lock().senders(),
        })
    }

    pub fn is_subscribed(&self) -> bool {
        self.running.lock().is_some()
    }

    pub fn is_connected(&self) -> bool {
        *self.link.connected.borrow()
    }
}

impl Drop for PubSubState {
    fn drop(&mut self) {
        self.close();
    }
}

/// What one subscription feeds: the near cache, the numbering, the queue to JS.
struct Receiver {
    near: Arc<NearCache>,
    tx: mpsc::Sender<(String, String)>,
    link: Arc<Link>,
    rules: Arc<MessageRules>,
    prefix: String,
}

impl Listener for Receiver {
    fn linked(&self, up: bool) {
        if up {
            self.near.set_trusted(true);
            if self.link.subscriptions.fetch_add(1, Ordering::AcqRel) > 0 {
                self.link.resubscribes.fetch_add(1, Ordering::Relaxed);
            }
            self.link.connected.send_replace(true);
        } else {
            // From this instant nothing answers from the near cache.
            self.near.set_trusted(false);
            self.link.connected.send_replace(false);
        }
    }

    fn message(&self, channel: &str, wire: &[u8]) {
        receive(
            &self.near,
            &self.tx,
            &self.link,
            &self.rules,
            &self.prefix,
            channel,
            wire,
        );
    }
}

/// One received message (`channel` as received, prefix included): checked against
/// `maxMessageBytes` and, with `pubsubSecret`, its signature; then applied to the near cache
/// and queued for JS. A message that fails a check reaches neither, and is counted.
fn receive(
    near: &NearCache,
    tx: &mpsc::Sender<(String, String)>,
    link: &Link,
    rules: &MessageRules,
    prefix: &str,
    channel: &str,
    wire: &[u8],
) {
    let Some(ch) = channel
        .strip_prefix(prefix)
        .and_then(|c| channel_of(c).ok())
    else {
        return;
    };
    let payload = match rules.open(channel, wire) {
        Ok(object) => String::from_utf8_lossy(&object).into_owned(),
        Err(why) => {
            link.reject(why);
            // Without a secret anyone may publish any invalidation anyway, so an oversize
            // message (maybe a lost invalidation) drops the near caches; with a secret it
            // cannot be verified, and nothing unverified may cost a drop (the gap it leaves
            // in its sender's numbering does, at that sender's next message).
            if why == Rejected::Oversize && !rules.signs() {
                drop_near(near, link);
            }
            return;
        }
    };
    near.apply_message(ch, &payload);
    if let Ok(idx) = channel_index(ch) {
        track(near, link, idx, &payload);
    }
    let len = payload.len();
    let queued = link.queued_bytes.fetch_add(len, Ordering::AcqRel);
    if queued + len > rules.queue_budget() || tx.try_send((ch.to_string(), payload)).is_err() {
        link.queued_bytes.fetch_sub(len, Ordering::AcqRel);
        link.dropped.fetch_add(1, Ordering::Relaxed);
    }
}

/// Hands messages to JS, in order, one at a time.
async fn deliver(tsfn: MessageFn, mut rx: mpsc::Receiver<(String, String)>, link: Arc<Link>) {
    while let Some(m) = rx.recv().await {
        link.queued_bytes.fetch_sub(m.1.len(), Ordering::AcqRel);
        match tsfn.call_async_catch(m).await {
            Ok(_) => {}
            Err(e) if e.status == Status::Closing => break,
            // While Node tears the environment down, calls into JS fail with a pending
            // exception that carries no reason: nothing to report then. (The JS dispatcher
            // catches its handlers' errors itself; what reaches here is a last resort.)
            Err(e) if e.reason.is_empty() => {}
            Err(e) => eprintln!(
                "@bisman/cache: a pub/sub message handler threw: {}",
                e.reason
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_numbering_fields_are_read_without_copies_and_odd_ones_leave_a_message_unnumbered() {
        let read = |p: &str| {
            numbering(p).map(|n| {
                let origin = n.origin.map(|o| o.into_owned());
                (n.sender.map(|s| s.into_owned()), n.seq, origin)
            })
        };
        let id = "ab".repeat(16);
        let p = format!(r#"{{"sessionId":"x","origin":"n1","ts":1,"sender":"{id}","seq":7}}"#);
        assert_eq!(
            read(&p),
            Some((Some(id.clone()), Some(7), Some("n1".into())))
        );
        let n = numbering(&p).unwrap();
        assert!(
            matches!(n.sender, Some(Cow::Borrowed(_))),
            "no copy of the sender"
        );
        // an escaped sender is read too; an origin of another type is left out
        let esc = format!(
            r#"{{"sender":"{}\u0062","seq":1,"origin":{{"x":[1,2]}}}}"#,
            &id[..31]
        );
        assert_eq!(read(&esc), Some((Some(id.clone()), Some(1), None)));
        // a sender or seq of another type, or missing: unnumbered (the message still reaches JS)
        for p in [
            r#"{"sender":1,"seq":1}"#.to_string(),
            format!(r#"{{"sender":"{id}","seq":1.5}}"#),
            format!(r#"{{"sender":"{id}","seq":"1"}}"#),
            format!(r#"{{"sender":"{id}","seq":0}}"#),
            format!(r#"{{"sender":"{id}","seq":-1}}"#),
            r#"{"sender":"not hex","seq":1}"#.to_string(),
            r#"{"seq":1}"#.to_string(),
            format!(r#"["{id}",1]"#),
            "not json".to_string(),
        ] {
            assert_eq!(read(&p), None, "{p}");
        }
    }

    // Issue 15 item 3: the numbering rules of a subscriber.
    #[test]
    fn the_tracker_finds_gaps_restarts_late_joins_and_replays() {
        let s1 = "aa".repeat(16);
        let s2 = "bb".repeat(16);
        let mut t = SeqTracker::new(8);
        let o = Some("node-a");
        assert_eq!(t.observe(0, &s1, 1, o), (Heard::InOrder, false));
        assert_eq!(t.observe(0, &s1, 2, o).0, Heard::InOrder);
        assert_eq!(t.observe(1, &s1, 1, o).0, Heard::InOrder, "per channel");
        assert_eq!(t.observe(0, &s1, 4, o).0, Heard::Gap, "3 was lost");
        assert_eq!(t.observe(0, &s1, 5, o).0, Heard::InOrder);
        assert_eq!(t.observe(0, &s1, 5, o).0, Heard::OutOfOrder, "a replay");
        assert_eq!(t.observe(0, &s1, 6, o).0, Heard::InOrder);
        assert_eq!(t.observe(2, &s1, 3, o).0, Heard::LateJoin);
        assert_eq!(
            t.observe(0, &s2, 1, o).0,
            Heard::Restart,
            "node-a, new sender"
        );
        assert_eq!(
            t.observe(0, &s1, 7, o).0,
            Heard::InOrder,
            "the old one is kept"
        );
        assert_eq!(t.observe(0, &s2, 2, o).0, Heard::InOrder);
        let s3 = "cc".repeat(16);
        assert_eq!(t.observe(1, &s3, 9, None).0, Heard::LateJoin);
        assert_eq!(t.senders(), 3);
    }

    #[test]
    fn the_tracker_is_bounded_and_forgets_the_least_recently_heard() {
        let mut t = SeqTracker::new(3);
        let id = |i: u32| format!("{i:032x}");
        for i in 0..3 {
            assert!(!t.observe(0, &id(i), 1, Some(&format!("n{i}"))).1);
        }
        t.observe(0, &id(0), 2, Some("n0"));
        let (heard, forgot) = t.observe(0, &id(3), 1, Some("n3"));
        assert_eq!((heard, forgot), (Heard::InOrder, true));
        assert_eq!(t.senders(), 3);
        // id(1) was forgotten (id(0) was heard since): heard again mid-stream, a late join
        assert_eq!(t.observe(0, &id(0), 3, Some("n0")).0, Heard::InOrder);
        assert_eq!(t.observe(0, &id(1), 2, Some("n1")).0, Heard::LateJoin);
        for i in 0..10_000u32 {
            t.observe(0, &id(100 + i), 1, Some(&format!("m{i}")));
        }
        assert_eq!(t.senders(), 3);
        assert!(t.origins.len() <= 3 && t.by_tick.len() == 3);
    }

    #[test]
    fn only_well_formed_numbers_are_tracked() {
        let near = NearCache::new(Duration::from_secs(5), 10, vec![]);
        near.set_trusted(true);
        let ps = PubSubState::new(near);
        let link = &ps.link;
        let s = "ab".repeat(16);
        for bad in [
            r#"{"type":"user","userId":1}"#.to_string(),
            format!(r#"{{"sender":"{s}","seq":0}}"#),
            format!(r#"{{"sender":"{s}","seq":-1}}"#),
            format!(r#"{{"sender":"{s}","seq":"2"}}"#),
            r#"{"sender":"not hex","seq":2}"#.to_string(),
            r#"{"sender":"abc","seq":2}"#.to_string(),
            format!(r#"{{"sender":"{s}","seq":1,"seq":5}}"#),
            "garbage".to_string(),
        ] {
            track(&ps.near, link, 0, &bad);
        }
        assert_eq!(link.seq.unnumbered.load(Ordering::Relaxed), 8);
        assert_eq!(link.seq.near_drops.load(Ordering::Relaxed), 0);
        track(&ps.near, link, 0, &format!(r#"{{"sender":"{s}","seq":1}}"#));
        track(&ps.near, link, 0, &format!(r#"{{"sender":"{s}","seq":3}}"#));
        assert_eq!(link.seq.gaps.load(Ordering::Relaxed), 1);
        assert_eq!(link.seq.near_drops.load(Ordering::Relaxed), 1);
    }
}
