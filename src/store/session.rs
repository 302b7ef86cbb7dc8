//! Session operations of the store: one script (Redis) or one critical section (memory) each.

use std::collections::HashSet;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use super::codec::cmd;
use super::memory::{MemData, MemVal, ZSet};
use super::revision::MAX_LOAD_MS;
use super::revision::{mem_rev, mem_rev_bump, mem_rev_unchanged, rev_script, NO_GUARD, REV_TTL_MS};
use super::script::{Script, ScriptCall};
use super::{Backend, Store};
use crate::error::{CacheError, CacheResult};
use crate::names::glob::{glob_escape, glob_match};
use crate::names::keys::{check_token_hash, session_key, session_user_key};

/// A script that touches a user's session index: the shared prelude (`now_ms`, `zindex`: the
/// conversion of the previous version's plain set) in front of its own body.
macro_rules! index_script {
    ($($file:literal),+) => {
        concat!(
            include_str!("scripts/session_index_prelude.lua"),
            $(include_str!($file)),+
        )
    };
}
pub(crate) use index_script;

static PUT: LazyLock<Script> =
    LazyLock::new(|| Script::new(index_script!("scripts/session_put.lua")));
static REMOVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(rev_script!(
        "scripts/session_index_prelude.lua",
        "scripts/session_remove.lua"
    ))
});
static REMOVE_USER: LazyLock<Script> =
    LazyLock::new(|| Script::new(rev_script!("scripts/session_remove_user.lua")));
static FILL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(rev_script!(
        "scripts/session_index_prelude.lua",
        "scripts/session_fill.lua"
    ))
});
static DROP_CORRUPT: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/session_drop_corrupt.lua")));
static LIST_USER: LazyLock<Script> =
    LazyLock::new(|| Script::new(index_script!("scripts/session_list_user.lua")));
static TOUCH: LazyLock<Script> =
    LazyLock::new(|| Script::new(index_script!("scripts/session_touch.lua")));

/// What a scan of a family of sessions does with the sessions it finds.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ScanMode {
    /// Counts them.
    Count,
    /// Reads them: (token hash, stored JSON) of each one still there when read.
    List,
    /// Removes each one as [`Store::session_remove`] does (its revision bumped, its user's
    /// index entry removed), so a write in flight cannot bring it back.
    Clear,
}

/// The bounds of a session scan. A scan that would pass one of them stops with an error
/// rather than answer a partial count or list as if it were whole.
#[derive(Clone, Copy, Debug)]
pub struct ScanBounds {
    /// Keys asked of each SCAN step (its COUNT).
    pub count: usize,
    /// Keys the scan may visit in all (steps × `count`, every primary together).
    pub max_visited: u64,
    /// Sessions a count or list may find (a list holds them all in memory).
    pub max_found: usize,
    /// Time the whole scan may take.
    pub deadline: Duration,
}

/// What a session scan found.
#[derive(Debug, Default)]
pub struct ScanOut {
    /// Sessions counted, read or removed.
    pub n: u64,
    /// With [`ScanMode::List`]: (token hash, stored JSON).
    pub found: Vec<(String, String)>,
}

/// Puts session `hash` into the user index `set` of the memory store, expiring with it in
/// `ttl_ms` (expired entries pruned; the index lives at least as long as its newest session).
fn mem_index_add(d: &mut MemData, set: &str, hash: &str, ttl_ms: u64) -> CacheResult<()> {
    let now = crate::store::memory::now_ms();
    let z = mem_index(d, set, now)?;
    z.remove_below(now);
    z.insert(hash, now + ttl_ms as i64);
    if d.pttl(set) < ttl_ms as i64 {
        d.pexpire(set, Duration::from_millis(ttl_ms));
    }
    Ok(())
}

/// The user's session index in the memory store, as a sorted set: what `zindex` in
/// session_index_prelude.lua does (a plain set converted, any other type dropped).
fn mem_index<'a>(d: &'a mut MemData, key: &str, now: i64) -> CacheResult<&'a mut ZSet> {
    let converted = match d.val(key) {
        Some(MemVal::Set(members)) => Some(std::mem::take(members)),
        Some(MemVal::ZSet(_)) | None => None,
        Some(_) => Some(Default::default()),
    };
    if let Some(members) = converted {
        let left = match d.pttl(key) {
            l if l < 0 => 3_600_000,
            l => l,
        };
        d.del(key);
        let z = d.zset(key)?;
        for m in &members {
            z.insert(m, now + left);
        }
        if !members.is_empty() {
            d.pexpire(key, Duration::from_millis(left as u64));
        }
    }
    d.zset(key)
}

/// Removes `key` when it holds an empty sorted set (Redis removes emptied keys).
fn mem_drop_empty(d: &mut MemData, key: &str) {
    if matches!(d.val(key), Some(MemVal::ZSet(z)) if z.is_empty()) {
        d.del(key);
    }
}

/// The user id a stored session names (`user_id`, else `userId`), as its set key spells it.
pub fn user_of(json: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    let uid = match v.get("user_id") {
        Some(u) if !u.is_null() => u,
        _ => v.get("userId")?,
    };
    match uid {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => n
            .as_i64()
            .map(|i| i.to_string())
            .or_else(|| n.as_f64().map(|f| format!("{}", f as i64))),
        _ => None,
    }
}

impl Store {
    /// Deletes `key` (unprefixed) only while it still holds `value`, the unusable value a read
    /// found there (a corrupt session or permissions snapshot); true if it was deleted. A
    /// value written meanwhile (the loader's fill) is kept.
    pub async fn drop_if_equal(&self, key: &str, value: &str) -> CacheResult<bool> {
        let k = self.key(key);
        match &self.backend {
            Backend::Redis(r) => r
                .script::<i64>(&DROP_CORRUPT, &[&k], &[value])
                .await
                .map(|n| n > 0),
            Backend::Memory(m) => m.with(|d| {
                if d.get_str(&k)?.as_deref() == Some(value) {
                    Ok(d.del(&k))
                } else {
                    Ok(false)
                }
            }),
        }
    }

    /// [`session_put`](Self::session_put) as one script call for the pipelined transport
    /// (the value's size is checked by the caller first); any reply means success.
    pub fn session_put_call(
        &self,
        hash: &str,
        json: &str,
        ttl: Duration,
        user_id: Option<&str>,
    ) -> ScriptCall {
        let key = self.key(&session_key(hash));
        let set = user_id.map(|u| self.key(&session_user_key(u)));
        let ttl_ms = (ttl.as_millis() as u64).max(1).to_string();
        let mut keys = vec![key.as_str()];
        keys.extend(set.as_deref());
        ScriptCall::new(&PUT, &keys, &[json, &ttl_ms, hash])
    }

    /// Stores `json` at `session:{hash}` for `ttl` and adds `hash` to the user's index (a
    /// sorted set scored by expiry), whose TTL is raised to at least `ttl`; members whose
    /// session has expired leave it on the way. O(log n + expired) for n sessions.
    pub async fn session_put(
        &self,
        hash: &str,
        json: &str,
        ttl: Duration,
        user_id: Option<&str>,
    ) -> CacheResult<()> {
        check_token_hash("tokenHash", hash)?;
        self.check_value("session data", json)?;
        let key = self.key(&session_key(hash));
        let set = user_id.map(|u| self.key(&session_user_key(u)));
        let ttl_ms = (ttl.as_millis() as u64).max(1);
        if let Some(c) = self.cluster() {
            return self
                .cluster_session_put(c, hash, json, ttl_ms, user_id)
                .await;
        }
        match &self.backend {
            Backend::Redis(r) => {
                let mut keys = vec![key.as_str()];
                keys.extend(set.as_deref());
                let ttl_s = ttl_ms.to_string();
                r.script::<i64>(&PUT, &keys, &[json, &ttl_s, hash])
                    .await
                    .map(|_| ())
            }
            Backend::Memory(m) => m.with(|d| {
                d.set_str(&key, json.to_string(), Some(Duration::from_millis(ttl_ms)));
                if let Some(set) = &set {
                    mem_index_add(d, set, hash, ttl_ms)?;
                }
                Ok(())
            }),
        }
    }

    /// A loader's fill of a session ([`session_put`](Self::session_put), guarded): written
    /// only if neither the session nor its user's sessions were revoked since the miss read
    /// that answered (`seen`, `t`) → whether it was written.
    pub async fn session_fill(
        &self,
        hash: &str,
        json: &str,
        ttl: Duration,
        user_id: Option<&str>,
        seen: &str,
        t: i64,
    ) -> CacheResult<bool> {
        check_token_hash("tokenHash", hash)?;
        self.check_value("session data", json)?;
        if seen == NO_GUARD {
            return Ok(false);
        }
        let ttl_ms = (ttl.as_millis() as u64).max(1);
        if let Some(c) = self.cluster() {
            return self
                .cluster_session_fill(c, hash, json, ttl_ms, user_id, seen, t)
                .await;
        }
        let key = self.key(&session_key(hash));
        let rev = self.rev_of(&key);
        let set = user_id.map(|u| self.key(&session_user_key(u)));
        let set_rev = set.as_deref().map(|s| self.rev_of(s));
        match &self.backend {
            Backend::Redis(r) => {
                let mut keys = vec![key.as_str(), rev.as_str()];
                keys.extend(set.as_deref());
                keys.extend(set_rev.as_deref());
                let (ttl_s, t_s, max) =
                    (ttl_ms.to_string(), t.to_string(), MAX_LOAD_MS.to_string());
                r.script::<i64>(&FILL, &keys, &[json, &ttl_s, hash, seen, &t_s, &max])
                    .await
                    .map(|n| n == 1)
            }
            Backend::Memory(m) => m.with(|d| {
                if !mem_rev_unchanged(d, &rev, seen, t)? {
                    return Ok(false);
                }
                if let Some(set_rev) = &set_rev {
                    let user_rev = mem_rev(d, set_rev)?;
                    if user_rev != "0" && user_rev.parse::<i64>().unwrap_or(i64::MAX) >= t {
                        return Ok(false);
                    }
                }
                d.set_str(&key, json.to_string(), Some(Duration::from_millis(ttl_ms)));
                if let Some(set) = &set {
                    mem_index_add(d, set, hash, ttl_ms)?;
                }
                Ok(true)
            }),
        }
    }

    pub async fn session_get(&self, hash: &str) -> CacheResult<Option<String>> {
        self.get(&session_key(hash)).await
    }

    /// Removes a session and takes it out of its user's index; true if it existed.
    pub async fn session_remove(&self, hash: &str) -> CacheResult<bool> {
        // Every caller (sessionCache, pubsub.invalidateSession) goes through here: a hash
        // holding ':' could name the user's index (`session:user:{id}`).
        check_token_hash("tokenHash", hash)?;
        if let Some(c) = self.cluster() {
            return self.cluster_session_remove(c, hash).await;
        }
        let key = self.key(&session_key(hash));
        let rev = self.rev_of(&key);
        let set_prefix = self.key("session:user:");
        match &self.backend {
            Backend::Redis(r) => r
                .script::<i64>(
                    &REMOVE,
                    &[&key, &rev],
                    &[hash, &set_prefix, &REV_TTL_MS.to_string()],
                )
                .await
                .map(|n| n > 0),
            Backend::Memory(m) => m.with(|d| {
                mem_rev_bump(d, &rev)?;
                let Some(json) = d.get_str(&key)? else {
                    return Ok(false);
                };
                d.del(&key);
                if let Some(uid) = user_of(&json) {
                    let index = format!("{set_prefix}{uid}");
                    mem_index(d, &index, crate::store::memory::now_ms())?.remove(hash);
                    mem_drop_empty(d, &index);
                }
                Ok(true)
            }),
        }
    }

    /// Removes every session of a user, atomically; returns how many existed. The index's
    /// revision is bumped first: every fill of the user's sessions whose load began before is
    /// refused (the fill checks it atomically with its SET, so the sessions' own revisions
    /// need no bump here; on Cluster, where they are separate steps, they are bumped).
    pub async fn session_remove_user(&self, user_id: &str) -> CacheResult<u32> {
        if let Some(c) = self.cluster() {
            return self.cluster_session_remove_user(c, user_id).await;
        }
        let set = self.key(&session_user_key(user_id));
        let set_rev = self.rev_of(&set);
        let session_prefix = self.key("session:");
        match &self.backend {
            Backend::Redis(r) => {
                let ttl = REV_TTL_MS.to_string();
                r.script::<u32>(&REMOVE_USER, &[&set, &set_rev], &[&session_prefix, &ttl])
                    .await
            }
            Backend::Memory(m) => m.with(|d| {
                mem_rev_bump(d, &set_rev)?;
                let mut n = 0;
                for member in mem_index(d, &set, crate::store::memory::now_ms())?.members() {
                    if d.del(&format!("{session_prefix}{member}")) {
                        n += 1;
                    }
                }
                d.del(&set);
                Ok(n)
            }),
        }
    }

    /// The token hashes of a user's live sessions (expired members are pruned).
    pub async fn session_list_user(&self, user_id: &str) -> CacheResult<Vec<String>> {
        if let Some(c) = self.cluster() {
            return self.cluster_session_list_user(c, user_id).await;
        }
        let set = self.key(&session_user_key(user_id));
        let session_prefix = self.key("session:");
        match &self.backend {
            Backend::Redis(r) => {
                r.script::<Vec<String>>(&LIST_USER, &[&set], &[&session_prefix])
                    .await
            }
            Backend::Memory(m) => m.with(|d| {
                let now = crate::store::memory::now_ms();
                mem_index(d, &set, now)?.remove_below(now);
                let mut live = Vec::new();
                for member in d.zset(&set)?.members() {
                    if d.exists(&format!("{session_prefix}{member}")) {
                        live.push(member);
                    } else {
                        d.zset(&set)?.remove(&member);
                    }
                }
                mem_drop_empty(d, &set);
                Ok(live)
            }),
        }
    }
}

impl Store {
    /// Refreshes a session's TTL without rewriting it (PEXPIRE) and keeps its user's index
    /// entry scored with the new expiry (raising the index's TTL); true if the session exists.
    /// Nothing is written for a session that is gone.
    pub async fn session_touch(
        &self,
        hash: &str,
        ttl: Duration,
        user_id: Option<&str>,
    ) -> CacheResult<bool> {
        check_token_hash("tokenHash", hash)?;
        let key = self.key(&session_key(hash));
        let set = user_id.map(|u| self.key(&session_user_key(u)));
        let ttl_ms = (ttl.as_millis() as u64).max(1);
        if let Some(c) = self.cluster() {
            return self.cluster_session_touch(c, hash, ttl_ms, user_id).await;
        }
        match &self.backend {
            Backend::Redis(r) => {
                let mut keys = vec![key.as_str()];
                keys.extend(set.as_deref());
                let ttl_s = ttl_ms.to_string();
                r.script::<i64>(&TOUCH, &keys, &[&ttl_s, hash])
                    .await
                    .map(|n| n == 1)
            }
            Backend::Memory(m) => m.with(|d| {
                if !d.pexpire(&key, Duration::from_millis(ttl_ms)) {
                    return Ok(false);
                }
                if let Some(set) = &set {
                    mem_index_add(d, set, hash, ttl_ms)?;
                }
                Ok(true)
            }),
        }
    }

    /// Counts, reads or removes every session whose token hash starts with `member_prefix`
    /// (keyPrefix applied), by SCAN MATCH with COUNT `bounds.count` on one Redis or on every
    /// primary of a Cluster, never KEYS. Past `bounds` it stops with an error: ETIMEDOUT past
    /// the deadline, ERR_VALUE_TOO_LARGE past the keys it may visit or the sessions it may
    /// find (a clear keeps what it removed before stopping).
    pub async fn session_scan(
        &self,
        member_prefix: &str,
        mode: ScanMode,
        bounds: ScanBounds,
    ) -> CacheResult<ScanOut> {
        crate::names::keys::check_id("prefix", member_prefix)?;
        let family = self.key("session:");
        let pattern = format!("{}{}*", glob_escape(&family), glob_escape(member_prefix));
        let started = Instant::now();
        let mut scan = Scan {
            mode,
            bounds,
            started,
            family_len: family.len(),
            seen: HashSet::new(),
            out: ScanOut::default(),
            visited: 0,
        };
        if let Some(c) = self.cluster() {
            for node in c.primaries().await? {
                let mut cursor: u64 = 0;
                loop {
                    let (next, keys): (u64, Vec<String>) = c
                        .query_on(&node, &scan_cmd(cursor, &pattern, bounds.count))
                        .await?;
                    scan.step(self, keys).await?;
                    cursor = next;
                    if cursor == 0 {
                        break;
                    }
                }
            }
            return Ok(scan.out);
        }
        match &self.backend {
            Backend::Redis(r) => {
                let mut cursor: u64 = 0;
                loop {
                    let (next, keys): (u64, Vec<String>) =
                        r.query(&scan_cmd(cursor, &pattern, bounds.count)).await?;
                    scan.step(self, keys).await?;
                    cursor = next;
                    if cursor == 0 {
                        return Ok(scan.out);
                    }
                }
            }
            Backend::Memory(m) => {
                // The embedded store has no cursor: its keys are read at once and taken in
                // steps of `count`, so the bounds mean the same as on Redis.
                let keys: Vec<String> = m.with(|d| {
                    d.keys()
                        .into_iter()
                        .filter(|k| glob_match(pattern.as_bytes(), k.as_bytes()))
                        .collect()
                });
                for chunk in keys.chunks(bounds.count.max(1)) {
                    scan.step(self, chunk.to_vec()).await?;
                }
                if keys.is_empty() {
                    scan.step(self, Vec::new()).await?;
                }
                Ok(scan.out)
            }
        }
    }
}

/// One SCAN step: `SCAN cursor MATCH pattern COUNT count`.
fn scan_cmd(cursor: u64, pattern: &str, count: usize) -> redis::Cmd {
    let mut c = cmd("SCAN");
    c.arg(cursor)
        .arg("MATCH")
        .arg(pattern)
        .arg("COUNT")
        .arg(count);
    c
}

/// The state of one session scan (see [`Store::session_scan`]).
struct Scan {
    mode: ScanMode,
    bounds: ScanBounds,
    started: Instant,
    family_len: usize,
    seen: HashSet<String>,
    out: ScanOut,
    visited: u64,
}

impl Scan {
    /// Takes one SCAN step's keys (full names), after checking the bounds.
    async fn step(&mut self, store: &Store, keys: Vec<String>) -> CacheResult<()> {
        self.visited += self.bounds.count as u64;
        if self.visited > self.bounds.max_visited {
            return Err(CacheError::TooLarge(format!(
                "the session scan visited more than {} keys without finishing",
                self.bounds.max_visited
            )));
        }
        if self.started.elapsed() > self.bounds.deadline {
            return Err(CacheError::Timeout(
                self.started.elapsed().as_millis() as u64
            ));
        }
        for k in keys {
            let Some(hash) = k.get(self.family_len..) else {
                continue;
            };
            // A SCAN may name a key twice (while the table is rehashed): counted once.
            if check_token_hash("tokenHash", hash).is_err() || self.seen.contains(hash) {
                continue;
            }
            match self.mode {
                ScanMode::Clear => {
                    if store.session_remove(hash).await? {
                        self.out.n += 1;
                    }
                    continue;
                }
                ScanMode::Count => self.out.n += 1,
                ScanMode::List => {
                    if let Some(json) = store.session_get(hash).await? {
                        self.out.n += 1;
                        self.out.found.push((hash.to_string(), json));
                    }
                }
            }
            if self.out.n as usize > self.bounds.max_found {
                return Err(CacheError::TooLarge(format!(
                    "more than {} sessions: the scan stops there",
                    self.bounds.max_found
                )));
            }
            self.seen.insert(hash.to_string());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_of_reads_both_spellings() {
        assert_eq!(user_of(r#"{"user_id":123}"#).as_deref(), Some("123"));
        assert_eq!(user_of(r#"{"userId":"u-1"}"#).as_deref(), Some("u-1"));
        assert_eq!(
            user_of(r#"{"user_id":null,"userId":7}"#).as_deref(),
            Some("7")
        );
        assert_eq!(user_of(r#"{"x":1}"#), None);
        assert_eq!(user_of("not json"), None);
    }
}
