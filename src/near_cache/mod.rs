//! The near cache: permission snapshots kept in process memory for a few seconds, so the
//! hottest check of the ERP (`hasModulePermission`) needs no Redis round trip.
//!
//! It is only *trusted* while this instance's pub/sub subscription is up: the subscriber task
//! marks it trusted once SUBSCRIBE is confirmed, and distrusts (and clears) it the moment the
//! connection is lost. Pub/sub is at-most-once, so a message missed while the link was down
//! can never leave a stale entry behind: there are no entries while the link is down.
//!
//! Every invalidation bumps a generation counter under the lock. A fill captures the
//! generation before it reads Redis and is refused if the generation moved meanwhile, so a
//! read that raced with an invalidation never re-inserts the value the invalidation removed.
//!
//! The façade keeps a second, smaller near cache in JS (`lib/near_l1.js`) so that a hit never
//! crosses N-API. It has no way to hear invalidations of its own: instead it reads two words
//! of [`SharedWords`] that this cache updates, the JS generation (bumped, under the lock,
//! together with the Rust generation: by every invalidation and every change of trust, on
//! whichever thread applies it: the subscriber task the moment a message arrives, or the JS
//! thread for local invalidations) and the trusted flag. A JS entry remembers the generation
//! read before the native call that returned its snapshot, and is answered from only while
//! that generation is still current. So whatever invalidates here voids every JS entry at the
//! same instant, with no message to JS in between.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::Value;

use crate::config::NativeOptions;
use crate::error::{CacheError, CacheResult};
use crate::names::glob::glob_match;
use crate::names::keys;
use crate::rules::{
    CH_CACHE, CH_PERMISSIONS, DEFAULT_SUPER_ROLES, NEAR_WORD_GEN, NEAR_WORD_TRUSTED,
};

mod snapshot;
use snapshot::Stored;
pub use snapshot::{Check, Snapshot};

pub const DEFAULT_TTL_MS: f64 = 5_000.0;
pub const MAX_TTL_MS: f64 = 60_000.0;
pub const DEFAULT_MAX_ENTRIES: f64 = 10_000.0;
pub const MAX_MAX_ENTRIES: f64 = 1_000_000.0;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    User,
    Role,
}

impl Kind {
    fn key(self, id: &str) -> String {
        match self {
            Kind::User => keys::perm_user_key(id),
            Kind::Role => keys::perm_role_key(id),
        }
    }
}

struct Item {
    snap: Arc<Snapshot>,
    expires: Instant,
    seq: u64,
}

#[derive(Default)]
struct Inner {
    users: HashMap<String, Item>,
    roles: HashMap<String, Item>,
    /// Insertion order, for evicting the oldest entry when full.
    order: BTreeMap<u64, (Kind, String)>,
    next_seq: u64,
}

impl Inner {
    fn map(&mut self, kind: Kind) -> &mut HashMap<String, Item> {
        match kind {
            Kind::User => &mut self.users,
            Kind::Role => &mut self.roles,
        }
    }

    fn remove(&mut self, kind: Kind, id: &str) {
        if let Some(item) = self.map(kind).remove(id) {
            self.order.remove(&item.seq);
        }
    }

    fn clear_kind(&mut self, kind: Kind) {
        let map = std::mem::take(self.map(kind));
        for item in map.values() {
            self.order.remove(&item.seq);
        }
    }

    fn clear(&mut self) {
        self.users.clear();
        self.roles.clear();
        self.order.clear();
    }

    fn len(&self) -> usize {
        self.users.len() + self.roles.len()
    }
}

/// The memory JS reads on every hit of its own near cache (`lib/near_l1.js`), as an
/// `Int32Array` over an external ArrayBuffer (see `NativeCache::near_cache_words`): word 0 is
/// the JS generation, word 1 is 1 while trusted. Only Rust writes it, always atomically and
/// under the near cache's lock; JS only reads it, with `Atomics.load`.
///
/// The 32-bit generation wraps; a JS entry could be revived only if exactly 2^32
/// invalidations happened within one near TTL (at most 60 s), which cannot happen.
#[repr(C)]
#[derive(Default)]
pub struct SharedWords {
    pub gen: AtomicU32,
    pub trusted: AtomicU32,
}

// The word indices JS reads (rules::NEAR_WORD_*) are the fields' places.
const _: () = assert!(std::mem::offset_of!(SharedWords, gen) == NEAR_WORD_GEN as usize * 4);
const _: () = assert!(std::mem::offset_of!(SharedWords, trusted) == NEAR_WORD_TRUSTED as usize * 4);

#[derive(Default)]
pub struct NearStats {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub fills: AtomicU64,
    pub refused_fills: AtomicU64,
    pub invalidations: AtomicU64,
}

pub struct NearCache {
    ttl: Duration,
    max: usize,
    super_roles: Vec<String>,
    inner: Mutex<Inner>,
    trusted: AtomicBool,
    gen: AtomicU64,
    /// Shared with JS; kept alive by this Arc and by the ArrayBuffer's own clone.
    words: Arc<SharedWords>,
    pub stats: NearStats,
}

impl NearCache {
    pub fn new(ttl: Duration, max: usize, super_roles: Vec<String>) -> NearCache {
        NearCache {
            ttl,
            max,
            super_roles,
            inner: Mutex::new(Inner::default()),
            trusted: AtomicBool::new(false),
            gen: AtomicU64::new(0),
            words: Arc::new(SharedWords::default()),
            stats: NearStats::default(),
        }
    }

    /// `nearCacheTtlMs` (0 … 60000, default 5000; 0 disables), `nearCacheMax` (1 … 1e6,
    /// default 10000), `superRoles` (default `['SUPER_ADMIN']`).
    pub fn from_options(o: &NativeOptions) -> CacheResult<NearCache> {
        let ttl = o.near_cache_ttl_ms.unwrap_or(DEFAULT_TTL_MS);
        if !ttl.is_finite() || ttl.fract() != 0.0 || !(0.0..=MAX_TTL_MS).contains(&ttl) {
            return Err(CacheError::OutOfRange(format!(
                "nearCacheTtlMs must be a whole number from 0 to {MAX_TTL_MS} (got {ttl})"
            )));
        }
        let max = o.near_cache_max.unwrap_or(DEFAULT_MAX_ENTRIES);
        if !max.is_finite() || max.fract() != 0.0 || !(1.0..=MAX_MAX_ENTRIES).contains(&max) {
            return Err(CacheError::OutOfRange(format!(
                "nearCacheMax must be a whole number from 1 to {MAX_MAX_ENTRIES} (got {max})"
            )));
        }
        let super_roles = o
            .super_roles
            .clone()
            .unwrap_or_else(|| DEFAULT_SUPER_ROLES.map(String::from).to_vec());
        Ok(NearCache::new(
            Duration::from_millis(ttl as u64),
            max as usize,
            super_roles,
        ))
    }

    pub fn enabled(&self) -> bool {
        !self.ttl.is_zero()
    }

    pub fn is_trusted(&self) -> bool {
        self.trusted.load(Ordering::Acquire)
    }

    /// The generation a fill must present (capture it before reading Redis).
    pub fn generation(&self) -> u64 {
        self.gen.load(Ordering::Acquire)
    }

    /// Trusted from now on (subscription confirmed) or not (subscription lost). Either way
    /// every entry goes and every fill in flight is refused.
    pub fn set_trusted(&self, trusted: bool) {
        let mut inner = self.inner.lock();
        self.bump();
        inner.clear();
        self.trusted.store(trusted, Ordering::Release);
        self.words
            .trusted
            .store(u32::from(trusted), Ordering::SeqCst);
    }

    /// Moves both generations on (call it with the lock held): every fill in flight is
    /// refused and every JS entry is void from this instant.
    fn bump(&self) {
        self.gen.fetch_add(1, Ordering::AcqRel);
        self.words.gen.fetch_add(1, Ordering::SeqCst);
    }

    /// The words JS reads (see [`SharedWords`]).
    pub fn shared_words(&self) -> Arc<SharedWords> {
        self.words.clone()
    }

    /// For the JS near cache: the live snapshot and how long it has left to live, if the
    /// cache is trusted and holds one. Counts a hit, never a miss (a miss goes on to the full
    /// check, which counts it).
    pub fn peek(&self, kind: Kind, id: &str) -> Option<(Arc<Snapshot>, Duration)> {
        if !self.in_use() {
            return None;
        }
        let inner = self.inner.lock();
        let item = match kind {
            Kind::User => inner.users.get(id),
            Kind::Role => inner.roles.get(id),
        }?;
        let left = item.expires.checked_duration_since(Instant::now())?;
        if left.is_zero() {
            return None;
        }
        self.stats.hits.fetch_add(1, Ordering::Relaxed);
        Some((item.snap.clone(), left))
    }

    /// The live snapshot, if the cache is trusted and holds one.
    pub fn get(&self, kind: Kind, id: &str) -> Option<Arc<Snapshot>> {
        if !self.in_use() {
            return None;
        }
        let mut inner = self.inner.lock();
        let now = Instant::now();
        let found = match inner.map(kind).get(id) {
            Some(item) if item.expires > now => Some(item.snap.clone()),
            Some(_) => {
                inner.remove(kind, id);
                None
            }
            None => None,
        };
        let counter = if found.is_some() {
            &self.stats.hits
        } else {
            &self.stats.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Stores a snapshot read from the store, unless the cache is disabled or untrusted, the
    /// value is not a snapshot object, or an invalidation happened since `gen` was captured.
    pub fn fill(&self, kind: Kind, id: &str, json: &str, gen: u64) {
        if !self.in_use() {
            return;
        }
        if let Ok(snap) = self.parse(json.to_string()) {
            self.fill_parsed(kind, id, Arc::new(snap), gen);
        }
    }

    /// On and trusted: the cache answers from its entries and keeps fills. When not, a check
    /// is answered with [`answer`](Self::answer), which keeps nothing.
    pub fn in_use(&self) -> bool {
        self.enabled() && self.is_trusted()
    }

    /// A snapshot read with this cache's super roles, or `json` back when it is not one.
    pub fn parse(&self, json: String) -> Result<Snapshot, String> {
        Snapshot::parse(json, &self.super_roles)
    }

    /// `check` of the snapshot `json` holds, with this cache's super roles (None when it is
    /// not a snapshot), without building one to keep.
    pub fn answer(&self, json: &str, check: &Check) -> Option<bool> {
        Stored::read(json).map(|s| check.on_stored(&s, &self.super_roles))
    }

    /// [`fill`](Self::fill) with a snapshot already parsed.
    pub fn fill_parsed(&self, kind: Kind, id: &str, snap: Arc<Snapshot>, gen: u64) {
        if !self.enabled() {
            return;
        }
        let mut inner = self.inner.lock();
        if !self.trusted.load(Ordering::Acquire) || self.gen.load(Ordering::Acquire) != gen {
            self.stats.refused_fills.fetch_add(1, Ordering::Relaxed);
            return;
        }
        inner.remove(kind, id);
        let seq = inner.next_seq;
        inner.next_seq += 1;
        inner.order.insert(seq, (kind, id.to_string()));
        let item = Item {
            snap,
            expires: Instant::now() + self.ttl,
            seq,
        };
        inner.map(kind).insert(id.to_string(), item);
        while inner.len() > self.max {
            let Some((_, (k, oldest))) = inner.order.pop_first() else {
                break;
            };
            inner.map(k).remove(&oldest);
        }
        self.stats.fills.fetch_add(1, Ordering::Relaxed);
    }

    fn invalidate(&self, f: impl FnOnce(&mut Inner)) {
        let mut inner = self.inner.lock();
        self.bump();
        f(&mut inner);
        self.stats.invalidations.fetch_add(1, Ordering::Relaxed);
    }

    pub fn invalidate_user(&self, id: &str) {
        self.invalidate(|i| i.remove(Kind::User, id));
    }

    /// A role changed: its snapshot goes, and so does every user snapshot (a user snapshot
    /// names its role by name, the invalidation by id, so they cannot be matched reliably).
    pub fn invalidate_role(&self, id: &str) {
        self.invalidate(|i| {
            i.remove(Kind::Role, id);
            i.clear_kind(Kind::User);
        });
    }

    pub fn clear(&self) {
        self.invalidate(Inner::clear);
    }

    /// An exact (unprefixed) key, e.g. `perm:user:5`.
    pub fn invalidate_key(&self, key: &str) {
        self.invalidate(|i| {
            if let Some(id) = key.strip_prefix("perm:user:") {
                i.remove(Kind::User, id);
            } else if let Some(id) = key.strip_prefix("perm:role:") {
                i.remove(Kind::Role, id);
            }
        });
    }

    /// A glob pattern over unprefixed keys (Redis MATCH syntax).
    pub fn invalidate_pattern(&self, pattern: &str) {
        self.invalidate(|i| {
            for kind in [Kind::User, Kind::Role] {
                let doomed: Vec<String> = i
                    .map(kind)
                    .keys()
                    .filter(|id| glob_match(pattern.as_bytes(), kind.key(id).as_bytes()))
                    .cloned()
                    .collect();
                for id in doomed {
                    i.remove(kind, &id);
                }
            }
        });
    }

    /// Applies one invalidation message (unprefixed channel, JSON payload) to the entries.
    /// A permissions message it cannot read clears everything: when unsure, forget.
    pub fn apply_message(&self, channel: &str, payload: &str) {
        match channel {
            CH_PERMISSIONS => {
                let v: Value = serde_json::from_str(payload).unwrap_or(Value::Null);
                let kind = v.get("type").and_then(Value::as_str);
                let user = message_id(v.get("userId"));
                let role = message_id(v.get("roleId"));
                match (kind, user, role) {
                    (Some("user"), Some(u), _) | (None, Some(u), None) => self.invalidate_user(&u),
                    (Some("role"), _, Some(r)) | (None, None, Some(r)) => self.invalidate_role(&r),
                    _ => self.clear(),
                }
            }
            CH_CACHE => {
                let v: Value = serde_json::from_str(payload).unwrap_or(Value::Null);
                if v.is_null() {
                    return;
                }
                let keys = v
                    .get("keys")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten();
                for k in keys.filter_map(Value::as_str) {
                    self.invalidate_key(k);
                }
                if let Some(p) = v.get("pattern").and_then(Value::as_str) {
                    self.invalidate_pattern(p);
                }
            }
            _ => {}
        }
    }

    pub fn len(&self) -> usize {
        self.inner.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    pub fn max(&self) -> usize {
        self.max
    }
}

/// An id in a message: a string, or an integer rendered as the key builders render it.
fn message_id(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => n
            .as_i64()
            .map(|i| i.to_string())
            .or_else(|| n.as_f64().and_then(|f| keys::number_id("id", f).ok())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::CH_SESSIONS;

    /// The shared table of permission cases (also checked by __test__/rules.test.js against
    /// lib/permissions.js and lib/near_l1.js).
    #[test]
    fn snapshot_follows_the_shared_permission_table() {
        let table: Value = serde_json::from_str(include_str!(
            "../../__test__/fixtures/permission_rules.json"
        ))
        .unwrap();
        let cases = table["cases"].as_array().unwrap();
        assert!(cases.len() >= 8);
        for c in cases {
            let name = c["name"].as_str().unwrap();
            let roles: Vec<String> = c["superRoles"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_str().unwrap().to_string())
                .collect();
            let json = c["snapshot"].to_string();
            let snap = Snapshot::parse(json.clone(), &roles).expect(name);
            // The form a check reads when nothing keeps the snapshot answers the same.
            let stored = Stored::read(&json).expect(name);
            assert_eq!(snap.is_super(), c["isSuper"].as_bool().unwrap(), "{name}");
            assert_eq!(stored.is_super(&roles), snap.is_super(), "{name}");
            let mut checks = Vec::new();
            for (module, want) in c["modules"].as_object().unwrap() {
                checks.push((Check::Module(module.clone()), want.as_bool().unwrap()));
            }
            for p in c["pages"].as_array().unwrap() {
                let (page, action) = (p[0].as_str().unwrap(), p[1].as_str().unwrap());
                let check = Check::Page {
                    page: page.into(),
                    action: action.into(),
                };
                checks.push((check, p[2].as_bool().unwrap()));
            }
            for (check, want) in &checks {
                assert_eq!(check.on(&snap), *want, "{name}: {check:?}");
                assert_eq!(check.on_stored(&stored, &roles), *want, "{name}: {check:?}");
            }
        }
    }

    fn near() -> NearCache {
        let n = NearCache::new(Duration::from_secs(5), 3, vec!["SUPER_ADMIN".into()]);
        n.set_trusted(true);
        n
    }

    const SNAP: &str =
        r#"{"role":"CLERK","modules":["INVENTORY"],"pages":{"items":["view","edit"],"all":["*"]}}"#;

    #[test]
    fn snapshots_answer_like_the_js_rules() {
        let s = Snapshot::parse(SNAP.into(), &["SUPER_ADMIN".into()]).unwrap();
        assert!(s.has_module("INVENTORY"));
        assert!(!s.has_module("PAYROLL"));
        assert!(s.has_page("items", "edit"));
        assert!(!s.has_page("items", "delete"));
        assert!(s.has_page("all", "delete"));
        assert!(!s.has_page("other", "view"));
        let star = Snapshot::parse(r#"{"modules":["*"]}"#.into(), &[]).unwrap();
        assert!(star.has_module("ANY"));
        assert!(
            !star.has_page("p", "view"),
            "'*' in modules grants modules, not pages"
        );
        let sup = Snapshot::parse(
            r#"{"role":"SUPER_ADMIN","modules":[]}"#.into(),
            &["SUPER_ADMIN".into()],
        )
        .unwrap();
        assert!(sup.has_module("X") && sup.has_page("p", "a"));
        assert!(Snapshot::parse("[1]".into(), &[]).is_err());
        assert!(Snapshot::parse("nope".into(), &[]).is_err());
        for corrupt in [
            "42",
            "null",
            r#"{"modules":"ADMIN"}"#,
            r#"{"modules":[1]}"#,
            r#"{"modules":null}"#,
            r#"{"pages":[]}"#,
            r#"{"pages":{"p":"view"}}"#,
            r#"{"modules":["A"],"pag"#,
        ] {
            assert!(Snapshot::parse(corrupt.into(), &[]).is_err(), "{corrupt}");
        }
        assert!(Snapshot::parse(r#"{"role":"X"}"#.into(), &[]).is_ok());
    }

    #[test]
    fn untrusted_means_empty_and_bypassed() {
        let n = near();
        n.fill(Kind::User, "1", SNAP, n.generation());
        assert!(n.get(Kind::User, "1").is_some());
        n.set_trusted(false);
        assert!(n.get(Kind::User, "1").is_none());
        n.fill(Kind::User, "1", SNAP, n.generation());
        assert!(n.is_empty(), "no fills while untrusted");
    }

    #[test]
    fn a_fill_that_raced_an_invalidation_is_refused() {
        let n = near();
        let gen = n.generation();
        n.invalidate_user("1");
        n.fill(Kind::User, "1", SNAP, gen);
        assert!(n.get(Kind::User, "1").is_none());
    }

    #[test]
    fn the_js_words_move_with_every_invalidation_and_change_of_trust() {
        let n = NearCache::new(Duration::from_secs(5), 10, vec![]);
        let w = n.shared_words();
        let gen = || w.gen.load(Ordering::SeqCst);
        let trusted = || w.trusted.load(Ordering::SeqCst);
        assert_eq!(trusted(), 0);
        let last = std::cell::Cell::new(gen());
        let moved = |what: &str| {
            let now = gen();
            assert_ne!(now, last.get(), "{what} must move the JS generation");
            last.set(now);
        };
        n.set_trusted(true);
        assert_eq!(trusted(), 1);
        moved("trust");
        n.fill(Kind::User, "1", SNAP, n.generation());
        assert_eq!(gen(), last.get(), "a fill is no invalidation");
        n.invalidate_user("1");
        moved("a user invalidation");
        n.invalidate_role("1");
        moved("a role invalidation");
        n.invalidate_key("perm:user:2");
        moved("a key invalidation");
        n.invalidate_pattern("perm:*");
        moved("a pattern invalidation");
        n.clear();
        moved("clear");
        n.apply_message(CH_PERMISSIONS, r#"{"type":"user","userId":3}"#);
        moved("a permissions message");
        n.apply_message(CH_CACHE, r#"{"keys":["anything"]}"#);
        moved("a cache message");
        n.apply_message(CH_SESSIONS, r#"{"type":"user","userId":3}"#);
        assert_eq!(
            gen(),
            last.get(),
            "session messages do not touch permissions"
        );
        n.set_trusted(false);
        assert_eq!(trusted(), 0);
        moved("distrust");
    }

    #[test]
    fn peek_answers_a_live_entry_with_its_time_left_and_counts_no_miss() {
        let n = near();
        assert!(n.peek(Kind::User, "1").is_none());
        assert_eq!(n.stats.misses.load(Ordering::Relaxed), 0);
        n.fill(Kind::User, "1", SNAP, n.generation());
        let (snap, left) = n.peek(Kind::User, "1").unwrap();
        assert!(snap.has_module("INVENTORY"));
        assert!(left <= Duration::from_secs(5) && left > Duration::from_secs(4));
        assert_eq!(n.stats.hits.load(Ordering::Relaxed), 1);
        assert!(n.peek(Kind::Role, "1").is_none());
        n.set_trusted(false);
        assert!(n.peek(Kind::User, "1").is_none());
    }

    #[test]
    fn bounded_oldest_evicted_first() {
        let n = near();
        for id in ["1", "2", "3", "4"] {
            n.fill(Kind::User, id, SNAP, n.generation());
        }
        assert_eq!(n.len(), 3);
        assert!(n.get(Kind::User, "1").is_none());
        assert!(n.get(Kind::User, "4").is_some());
    }

    #[test]
    fn entries_expire() {
        let n = NearCache::new(Duration::from_millis(20), 10, vec![]);
        n.set_trusted(true);
        n.fill(Kind::User, "1", SNAP, n.generation());
        assert!(n.get(Kind::User, "1").is_some());
        std::thread::sleep(Duration::from_millis(30));
        assert!(n.get(Kind::User, "1").is_none());
    }

    #[test]
    fn messages_drop_the_matching_entries() {
        let n = near();
        let fill = |k, id: &str| n.fill(k, id, SNAP, n.generation());
        fill(Kind::User, "1");
        fill(Kind::User, "2");
        n.apply_message(
            CH_PERMISSIONS,
            r#"{"type":"user","userId":1,"origin":"a","ts":1}"#,
        );
        assert!(n.get(Kind::User, "1").is_none());
        assert!(n.get(Kind::User, "2").is_some());
        fill(Kind::Role, "7");
        n.apply_message(CH_PERMISSIONS, r#"{"type":"role","roleId":"7"}"#);
        assert!(
            n.is_empty(),
            "a role drops its snapshot and every user snapshot"
        );
        fill(Kind::User, "3");
        n.apply_message(CH_CACHE, r#"{"keys":["perm:user:3","other"]}"#);
        assert!(n.is_empty());
        fill(Kind::User, "4");
        fill(Kind::Role, "4");
        n.apply_message(CH_CACHE, r#"{"pattern":"perm:user:*"}"#);
        assert_eq!(n.len(), 1);
        n.apply_message(CH_SESSIONS, r#"{"type":"user","userId":4}"#);
        assert_eq!(n.len(), 1, "session messages do not touch permissions");
        n.apply_message(CH_PERMISSIONS, "garbage");
        assert!(
            n.is_empty(),
            "an unreadable permissions message clears everything"
        );
    }
}
