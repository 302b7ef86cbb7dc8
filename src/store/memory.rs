//! The embedded in-process store behind `memory://`: Redis semantics (TTL expiry, atomic
//! multi-step operations) for development, tests and single-process use.
//!
//! Every operation of a service is one closure run under the store's lock: the memory
//! counterpart of one Lua script. Instances that name the same store (`memory://name`) share
//! its data, the way several app nodes share one Redis.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::error::{CacheError, CacheResult};

pub enum MemVal {
    Str(String),
    Set(HashSet<String>),
    Hash(HashMap<String, String>),
    ZSet(ZSet),
}

/// A sorted set with integer scores (Redis ZADD/ZREM/ZREMRANGEBYSCORE/ZRANGE semantics, ties
/// ordered by member): O(log n) to add, remove, or cut below a score.
#[derive(Default)]
pub struct ZSet {
    scores: HashMap<String, i64>,
    order: BTreeSet<(i64, String)>,
}

impl ZSet {
    /// Adds `member` or moves it to `score`; true if it is new.
    pub fn insert(&mut self, member: &str, score: i64) -> bool {
        let old = self.scores.insert(member.to_string(), score);
        if let Some(o) = old {
            self.order.remove(&(o, member.to_string()));
        }
        self.order.insert((score, member.to_string()));
        old.is_none()
    }

    pub fn remove(&mut self, member: &str) -> bool {
        match self.scores.remove(member) {
            Some(score) => {
                self.order.remove(&(score, member.to_string()));
                true
            }
            None => false,
        }
    }

    /// Removes every member scored below `bound` → how many (O(log n + removed)).
    pub fn remove_below(&mut self, bound: i64) -> usize {
        let keep = self.order.split_off(&(bound, String::new()));
        let gone = std::mem::replace(&mut self.order, keep);
        for (_, m) in &gone {
            self.scores.remove(m);
        }
        gone.len()
    }

    /// The score of `member`, if it is in the set (ZSCORE).
    pub fn score(&self, member: &str) -> Option<i64> {
        self.scores.get(member).copied()
    }

    /// The lowest score in the set (ZRANGE 0 0 WITHSCORES).
    pub fn first_score(&self) -> Option<i64> {
        self.order.first().map(|(s, _)| *s)
    }

    /// Members by score, then by member.
    pub fn members(&self) -> Vec<String> {
        self.order.iter().map(|(_, m)| m.clone()).collect()
    }

    pub fn len(&self) -> usize {
        self.scores.len()
    }

    pub fn is_empty(&self) -> bool {
        self.scores.is_empty()
    }
}

pub struct Entry {
    pub val: MemVal,
    pub expires_at: Option<Instant>,
}

impl Entry {
    fn expired(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|t| t <= now)
    }
}

/// How many writes between two sweeps of expired keys (lazy expiry handles reads).
const SWEEP_EVERY: u32 = 4096;

#[derive(Default)]
pub struct MemData {
    map: HashMap<String, Entry>,
    writes: u32,
}

fn wrong_type() -> CacheError {
    CacheError::Redis("WRONGTYPE Operation against a key holding the wrong kind of value".into())
}

impl MemData {
    /// The live entry at `key`, dropping it first if it has expired.
    pub fn entry(&mut self, key: &str) -> Option<&mut Entry> {
        let now = Instant::now();
        if self.map.get(key).is_some_and(|e| e.expired(now)) {
            self.map.remove(key);
        }
        self.map.get_mut(key)
    }

    pub fn exists(&mut self, key: &str) -> bool {
        self.entry(key).is_some()
    }

    pub fn get_str(&mut self, key: &str) -> CacheResult<Option<String>> {
        match self.entry(key) {
            None => Ok(None),
            Some(Entry {
                val: MemVal::Str(s),
                ..
            }) => Ok(Some(s.clone())),
            Some(_) => Err(wrong_type()),
        }
    }

    /// SET key value [PX ttl]; a `None` TTL keeps no expiry (only for callers that must).
    pub fn set_str(&mut self, key: &str, val: String, ttl: Option<Duration>) {
        self.wrote();
        self.map.insert(
            key.to_string(),
            Entry {
                val: MemVal::Str(val),
                expires_at: ttl.map(|d| Instant::now() + d),
            },
        );
    }

    /// Stores any value at `key` (replacing what was there), for service helpers that build
    /// their own types (hashes, counters).
    pub fn put(&mut self, key: &str, val: MemVal, ttl: Option<Duration>) {
        self.wrote();
        self.map.insert(
            key.to_string(),
            Entry {
                val,
                expires_at: ttl.map(|d| Instant::now() + d),
            },
        );
    }

    pub fn del(&mut self, key: &str) -> bool {
        let live = self.exists(key);
        self.map.remove(key);
        live
    }

    /// PTTL: -2 when missing, -1 without expiry, else milliseconds left.
    pub fn pttl(&mut self, key: &str) -> i64 {
        match self.entry(key) {
            None => -2,
            Some(Entry {
                expires_at: None, ..
            }) => -1,
            Some(Entry {
                expires_at: Some(t),
                ..
            }) => t.saturating_duration_since(Instant::now()).as_millis() as i64,
        }
    }

    pub fn pexpire(&mut self, key: &str, ttl: Duration) -> bool {
        match self.entry(key) {
            Some(e) => {
                e.expires_at = Some(Instant::now() + ttl);
                true
            }
            None => false,
        }
    }

    /// The members of the set at `key` (empty when missing).
    pub fn smembers(&mut self, key: &str) -> CacheResult<Vec<String>> {
        match self.entry(key) {
            None => Ok(Vec::new()),
            Some(Entry {
                val: MemVal::Set(s),
                ..
            }) => Ok(s.iter().cloned().collect()),
            Some(_) => Err(wrong_type()),
        }
    }

    /// SADD; the set is created without expiry, as in Redis: callers set its TTL.
    pub fn sadd(&mut self, key: &str, member: &str) -> CacheResult<bool> {
        self.wrote();
        if self.entry(key).is_none() {
            self.map.insert(
                key.to_string(),
                Entry {
                    val: MemVal::Set(HashSet::new()),
                    expires_at: None,
                },
            );
        }
        match self.map.get_mut(key) {
            Some(Entry {
                val: MemVal::Set(s),
                ..
            }) => Ok(s.insert(member.to_string())),
            _ => Err(wrong_type()),
        }
    }

    /// SREM; an emptied set is removed, as in Redis.
    pub fn srem(&mut self, key: &str, member: &str) -> CacheResult<bool> {
        let (removed, now_empty) = match self.entry(key) {
            None => return Ok(false),
            Some(Entry {
                val: MemVal::Set(s),
                ..
            }) => (s.remove(member), s.is_empty()),
            Some(_) => return Err(wrong_type()),
        };
        if now_empty {
            self.map.remove(key);
        }
        Ok(removed)
    }

    /// The sorted set at `key`, created (without expiry) when missing; WRONGTYPE for another
    /// type. Callers remove it when they leave it empty, as Redis does.
    pub fn zset(&mut self, key: &str) -> CacheResult<&mut ZSet> {
        self.wrote();
        if self.entry(key).is_none() {
            self.map.insert(
                key.to_string(),
                Entry {
                    val: MemVal::ZSet(ZSet::default()),
                    expires_at: None,
                },
            );
        }
        match self.map.get_mut(key) {
            Some(Entry {
                val: MemVal::ZSet(z),
                ..
            }) => Ok(z),
            _ => Err(wrong_type()),
        }
    }

    /// The live entry's value at `key`, for callers that branch on its type.
    pub fn val(&mut self, key: &str) -> Option<&mut MemVal> {
        self.entry(key).map(|e| &mut e.val)
    }

    /// Number of live keys (DBSIZE).
    pub fn len(&mut self) -> usize {
        self.sweep();
        self.map.len()
    }

    pub fn is_empty(&mut self) -> bool {
        self.len() == 0
    }

    /// Live keys (for tests and pattern operations).
    pub fn keys(&mut self) -> Vec<String> {
        self.sweep();
        self.map.keys().cloned().collect()
    }

    pub fn clear(&mut self) {
        self.map.clear();
    }

    fn wrote(&mut self) {
        self.writes = self.writes.wrapping_add(1);
        if self.writes.is_multiple_of(SWEEP_EVERY) {
            self.sweep();
        }
    }

    fn sweep(&mut self) {
        let now = Instant::now();
        self.map.retain(|_, e| !e.expired(now));
    }
}

/// A subscriber of an in-process store: the (prefixed) channels it listens to and what to
/// call with `(channel, payload)` when a message is published on one of them.
pub type MemDeliver = Arc<dyn Fn(&str, &str) + Send + Sync>;

struct MemSubscriber {
    id: u64,
    channels: Vec<String>,
    deliver: MemDeliver,
}

/// The subscribers of one named store: the in-process counterpart of Redis pub/sub.
#[derive(Default)]
struct Subscribers {
    next_id: u64,
    list: Vec<MemSubscriber>,
}

/// A handle on one named in-process store.
#[derive(Clone)]
pub struct MemoryStore {
    data: Arc<Mutex<MemData>>,
    subscribers: Arc<Mutex<Subscribers>>,
}

static STORES: LazyLock<Mutex<HashMap<String, MemoryStore>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

impl MemoryStore {
    /// The process-wide store called `name` (created on first use).
    pub fn named(name: &str) -> MemoryStore {
        STORES
            .lock()
            .entry(name.to_string())
            .or_insert_with(|| MemoryStore {
                data: Arc::new(Mutex::new(MemData::default())),
                subscribers: Arc::new(Mutex::new(Subscribers::default())),
            })
            .clone()
    }

    /// Registers a subscriber of `channels`; the id unregisters it.
    pub fn subscribe(&self, channels: Vec<String>, deliver: MemDeliver) -> u64 {
        let mut subs = self.subscribers.lock();
        subs.next_id += 1;
        let id = subs.next_id;
        subs.list.push(MemSubscriber {
            id,
            channels,
            deliver,
        });
        id
    }

    pub fn unsubscribe(&self, id: u64) {
        self.subscribers.lock().list.retain(|s| s.id != id);
    }

    /// Delivers `payload` to every subscriber of `channel`, synchronously → how many.
    /// The callbacks run outside the registry lock (they may publish in turn).
    pub fn publish(&self, channel: &str, payload: &str) -> u32 {
        let targets: Vec<MemDeliver> = self
            .subscribers
            .lock()
            .list
            .iter()
            .filter(|s| s.channels.iter().any(|c| c == channel))
            .map(|s| s.deliver.clone())
            .collect();
        for deliver in &targets {
            deliver(channel, payload);
        }
        targets.len() as u32
    }

    /// Runs `f` as one atomic step.
    pub fn with<T>(&self, f: impl FnOnce(&mut MemData) -> T) -> T {
        f(&mut self.data.lock())
    }
}

/// The memory store's clock (index scores, revisions): ms on a monotonic clock, the one its
/// TTLs run on (a memory store never outlives its process, so no epoch is needed).
pub(crate) fn now_ms() -> i64 {
    static BASE: std::sync::LazyLock<Instant> = std::sync::LazyLock::new(Instant::now);
    BASE.elapsed().as_millis() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_expire() {
        let mut d = MemData::default();
        d.set_str("k", "v".into(), Some(Duration::from_millis(20)));
        assert_eq!(d.get_str("k").unwrap().as_deref(), Some("v"));
        assert!(d.pttl("k") > 0 && d.pttl("k") <= 20);
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(d.get_str("k").unwrap(), None);
        assert_eq!(d.pttl("k"), -2);
        assert_eq!(d.len(), 0);
    }

    #[test]
    fn sets_behave_like_redis_sets() {
        let mut d = MemData::default();
        assert!(d.sadd("s", "a").unwrap());
        assert!(!d.sadd("s", "a").unwrap());
        assert_eq!(d.pttl("s"), -1);
        assert!(d.pexpire("s", Duration::from_secs(5)));
        assert!(d.srem("s", "a").unwrap());
        assert!(!d.exists("s"), "an emptied set is removed");
    }

    #[test]
    fn sorted_sets_cut_by_score() {
        let mut d = MemData::default();
        let z = d.zset("z").unwrap();
        assert!(z.insert("a", 10));
        assert!(z.insert("b", 20));
        assert!(z.insert("c", 30));
        assert!(!z.insert("a", 40), "a known member moves");
        assert_eq!(z.members(), ["b", "c", "a"]);
        assert_eq!(z.remove_below(30), 1);
        assert_eq!(z.members(), ["c", "a"]);
        assert_eq!(z.score("a"), Some(40));
        assert_eq!(z.score("zz"), None);
        assert_eq!(z.first_score(), Some(30));
        assert!(z.remove("c") && !z.remove("c"));
        assert_eq!(z.len(), 1);
        d.set_str("k", "v".into(), None);
        assert!(d.zset("k").is_err());
    }

    #[test]
    fn wrong_types_are_errors() {
        let mut d = MemData::default();
        d.set_str("k", "v".into(), None);
        assert!(d.sadd("k", "m").is_err());
        d.sadd("s", "m").unwrap();
        assert!(d.get_str("s").is_err());
    }

    #[test]
    fn named_stores_are_shared_and_separate() {
        MemoryStore::named("t-a").with(|d| d.set_str("k", "1".into(), None));
        let again = MemoryStore::named("t-a").with(|d| d.get_str("k").unwrap());
        assert_eq!(again.as_deref(), Some("1"));
        let other = MemoryStore::named("t-b").with(|d| d.get_str("k").unwrap());
        assert_eq!(other, None);
    }
}
