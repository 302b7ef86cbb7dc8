//! The general cache's operations: `get`/`set` are the store's plain GET and SET PX; `wrap`'s
//! miss read and fill are revision-guarded ([`super::revision`], which explains the scheme and
//! what this file adds to it); `del`, `invalidateKeys` and `invalidatePattern` are revocations
//! (the keys' revisions bumped in the same step as their DEL), so a fill whose load began
//! before them is refused, on any node. wrap's `lock` adds a lease key per data key, in its
//! slot: one node loads, the others wait for its fill.

use std::collections::BTreeSet;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use super::codec::cmd;
use super::memory::now_ms;
use super::revision::{
    mem_rev, mem_rev_bump, mem_rev_unchanged, rev_script, MissRead, MAX_LOAD_MS, NO_GUARD,
    REV_TTL_MS,
};
use super::script::Script;
use super::{Backend, Store};
use crate::error::{CacheError, CacheResult};
use crate::names::glob::{glob_escape, glob_match};

/// Keys per script call of [`Store::cache_del`] on one server.
const DEL_BATCH: usize = 100;
/// Keys asked of each SCAN step of [`Store::cache_revoke_pattern`].
const SCAN_COUNT: usize = 1000;
/// A pattern revocation stops (with ETIMEDOUT) after this long or this many SCAN steps.
const PATTERN_DEADLINE: Duration = Duration::from_secs(60);
const MAX_SCAN_STEPS: usize = 1_000_000;
/// The family of the revision keys (names/keys.rs rev_key) and of wrap's lease keys, which
/// are named like them (same hash tag, so the same slot) under this first segment.
const REV_FAMILY: &str = "rev:";
const LEASE_FAMILY: &str = "wrap-lease:";

static DEL: LazyLock<Script> = LazyLock::new(|| Script::new(rev_script!("scripts/cache_del.lua")));
static MISS_READ: LazyLock<Script> =
    LazyLock::new(|| Script::new(rev_script!("scripts/cache_miss_read.lua")));
static FILL: LazyLock<Script> =
    LazyLock::new(|| Script::new(rev_script!("scripts/cache_fill.lua")));
static LEASE_RELEASE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/cache_lease_release.lua")));

/// What a lock-aware miss read did with the key's lease.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum LeaseState {
    /// Not asked (no `lock`), not possible (a value was there, or the key cannot be guarded),
    /// or refused by Redis (OOM): the caller loads on its own.
    None,
    /// Taken for the caller: it loads, and its fill releases the lease.
    Taken,
    /// Held by another caller: wait for its fill.
    Held,
}

impl LeaseState {
    /// The form JS reads: "1" taken, "0" held, "" none.
    pub fn as_str(self) -> &'static str {
        match self {
            LeaseState::None => "",
            LeaseState::Taken => "1",
            LeaseState::Held => "0",
        }
    }
}

/// A lease asked by a miss read: the owner's id and the lease's TTL.
pub struct Lease<'a> {
    pub owner: &'a str,
    pub ttl: Duration,
}

impl Store {
    /// The lease key of a stored key: named like its revision key, in the same slot.
    fn lease_of(&self, stored_key: &str) -> String {
        let rk = self.rev_of(stored_key);
        let p = self.prefix();
        format!("{p}{LEASE_FAMILY}{}", &rk[p.len() + REV_FAMILY.len()..])
    }

    /// True for the library's own revision and lease keys, which a pattern never deletes.
    fn is_guard_key(&self, stored_key: &str) -> bool {
        stored_key
            .strip_prefix(self.prefix())
            .is_some_and(|r| r.starts_with("rev:{") || r.starts_with(LEASE_FAMILY))
    }

    /// The miss read of wrap: value, revision (its key created or renewed, see
    /// cache_miss_read.lua) and time, and, with `lease`, the lease taken or found held.
    pub async fn cache_miss_read(
        &self,
        key: &str,
        lease: Option<Lease<'_>>,
    ) -> CacheResult<(MissRead, LeaseState)> {
        let k = self.key(key);
        let rk = self.rev_of(&k);
        let rev_ttl = REV_TTL_MS.to_string();
        match &self.backend {
            Backend::Redis(r) => {
                if !self.rev_colocated(&k) {
                    let value = self.get(key).await?;
                    let m = MissRead {
                        value,
                        rev: NO_GUARD.into(),
                        t: 0,
                    };
                    return Ok((m, LeaseState::None));
                }
                let lk = self.lease_of(&k);
                let (mut keys, mut argv) = (vec![k.as_str(), rk.as_str()], vec![rev_ttl.as_str()]);
                let lease_ms = lease
                    .as_ref()
                    .map(|l| (l.ttl.as_millis() as u64).to_string());
                if let (Some(l), Some(ms)) = (&lease, &lease_ms) {
                    keys.push(&lk);
                    argv.extend([l.owner, ms.as_str()]);
                }
                let (value, rev, t, state): (Option<String>, String, String, String) =
                    r.script(&MISS_READ, &keys, &argv).await?;
                let t = t
                    .parse()
                    .map_err(|_| CacheError::Redis("miss read: bad time".into()))?;
                let state = match state.as_str() {
                    "1" => LeaseState::Taken,
                    "0" => LeaseState::Held,
                    _ => LeaseState::None,
                };
                Ok((MissRead { value, rev, t }, state))
            }
            Backend::Memory(m) => m.with(|d| {
                let value = d.get_str(&k)?;
                let rev = mem_rev(d, &rk)?;
                d.set_str(
                    &rk,
                    rev.clone(),
                    Some(Duration::from_millis(REV_TTL_MS as u64)),
                );
                let mut state = LeaseState::None;
                if let (Some(l), None) = (&lease, &value) {
                    let lk = self.lease_of(&k);
                    state = if d.exists(&lk) {
                        LeaseState::Held
                    } else {
                        d.set_str(&lk, l.owner.to_string(), Some(l.ttl));
                        LeaseState::Taken
                    };
                }
                Ok((
                    MissRead {
                        value,
                        rev,
                        t: now_ms(),
                    },
                    state,
                ))
            }),
        }
    }

    /// wrap's fill of `key` (unprefixed): written for `ttl` only if nothing revoked the key
    /// since the miss read that answered (`seen`, `t`); the lease of `owner` (when given) is
    /// released in the same step → whether it was written.
    pub async fn cache_fill(
        &self,
        key: &str,
        json: &str,
        ttl: Duration,
        seen: (&str, i64),
        owner: Option<&str>,
    ) -> CacheResult<bool> {
        self.check_value("value", json)?;
        let (seen, t) = seen;
        let k = self.key(key);
        if seen == NO_GUARD || !self.rev_colocated(&k) {
            return Ok(false);
        }
        let rk = self.rev_of(&k);
        let lk = self.lease_of(&k);
        let ttl_ms = (ttl.as_millis() as u64).max(1);
        match &self.backend {
            Backend::Redis(r) => {
                let (ttl_s, t_s, max) =
                    (ttl_ms.to_string(), t.to_string(), MAX_LOAD_MS.to_string());
                let mut keys = vec![k.as_str(), rk.as_str()];
                if owner.is_some() {
                    keys.push(&lk);
                }
                let argv = [json, &ttl_s, seen, &t_s, &max, owner.unwrap_or("")];
                r.script::<i64>(&FILL, &keys, &argv).await.map(|n| n == 1)
            }
            Backend::Memory(m) => m.with(|d| {
                let ok = mem_rev_unchanged(d, &rk, seen, t)?;
                if ok {
                    d.set_str(&k, json.to_string(), Some(Duration::from_millis(ttl_ms)));
                }
                if owner.is_some() && d.get_str(&lk).ok().flatten().as_deref() == owner {
                    d.del(&lk);
                }
                Ok(ok)
            }),
        }
    }

    /// Releases `owner`'s lease on `key` (unprefixed) if it still holds it → whether it did.
    pub async fn cache_lease_release(&self, key: &str, owner: &str) -> CacheResult<bool> {
        let lk = self.lease_of(&self.key(key));
        match &self.backend {
            Backend::Redis(r) => r
                .script::<i64>(&LEASE_RELEASE, &[&lk], &[owner])
                .await
                .map(|n| n == 1),
            Backend::Memory(m) => m.with(|d| {
                if d.get_str(&lk).ok().flatten().as_deref() == Some(owner) {
                    return Ok(d.del(&lk));
                }
                Ok(false)
            }),
        }
    }

    /// Revokes and deletes `keys` (unprefixed) → how many existed.
    pub async fn cache_del(&self, keys: &[String]) -> CacheResult<u32> {
        let full: Vec<String> = keys.iter().map(|k| self.key(k)).collect();
        self.cache_del_stored(&full).await
    }

    /// [`cache_del`](Self::cache_del) of stored keys (keyPrefix applied). On a Cluster each
    /// key is its own call (a key and its revision share a slot; different keys need not).
    async fn cache_del_stored(&self, full: &[String]) -> CacheResult<u32> {
        let ttl = REV_TTL_MS.to_string();
        match &self.backend {
            Backend::Redis(r) => {
                let mut n = 0u32;
                if self.cluster().is_some() {
                    for k in full {
                        if self.rev_colocated(k) {
                            n += r
                                .script::<u32>(&DEL, &[k, &self.rev_of(k)], &[&ttl])
                                .await?;
                        } else if self.revoke_stored(k).await?.is_some() {
                            n += 1;
                        }
                    }
                    return Ok(n);
                }
                for chunk in full.chunks(DEL_BATCH) {
                    let revs: Vec<String> = chunk.iter().map(|k| self.rev_of(k)).collect();
                    let pairs: Vec<&str> = chunk
                        .iter()
                        .zip(&revs)
                        .flat_map(|(k, rk)| [k.as_str(), rk.as_str()])
                        .collect();
                    n += r.script::<u32>(&DEL, &pairs, &[&ttl]).await?;
                }
                Ok(n)
            }
            Backend::Memory(m) => m.with(|d| {
                let mut n = 0;
                for k in full {
                    mem_rev_bump(d, &self.rev_of(k))?;
                    n += u32::from(d.del(k));
                }
                Ok(n)
            }),
        }
    }

    /// The data key a key found by a pattern SCAN stands for, if it is to be revoked: a data
    /// key matching `full` (not one of the library's guard keys), or the data key of a
    /// revision key (`rev`) when that data key matches `full` (a load may be in flight).
    fn revocable(&self, found: &str, full: &str, rev: bool) -> Option<String> {
        let matches = |k: &str| glob_match(full.as_bytes(), k.as_bytes()) && !self.is_guard_key(k);
        if !rev {
            return matches(found).then(|| found.to_string());
        }
        // `rev:{K}`, or `rev:{S}:K` when K has a hash tag S (names/keys.rs rev_key): every
        // reading is tried, and kept only if it names `found` back.
        let body = found.strip_prefix(self.prefix())?.strip_prefix("rev:{")?;
        let tagless = body.strip_suffix('}').into_iter();
        let tagged = body.match_indices("}:").map(|(i, _)| &body[i + 2..]);
        tagless
            .chain(tagged)
            .find(|k| matches(k) && self.rev_of(k) == found)
            .map(str::to_string)
    }

    /// invalidatePattern: every key matching `keyPrefix + pattern` is revoked and deleted, and
    /// so is every such key that has a revision key but no value yet (a load in flight: wrap's
    /// miss read creates the revision key), by SCAN in steps on every primary (never KEYS)
    /// → how many keys existed.
    pub async fn cache_revoke_pattern(&self, pattern: &str) -> CacheResult<u64> {
        let esc = glob_escape(self.prefix());
        let full = format!("{esc}{pattern}");
        // both revision key forms of a matching K: `rev:{K}` and `rev:{S}:K` (braces are
        // literal in a Redis glob); what it over-matches is filtered by `revocable`
        let revs = format!("{esc}{REV_FAMILY}{{*{full}*");
        if let Backend::Memory(m) = &self.backend {
            return m.with(|d| {
                let mut doomed = BTreeSet::new();
                for k in d.keys() {
                    doomed.extend(self.revocable(&k, &full, false));
                    doomed.extend(self.revocable(&k, &full, true));
                }
                let mut n = 0u64;
                for k in &doomed {
                    mem_rev_bump(d, &self.rev_of(k))?;
                    n += u64::from(d.del(k));
                }
                Ok(n)
            });
        }
        let nodes: Vec<Option<(String, u16)>> = match self.cluster() {
            Some(c) => c.primaries().await?.into_iter().map(Some).collect(),
            None => vec![None],
        };
        let started = Instant::now();
        let mut removed = 0u64;
        for node in &nodes {
            // data keys first, then the revision keys (of loads in flight, and again of the
            // keys just deleted: a second bump is harmless)
            for (glob, rev) in [(&full, false), (&revs, true)] {
                let mut cursor = 0u64;
                for step in 0.. {
                    let (next, found) = self.scan_step(node.as_ref(), cursor, glob).await?;
                    let keys: Vec<String> = found
                        .iter()
                        .filter_map(|f| std::str::from_utf8(f).ok())
                        .filter_map(|f| self.revocable(f, &full, rev))
                        .collect();
                    if !keys.is_empty() {
                        removed += u64::from(self.cache_del_stored(&keys).await?);
                    }
                    cursor = next;
                    if cursor == 0 {
                        break;
                    }
                    if started.elapsed() > PATTERN_DEADLINE || step >= MAX_SCAN_STEPS {
                        return Err(CacheError::Timeout(started.elapsed().as_millis() as u64));
                    }
                }
            }
        }
        Ok(removed)
    }

    /// One SCAN step on the server (or the given Cluster primary).
    async fn scan_step(
        &self,
        node: Option<&(String, u16)>,
        cursor: u64,
        glob: &str,
    ) -> CacheResult<(u64, Vec<Vec<u8>>)> {
        let mut c = cmd("SCAN");
        c.arg(cursor)
            .arg("MATCH")
            .arg(glob)
            .arg("COUNT")
            .arg(SCAN_COUNT);
        match (&self.backend, node, self.cluster()) {
            (_, Some(n), Some(cl)) => cl.query_on(n, &c).await,
            (Backend::Redis(r), _, _) => r.query(&c).await,
            _ => Ok((0, Vec::new())),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::store::Store;

    fn memory(prefix: &str) -> Store {
        let cfg = Config::from_options(crate::config::NativeOptions {
            url: Some("memory://cache-unit".into()),
            key_prefix: Some(prefix.to_string()),
            ..Default::default()
        });
        Store::from_config(&cfg.unwrap()).unwrap().unwrap()
    }

    #[test]
    fn lease_keys_share_the_revision_slot_and_guard_keys_are_never_pattern_data() {
        for prefix in ["", "erp:", "{erp}:"] {
            let s = memory(prefix);
            for key in ["dash:1", "dash:{u7}:x", "a}b"] {
                let k = s.key(key);
                let lk = s.lease_of(&k);
                assert!(lk.starts_with(&format!("{prefix}wrap-lease:")), "{lk}");
                assert!(crate::names::slot::same_slot(&lk, &s.rev_of(&k)), "{lk}");
                assert!(s.is_guard_key(&lk) && s.is_guard_key(&s.rev_of(&k)));
                assert!(!s.is_guard_key(&k));
                let full = format!("{}dash:*", crate::names::glob::glob_escape(prefix));
                let want = crate::names::glob::glob_match(full.as_bytes(), k.as_bytes());
                let got = s.revocable(&s.rev_of(&k), &full, true);
                assert_eq!(got.as_deref(), want.then_some(k.as_str()), "{prefix} {key}");
                assert_eq!(s.revocable(&s.rev_of(&k), &full, false), None);
                assert_eq!(s.revocable(&lk, &full, true), None);
            }
        }
    }
}
