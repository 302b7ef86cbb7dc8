//! Versioned fills: a revocation is final (issue 15, item 1).
//!
//! Every data key `K` a loader fills (`session:{hash}`, `perm:user:{id}`, `perm:role:{id}`,
//! and the user's session index `session:user:{id}` for user-wide revocations) has a revision
//! key in its Cluster slot ([`rev_key`]): the server's time in ms of `K`'s last revocation,
//! kept strictly increasing (`new = max(old + 1, now)`), with a TTL of [`REV_TTL_MS`].
//!
//! - A hit stays one GET. A miss asks [`Store::miss_read`]: `[value or nil, rev(K) or "0",
//!   now]` atomically, in `K`'s slot. The load carries (rev, T = now).
//! - The fill ([`Store::guarded_fill`], `session_fill`) writes only if `rev(K)` still equals
//!   what the miss saw and `now − T` < [`MAX_LOAD_MS`]; else the value goes to its caller
//!   uncached. Every revocation bumps the revision in the same script as its DEL.
//! - Why [`REV_TTL_MS`] = 65 min: a revision must outlive every load that could be refused
//!   by it. A load older than [`MAX_LOAD_MS`] (REV_TTL − 5 min) is never cached, so a
//!   revision bumped after a miss is still there when any fill of that load checks it; and
//!   it is longer than any data TTL of these families (sessions 1 h, snapshots 5 min), so a
//!   revision never has to outlive data filled under an older one (its expiry reads as "0",
//!   which a miss after that sees too).
//! - On Cluster, keys whose revision cannot share their slot (see [`same_slot`]) are never
//!   cached by a fill (safe); their revocation bumps with a call of its own.
//!
//! The general cache (src/store/cache.rs) uses the same revisions, with two additions:
//!
//! - Its miss read (cache_miss_read.lua) creates the revision key when absent (value "0",
//!   which reads like an absent one) and renews its TTL, one write per miss. So every load in
//!   flight has a revision key for at least [`MAX_LOAD_MS`], even for a key that has no value
//!   yet. `invalidatePattern` cannot find such a load by a SCAN of the data keys; it also
//!   SCANs (on every Cluster primary) for the revision keys of matching keys — both forms of
//!   [`rev_key`], `rev:{K}` and `rev:{S}:K`, with one glob `rev:{*<pattern>*` (braces are
//!   literal in a Redis glob; the prefix is glob-escaped), each hit parsed back to its K and
//!   kept only if K matches and names the hit exactly — and bumps every revision found, in
//!   the same script as the DEL of its key. A load whose miss read completed before the call
//!   is always found (SCAN returns every key present for the whole iteration). Keys of the
//!   `rev:` family itself and wrap's leases are never deleted by a pattern. Alternatives
//!   considered: a registry set of in-flight loads (a hot key on Cluster, and one more round
//!   trip per load), or bumping a per-pattern generation (a pattern is not a key; every fill
//!   would have to check every pattern).
//! - `invalidateKeys` bumps each key's revision in the same script as its DEL, as `del` does.
//! - wrap's `lock` keeps a lease key next to the revision key (`wrap-lease:` in place of
//!   `rev:`, the same hash tag, so the same slot): taken by the miss read (SET NX PX), released
//!   by the fill's script (compare-and-delete on the owner id).

use std::sync::LazyLock;
use std::time::Duration;

use super::memory::MemData;
use super::script::Script;
use super::{Backend, Store};
use crate::error::{CacheError, CacheResult};
use crate::names::keys::rev_key;
use crate::names::slot::same_slot;

/// A revision key's TTL: longer than any data TTL of the families it guards (1 h), and than
/// any load that may still write ([`MAX_LOAD_MS`]).
pub const REV_TTL_MS: i64 = 65 * 60 * 1000;
/// A load whose miss is older than this is not cached (its revision could have expired).
pub const MAX_LOAD_MS: i64 = REV_TTL_MS - 5 * 60 * 1000;
/// Clocks of two Cluster nodes may differ by this much (the user-wide check of a session
/// fill compares times of two nodes there).
pub const SKEW_MS: i64 = 1000;
/// The revision a miss reports when the key cannot be guarded (never equals a real one).
pub const NO_GUARD: &str = "-";

/// A script with the revision prelude in front.
macro_rules! rev_script {
    ($($file:literal),+) => {
        concat!(include_str!("scripts/revision_prelude.lua"), $(include_str!($file)),+)
    };
}
pub(crate) use rev_script;

static MISS_READ: LazyLock<Script> =
    LazyLock::new(|| Script::new(rev_script!("scripts/rev_miss_read.lua")));
static FILL: LazyLock<Script> = LazyLock::new(|| Script::new(rev_script!("scripts/rev_fill.lua")));
pub(crate) static REVOKE: LazyLock<Script> =
    LazyLock::new(|| Script::new(rev_script!("scripts/rev_revoke.lua")));
pub(crate) static BUMP: LazyLock<Script> =
    LazyLock::new(|| Script::new(rev_script!("scripts/rev_bump.lua")));

/// What a miss read found.
pub struct MissRead {
    /// A value written since the first read missed: a hit after all.
    pub value: Option<String>,
    /// The key's revision ("0": never revoked, [`NO_GUARD`]: cannot be guarded).
    pub rev: String,
    /// The server's time of the read (ms); the memory store's own clock for memory://.
    pub t: i64,
}

/// Checks the (rev, T) a caller hands back to a fill: what [`Store::miss_read`] gave.
pub fn check_seen(rev: &str, t: &str) -> CacheResult<i64> {
    let ok_rev = rev == NO_GUARD
        || (!rev.is_empty() && rev.len() <= 20 && rev.bytes().all(|b| b.is_ascii_digit()));
    let t = t.parse::<i64>().ok().filter(|t| *t >= 0);
    match t {
        Some(t) if ok_rev => Ok(t),
        _ => Err(CacheError::InvalidArg(
            "rev and t must be what the miss read answered".into(),
        )),
    }
}

/// The memory store's revision of `rev_key` ("0" when none).
pub fn mem_rev(d: &mut MemData, rev_key: &str) -> CacheResult<String> {
    Ok(d.get_str(rev_key)?.unwrap_or_else(|| "0".to_string()))
}

/// `rev_bump` of revision_prelude.lua on the memory store.
pub fn mem_rev_bump(d: &mut MemData, rev_key: &str) -> CacheResult<i64> {
    let old = mem_rev(d, rev_key)?.parse::<i64>().unwrap_or(0);
    let new = (old + 1).max(crate::store::memory::now_ms());
    d.set_str(
        rev_key,
        new.to_string(),
        Some(Duration::from_millis(REV_TTL_MS as u64)),
    );
    Ok(new)
}

/// `rev_unchanged` of revision_prelude.lua on the memory store.
pub fn mem_rev_unchanged(d: &mut MemData, rev_key: &str, seen: &str, t: i64) -> CacheResult<bool> {
    Ok(mem_rev(d, rev_key)? == seen && crate::store::memory::now_ms() - t < MAX_LOAD_MS)
}

impl Store {
    /// The revision key of a stored key (keyPrefix applied).
    pub fn rev_of(&self, stored_key: &str) -> String {
        rev_key(self.prefix(), stored_key)
    }

    /// True when a script may name `stored_key` and its revision together (always, but on a
    /// Cluster where they cannot share a slot).
    pub fn rev_colocated(&self, stored_key: &str) -> bool {
        self.cluster().is_none() || same_slot(stored_key, &self.rev_of(stored_key))
    }

    /// The miss read of `key` (unprefixed): value, revision and time, atomically.
    pub async fn miss_read(&self, key: &str) -> CacheResult<MissRead> {
        let k = self.key(key);
        let rk = self.rev_of(&k);
        match &self.backend {
            Backend::Redis(r) => {
                if !self.rev_colocated(&k) {
                    let value = self.get(key).await?;
                    return Ok(MissRead {
                        value,
                        rev: NO_GUARD.into(),
                        t: 0,
                    });
                }
                let (value, rev, t): (Option<String>, String, String) =
                    r.script(&MISS_READ, &[&k, &rk], &[]).await?;
                let t = t
                    .parse()
                    .map_err(|_| CacheError::Redis("miss read: bad time".into()))?;
                Ok(MissRead { value, rev, t })
            }
            Backend::Memory(m) => m.with(|d| {
                Ok(MissRead {
                    value: d.get_str(&k)?,
                    rev: mem_rev(d, &rk)?,
                    t: crate::store::memory::now_ms(),
                })
            }),
        }
    }

    /// A loader's fill of `key` (unprefixed): written for `ttl` only if nothing revoked the
    /// key since the miss read that answered (`seen`, `t`) → whether it was written.
    pub async fn guarded_fill(
        &self,
        key: &str,
        json: &str,
        ttl: Duration,
        seen: &str,
        t: i64,
    ) -> CacheResult<bool> {
        self.check_value("value", json)?;
        if seen == NO_GUARD {
            return Ok(false);
        }
        let k = self.key(key);
        let rk = self.rev_of(&k);
        let ttl_ms = (ttl.as_millis() as u64).max(1);
        match &self.backend {
            Backend::Redis(r) => {
                if !self.rev_colocated(&k) {
                    return Ok(false);
                }
                let (ttl_s, t_s, max) =
                    (ttl_ms.to_string(), t.to_string(), MAX_LOAD_MS.to_string());
                r.script::<i64>(&FILL, &[&k, &rk], &[json, &ttl_s, seen, &t_s, &max])
                    .await
                    .map(|n| n == 1)
            }
            Backend::Memory(m) => m.with(|d| {
                if !mem_rev_unchanged(d, &rk, seen, t)? {
                    return Ok(false);
                }
                d.set_str(&k, json.to_string(), Some(Duration::from_millis(ttl_ms)));
                Ok(true)
            }),
        }
    }

    /// A revocation of `key` (unprefixed): bumps its revision, then deletes it → the value it
    /// held. The bump happens whether or not the key exists (a load may be in flight).
    pub async fn revoke(&self, key: &str) -> CacheResult<Option<String>> {
        let k = self.key(key);
        self.revoke_stored(&k).await
    }

    /// [`revoke`](Self::revoke) of a stored key (keyPrefix applied).
    pub async fn revoke_stored(&self, k: &str) -> CacheResult<Option<String>> {
        let rk = self.rev_of(k);
        let ttl = REV_TTL_MS.to_string();
        match &self.backend {
            Backend::Redis(r) => {
                if self.rev_colocated(k) {
                    return r.script(&REVOKE, &[k, &rk], &[&ttl]).await;
                }
                // not co-located (Cluster only): no fill of this key is ever cached
                r.script::<String>(&BUMP, &[&rk], &[&ttl]).await?;
                r.script(&REVOKE, &[k], &[&ttl]).await
            }
            Backend::Memory(m) => m.with(|d| {
                mem_rev_bump(d, &rk)?;
                let v = d.get_str(k).unwrap_or(None);
                d.del(k);
                Ok(v)
            }),
        }
    }

    /// Bumps the revision of a stored key alone (no DEL).
    pub async fn rev_bump_stored(&self, k: &str) -> CacheResult<()> {
        let rk = self.rev_of(k);
        match &self.backend {
            Backend::Redis(r) => r
                .script::<String>(&BUMP, &[&rk], &[&REV_TTL_MS.to_string()])
                .await
                .map(|_| ()),
            Backend::Memory(m) => m.with(|d| mem_rev_bump(d, &rk).map(|_| ())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seen_revisions_are_checked() {
        assert_eq!(check_seen("0", "12").unwrap(), 12);
        assert_eq!(
            check_seen("1733400000123", "1733400000123").unwrap(),
            1733400000123
        );
        assert_eq!(check_seen(NO_GUARD, "0").unwrap(), 0);
        for (r, t) in [("", "1"), ("x", "1"), ("1", "-1"), ("1", "a"), ("1", "")] {
            assert_eq!(
                check_seen(r, t).unwrap_err().code(),
                "ERR_INVALID_ARG",
                "{r:?} {t:?}"
            );
        }
        assert!(check_seen(&"9".repeat(21), "1").is_err());
    }

    #[test]
    fn memory_revisions_increase_strictly_and_expire() {
        let mut d = MemData::default();
        assert_eq!(mem_rev(&mut d, "rev:{k}").unwrap(), "0");
        let a = mem_rev_bump(&mut d, "rev:{k}").unwrap();
        let b = mem_rev_bump(&mut d, "rev:{k}").unwrap();
        assert!(b > a && a >= 1, "{a} {b}");
        let ttl = d.pttl("rev:{k}");
        assert!(ttl > MAX_LOAD_MS && ttl <= REV_TTL_MS, "{ttl}");
        let seen = mem_rev(&mut d, "rev:{k}").unwrap();
        let t = crate::store::memory::now_ms();
        assert!(mem_rev_unchanged(&mut d, "rev:{k}", &seen, t).unwrap());
        assert!(!mem_rev_unchanged(&mut d, "rev:{k}", "0", t).unwrap());
        assert!(!mem_rev_unchanged(&mut d, "rev:{k}", &seen, t - MAX_LOAD_MS).unwrap());
        mem_rev_bump(&mut d, "rev:{k}").unwrap();
        assert!(!mem_rev_unchanged(&mut d, "rev:{k}", &seen, t).unwrap());
    }
}
