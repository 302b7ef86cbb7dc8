//! The general cache (`get`, `set`, `del`, `wrap`): the native half. Values arrive encoded
//! by lib/general_cache/stored.js (a type tag, then JSON or base64); this side checks keys, TTLs
//! and sizes, then reads or writes them as strings.

use std::time::Duration;

use napi::Env;
use napi_derive::napi;

use crate::bridge::{NativeCache, Reply};
use crate::error::{js, CacheError, CacheResult};
use crate::names::channels::check_key;
use crate::store::cache::Lease;
use crate::store::revision::check_seen;

use super::replies;

/// Most keys one `del` takes.
pub const MAX_DEL_KEYS: usize = 1000;
/// Longest TTL of a general cache entry (fresh + stale): 30 days.
pub const MAX_TTL_MS: f64 = 30.0 * 24.0 * 3600.0 * 1000.0;
/// Longest lease of wrap's `lock`: the longest loaderTimeoutMs (10 min) and a margin.
pub const MAX_LEASE_MS: f64 = 11.0 * 60.0 * 1000.0;
/// Longest lease owner id.
const MAX_OWNER_BYTES: usize = 64;

fn check_ttl(ttl_ms: f64) -> CacheResult<Duration> {
    if !ttl_ms.is_finite() || !(1.0..=MAX_TTL_MS).contains(&ttl_ms) {
        return Err(CacheError::OutOfRange(format!(
            "ttl must be 1 ms to 30 days (got {ttl_ms} ms)"
        )));
    }
    Ok(Duration::from_millis(ttl_ms as u64))
}

impl NativeCache {
    /// The checks of a write: key, TTL and value size → the TTL.
    fn cache_write(&self, key: &str, value: &str, ttl_ms: f64) -> CacheResult<Duration> {
        check_key(key)?;
        let ttl = check_ttl(ttl_ms)?;
        self.check_value("value", value)?;
        Ok(ttl)
    }
}

#[napi]
impl NativeCache {
    /// GET of `key` → the stored string or null.
    #[napi]
    pub fn cache_get(&self, env: Env, id: u32, key: String) -> napi::Result<()> {
        js(&env, check_key(&key))?;
        if !self.get_direct(id, &key) {
            self.run(
                id,
                move |s| async move { s.get(&key).await.map(Reply::opt_str) },
            );
        }
        Ok(())
    }

    /// SET of `key` for `ttlMs` (1 ms … 30 days) → true.
    #[napi]
    pub fn cache_set(
        &self,
        env: Env,
        id: u32,
        key: String,
        value: String,
        ttl_ms: f64,
    ) -> napi::Result<()> {
        let ttl = js(&env, self.cache_write(&key, &value, ttl_ms))?;
        self.run(id, move |s| async move {
            s.set_px(&key, &value, ttl).await.map(|_| Reply::Bool(true))
        });
        Ok(())
    }

    /// Revokes and deletes up to [`MAX_DEL_KEYS`] keys → how many existed.
    #[napi]
    pub fn cache_del(&self, env: Env, id: u32, keys: Vec<String>) -> napi::Result<()> {
        if keys.len() > MAX_DEL_KEYS {
            return Err(CacheError::TooLarge(format!(
                "del takes at most {MAX_DEL_KEYS} keys (got {})",
                keys.len()
            ))
            .throw(&env));
        }
        for k in &keys {
            js(&env, check_key(k))?;
        }
        self.run(id, move |s| async move {
            if keys.is_empty() {
                return Ok(Reply::Num(0.0));
            }
            s.cache_del(&keys).await.map(|n| Reply::Num(n as f64))
        });
        Ok(())
    }

    /// The miss read of `key` → `[rev, t, lease]`, or `[rev, t, lease, value]` when a value
    /// is there now. With `owner` and `leaseMs` (wrap's `lock`) it also tries to take the
    /// key's lease: `lease` is "1" taken, "0" held by another caller, "" otherwise.
    #[napi]
    pub fn cache_miss_read(
        &self,
        env: Env,
        id: u32,
        key: String,
        owner: Option<String>,
        lease_ms: Option<f64>,
    ) -> napi::Result<()> {
        js(&env, check_key(&key))?;
        let lease = js(&env, check_lease(owner, lease_ms))?;
        self.run(id, move |s| async move {
            let lease = lease
                .as_ref()
                .map(|(owner, ttl)| Lease { owner, ttl: *ttl });
            let (m, state) = s.cache_miss_read(&key, lease).await?;
            Ok(replies::cache_miss(m, state))
        });
        Ok(())
    }

    /// A loader's fill of `key`, written only if nothing revoked it since the miss read that
    /// gave `rev` and `t`; `owner`'s lease (wrap's `lock`) is released with it → true if
    /// written, false if refused.
    #[napi]
    #[allow(clippy::too_many_arguments)]
    pub fn cache_fill(
        &self,
        env: Env,
        id: u32,
        key: String,
        value: String,
        ttl_ms: f64,
        rev: String,
        t: String,
        owner: Option<String>,
    ) -> napi::Result<()> {
        let ttl = js(&env, self.cache_write(&key, &value, ttl_ms))?;
        let t = js(&env, check_seen(&rev, &t))?;
        if let Some(o) = &owner {
            js(&env, check_owner(o))?;
        }
        self.run(id, move |s| async move {
            s.cache_fill(&key, &value, ttl, (&rev, t), owner.as_deref())
                .await
                .map(Reply::Bool)
        });
        Ok(())
    }

    /// Releases `owner`'s lease on `key` if it still holds it → true if it did.
    #[napi]
    pub fn cache_lease_release(
        &self,
        env: Env,
        id: u32,
        key: String,
        owner: String,
    ) -> napi::Result<()> {
        js(&env, check_key(&key))?;
        js(&env, check_owner(&owner))?;
        self.run(id, move |s| async move {
            s.cache_lease_release(&key, &owner).await.map(Reply::Bool)
        });
        Ok(())
    }
}

/// A lease owner: what lib/general_cache/ makes (a random id and a number), 1 to 64
/// printable ASCII bytes.
fn check_owner(owner: &str) -> CacheResult<()> {
    if owner.is_empty()
        || owner.len() > MAX_OWNER_BYTES
        || !owner.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(CacheError::InvalidArg(format!(
            "a lease owner must be 1 to {MAX_OWNER_BYTES} printable ASCII characters"
        )));
    }
    Ok(())
}

/// The lease a miss read asks for: both given, or neither.
fn check_lease(
    owner: Option<String>,
    lease_ms: Option<f64>,
) -> CacheResult<Option<(String, Duration)>> {
    match (owner, lease_ms) {
        (None, None) => Ok(None),
        (Some(owner), Some(ms)) => {
            check_owner(&owner)?;
            if !ms.is_finite() || !(1.0..=MAX_LEASE_MS).contains(&ms) {
                return Err(CacheError::OutOfRange(format!(
                    "a lease must last 1 ms to {MAX_LEASE_MS} ms (got {ms})"
                )));
            }
            Ok(Some((owner, Duration::from_millis(ms as u64))))
        }
        _ => Err(CacheError::InvalidArg(
            "a lease needs both its owner and its length".into(),
        )),
    }
}
