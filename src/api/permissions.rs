//! permissionCache: the native half, with the near cache in front of the store.
//!
//! The hot check is one synchronous call: `permCheckModule(id, userId, module)` answers
//! true/false from the near cache at once, or returns null after starting the store read,
//! which is checked here in Rust (only a boolean crosses back) and fills the near cache.

use std::ffi::c_void;
use std::ptr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use napi::bindgen_prelude::{ArrayBuffer, FromNapiValue};
use napi::{sys, Env};
use napi_derive::napi;

use crate::bridge::{bulk_opt, NativeCache, Reply};
use crate::error::{js, CacheError, CacheResult};
use crate::names::keys::{self, JsId};
use crate::near_cache::{Check, Kind, SharedWords};
use crate::rules::CH_PERMISSIONS;
use crate::rules::{USER_TTL_MAX_SEC, USER_TTL_MIN_SEC};
use crate::store::revision::check_seen;

/// `perm:user:{id}` (`kind` "user") or `perm:role:{id}` ("role"), unprefixed.
fn perm_key(kind: &str, pid: JsId) -> CacheResult<String> {
    match kind {
        "user" => Ok(keys::perm_user_key(&keys::id_string("userId", pid)?)),
        "role" => Ok(keys::perm_role_key(&keys::id_string("roleId", pid)?)),
        _ => Err(CacheError::InvalidArg(format!(
            "kind must be 'user' or 'role' (got {:?})",
            kind.chars().take(20).collect::<String>()
        ))),
    }
}

fn user_ttl(ttl_sec: Option<f64>) -> CacheResult<Duration> {
    let t = ttl_sec.unwrap_or(USER_TTL_MAX_SEC);
    if !t.is_finite() || !(USER_TTL_MIN_SEC..=USER_TTL_MAX_SEC).contains(&t) {
        return Err(CacheError::OutOfRange(format!(
            "a user permissions TTL must be {USER_TTL_MIN_SEC} to {USER_TTL_MAX_SEC} seconds (got {t})"
        )));
    }
    Ok(Duration::from_millis((t * 1000.0).round() as u64))
}

/// A snapshot the near cache holds, handed to the JS near cache (`lib/near_l1.js`).
#[napi(object)]
pub struct NearSnapshot {
    pub json: String,
    /// How long the entry has left to live here: the JS copy must not outlive it.
    pub ttl_ms: f64,
    /// The role is a super role (decided here, so JS and Rust never disagree).
    pub is_super: bool,
}

/// Releases the ArrayBuffer's count of the shared words (N-API finalizer).
unsafe extern "C" fn release_words(_env: sys::napi_env, _data: *mut c_void, hint: *mut c_void) {
    // SAFETY: `hint` is the pointer `Arc::into_raw` gave in `near_cache_words`, released
    // exactly once, here.
    drop(unsafe { Arc::from_raw(hint as *const SharedWords) });
}

#[napi]
impl NativeCache {
    /// The near cache's [`SharedWords`] as an 8-byte ArrayBuffer whose memory *is* those words
    /// (not a copy), for the JS near cache to read with `Atomics.load`; handed out once per
    /// instance (a second call, or a runtime that refuses external buffers, gets null and
    /// the JS near cache stays off).
    ///
    /// Why this is sound:
    /// - Lifetime: the words live in an `Arc`; the ArrayBuffer owns one count of it, released
    ///   by its finalizer, and the near cache owns another. Neither side ever reaches the
    ///   memory through the other's handle, so whichever goes first, the memory outlives
    ///   every access. External backing stores are never moved by V8; if JS detaches the
    ///   buffer, the façade's reads fail, and it falls back to the native path for good.
    /// - Data races: Rust only writes, with atomic read-modify-writes/stores; the façade only
    ///   reads, with `Atomics.load` (an atomic 32-bit load, `ldar`/`mov` on arm64/x86-64), on
    ///   naturally aligned 32-bit words. Nothing reads or writes them non-atomically.
    /// - A copy would be unsound (JS would read a frozen generation): napi-rs'
    ///   `ArrayBuffer::from_external` silently copies where external buffers are not allowed
    ///   (Electron), so this calls N-API directly and gives up on any status but ok. Node also
    ///   forbids two external buffers over one region: hence once per instance.
    #[napi(ts_return_type = "ArrayBuffer | null")]
    pub fn near_cache_words(&self, env: Env) -> napi::Result<Option<ArrayBuffer<'_>>> {
        if cfg!(target_family = "wasm") || self.words_handed_out.swap(true, Ordering::AcqRel) {
            return Ok(None);
        }
        let words = self.core.pubsub.near.shared_words();
        let data = Arc::as_ptr(&words) as *mut c_void;
        let hint = Arc::into_raw(words) as *mut c_void;
        let mut value = ptr::null_mut();
        // SAFETY: `data` points to `size_of::<SharedWords>()` bytes that stay valid until
        // `release_words` runs (it holds a count of the Arc, passed as `hint`).
        let status = unsafe {
            sys::napi_create_external_arraybuffer(
                env.raw(),
                data,
                std::mem::size_of::<SharedWords>(),
                Some(release_words),
                hint,
                &mut value,
            )
        };
        if status != sys::Status::napi_ok {
            // No buffer was made, so the finalizer will never run: release the count here.
            drop(unsafe { Arc::from_raw(hint as *const SharedWords) });
            return Ok(None);
        }
        // SAFETY: `value` is the ArrayBuffer just created in this env.
        Ok(Some(unsafe {
            ArrayBuffer::from_napi_value(env.raw(), value)?
        }))
    }

    /// The near cache's snapshot of a user, if it holds a live one (no store read). For the
    /// JS near cache, which keeps what this returns until its generation moves or `ttlMs`.
    #[napi]
    pub fn perm_user_near(&self, env: Env, user_id: JsId) -> napi::Result<Option<NearSnapshot>> {
        self.perm_near(env, Kind::User, "userId", user_id)
    }

    /// [`perm_user_near`](Self::perm_user_near) for a role.
    #[napi]
    pub fn perm_role_near(&self, env: Env, role_id: JsId) -> napi::Result<Option<NearSnapshot>> {
        self.perm_near(env, Kind::Role, "roleId", role_id)
    }

    /// The whole hasModulePermission in one call: true/false at once from the near cache;
    /// else null is returned and the store read starts, whose reply is true/false (checked in
    /// Rust, no JSON crosses to JS), null when Redis holds no snapshot (the façade then asks
    /// the loader), or the stored string when it is not a snapshot (the façade counts it,
    /// drops it and asks the loader). The read fills the near cache.
    #[napi]
    pub fn perm_check_module(
        &self,
        env: Env,
        id: u32,
        user_id: JsId,
        module: String,
    ) -> napi::Result<Option<bool>> {
        js(
            &env,
            self.start_perm_check(id, user_id, Check::Module(module)),
        )
    }

    /// hasPagePermission in one call, as [`perm_check_module`](Self::perm_check_module).
    #[napi]
    pub fn perm_check_page(
        &self,
        env: Env,
        id: u32,
        user_id: JsId,
        page: String,
        action: String,
    ) -> napi::Result<Option<bool>> {
        js(
            &env,
            self.start_perm_check(id, user_id, Check::Page { page, action }),
        )
    }

    /// The user's snapshot JSON: returned at once from the near cache, else null is returned
    /// and the store read starts (reply: JSON or null), filling the near cache.
    #[napi]
    pub fn perm_user_get(&self, env: Env, id: u32, user_id: JsId) -> napi::Result<Option<String>> {
        self.perm_get(env, id, Kind::User, "userId", user_id)
    }

    #[napi]
    pub fn perm_role_get(&self, env: Env, id: u32, role_id: JsId) -> napi::Result<Option<String>> {
        self.perm_get(env, id, Kind::Role, "roleId", role_id)
    }

    /// Stores a user snapshot for `ttlSec` (60…300, default 300) → true.
    #[napi]
    pub fn perm_user_set(
        &self,
        env: Env,
        id: u32,
        user_id: JsId,
        json: String,
        ttl_sec: Option<f64>,
    ) -> napi::Result<()> {
        let uid = js(&env, keys::id_string("userId", user_id))?;
        let ttl = js(&env, user_ttl(ttl_sec))?;
        js(&env, self.check_value("permissions snapshot", &json))?;
        // The local near copy must not outlive the snapshot it replaces.
        let near = self.core.pubsub.near.clone();
        near.invalidate_user(&uid);
        self.run(id, move |s| async move {
            s.perm_user_put(&uid, &json, ttl).await?;
            near.invalidate_user(&uid);
            Ok(Reply::Bool(true))
        });
        Ok(())
    }

    /// Stores a role snapshot for 5 minutes → true.
    #[napi]
    pub fn perm_role_set(
        &self,
        env: Env,
        id: u32,
        role_id: JsId,
        json: String,
    ) -> napi::Result<()> {
        let rid = js(&env, keys::id_string("roleId", role_id))?;
        js(&env, self.check_value("permissions snapshot", &json))?;
        let near = self.core.pubsub.near.clone();
        near.invalidate_key(&keys::perm_role_key(&rid));
        self.run(id, move |s| async move {
            s.perm_role_put(&rid, &json).await?;
            near.invalidate_key(&keys::perm_role_key(&rid));
            Ok(Reply::Bool(true))
        });
        Ok(())
    }

    /// The miss read of `perm:user:{id}` (`kind` "user") or `perm:role:{id}` ("role"), issue
    /// 15: `[rev, t]`, or `[rev, t, json]` when a snapshot is there now.
    #[napi]
    pub fn perm_miss_read(&self, env: Env, id: u32, kind: String, pid: JsId) -> napi::Result<()> {
        let key = js(&env, perm_key(&kind, pid))?;
        self.run(id, move |s| async move {
            s.miss_read(&key).await.map(super::replies::miss)
        });
        Ok(())
    }

    /// A loader's fill of a snapshot (`kind` "user": TTL `ttlSec` 60…300, default 300; "role":
    /// 5 min), written only if nothing revoked it since the miss read that gave `rev` and `t`
    /// → true if written, false if refused (then it is cached nowhere).
    #[napi]
    #[allow(clippy::too_many_arguments)]
    pub fn perm_fill(
        &self,
        env: Env,
        id: u32,
        kind: String,
        pid: JsId,
        json: String,
        ttl_sec: Option<f64>,
        rev: String,
        t: String,
    ) -> napi::Result<()> {
        let key = js(&env, perm_key(&kind, pid))?;
        let ttl = if kind == "user" {
            js(&env, user_ttl(ttl_sec))?
        } else {
            crate::store::permissions::ROLE_TTL
        };
        js(&env, self.check_value("permissions snapshot", &json))?;
        let t = js(&env, check_seen(&rev, &t))?;
        let near = self.core.pubsub.near.clone();
        self.run(id, move |s| async move {
            let written = s.guarded_fill(&key, &json, ttl, &rev, t).await?;
            if written {
                // as setUserPermissions / setRolePermissions: no near copy outlives it
                near.invalidate_key(&key);
            }
            Ok(Reply::Bool(written))
        });
        Ok(())
    }

    /// Deletes `perm:user:{id}`, drops the local near entry at once, then broadcasts
    /// `payload` on permissions:invalidate → true if a snapshot was removed.
    #[napi]
    pub fn perm_user_remove(
        &self,
        env: Env,
        id: u32,
        user_id: JsId,
        payload: String,
    ) -> napi::Result<()> {
        let uid = js(&env, keys::id_string("userId", user_id))?;
        js(&env, self.check_value("message", &payload))?;
        let near = self.core.pubsub.near.clone();
        near.invalidate_user(&uid);
        self.run(id, move |s| async move {
            let removed = s.perm_user_remove(&uid).await?;
            near.invalidate_user(&uid);
            s.publish(CH_PERMISSIONS, &payload).await?;
            Ok(Reply::Bool(removed))
        });
        Ok(())
    }

    /// Deletes `perm:role:{id}`, drops the role and every user snapshot from the local near
    /// cache, then broadcasts → true if a snapshot was removed.
    #[napi]
    pub fn perm_role_remove(
        &self,
        env: Env,
        id: u32,
        role_id: JsId,
        payload: String,
    ) -> napi::Result<()> {
        let rid = js(&env, keys::id_string("roleId", role_id))?;
        js(&env, self.check_value("message", &payload))?;
        let near = self.core.pubsub.near.clone();
        near.invalidate_role(&rid);
        self.run(id, move |s| async move {
            let removed = s.perm_role_remove(&rid).await?;
            near.invalidate_role(&rid);
            s.publish(CH_PERMISSIONS, &payload).await?;
            Ok(Reply::Bool(removed))
        });
        Ok(())
    }

    /// Deletes `perm:user:{id}` (`kind` "user") or `perm:role:{id}` ("role") only while it still
    /// holds `json`, a value that is not a permissions snapshot → true if deleted.
    #[napi]
    pub fn perm_drop_corrupt(
        &self,
        env: Env,
        id: u32,
        kind: String,
        pid: JsId,
        json: String,
    ) -> napi::Result<()> {
        let key = js(&env, perm_key(&kind, pid))?;
        self.run(id, move |s| async move {
            s.drop_if_equal(&key, &json).await.map(Reply::Bool)
        });
        Ok(())
    }

    /// The near cache's state and counters.
    #[napi]
    pub fn near_cache_stats(&self) -> NearCacheStats {
        use std::sync::atomic::Ordering::Relaxed;
        let n = &self.core.pubsub.near;
        let count = |c: &std::sync::atomic::AtomicU64| c.load(Relaxed) as f64;
        NearCacheStats {
            enabled: n.enabled(),
            trusted: n.is_trusted(),
            size: n.len() as f64,
            max: n.max() as f64,
            ttl_ms: n.ttl().as_millis() as f64,
            hits: count(&n.stats.hits),
            misses: count(&n.stats.misses),
            fills: count(&n.stats.fills),
            refused_fills: count(&n.stats.refused_fills),
            invalidations: count(&n.stats.invalidations),
        }
    }
}

/// The near cache's state and counters (`nearCacheStats()`); counts are numbers (exact up
/// to 2^53).
#[napi(object)]
pub struct NearCacheStats {
    pub enabled: bool,
    /// False while pub/sub is down: the near cache then answers nothing.
    pub trusted: bool,
    pub size: f64,
    pub max: f64,
    pub ttl_ms: f64,
    pub hits: f64,
    pub misses: f64,
    pub fills: f64,
    pub refused_fills: f64,
    pub invalidations: f64,
}

impl NativeCache {
    fn perm_near(
        &self,
        env: Env,
        kind: Kind,
        what: &str,
        raw_id: JsId,
    ) -> napi::Result<Option<NearSnapshot>> {
        let pid = js(&env, keys::id_string(what, raw_id))?;
        Ok(self
            .core
            .pubsub
            .near
            .peek(kind, &pid)
            .map(|(snap, left)| NearSnapshot {
                json: snap.json.clone(),
                ttl_ms: left.as_secs_f64() * 1000.0,
                is_super: snap.is_super(),
            }))
    }

    /// The body of `permCheckModule` / `permCheckPage` (also their entries in src/api/fast.rs).
    pub(crate) fn start_perm_check(
        &self,
        id: u32,
        user_id: JsId,
        check: Check,
    ) -> CacheResult<Option<bool>> {
        let uid = keys::id_string("userId", user_id)?;
        let near = self.core.pubsub.near.clone();
        if let Some(snap) = near.get(Kind::User, &uid) {
            return Ok(Some(check.on(&snap)));
        }
        let gen = near.generation();
        // The answer to the stored snapshot (JSON or none), filling the near cache.
        let answer = move |json: Option<String>, uid: &str| {
            let Some(json) = json else {
                return Reply::Nil;
            };
            // A stored value that is not a snapshot is no answer: it goes back to the façade
            // as a string (counted, deleted, and the loader asked; as in JS).
            if !near.in_use() {
                // Nothing would keep it (near cache off or untrusted): read it in place.
                return match near.answer(&json, &check) {
                    Some(allowed) => Reply::Bool(allowed),
                    None => Reply::Str(json),
                };
            }
            match near.parse(json) {
                Ok(snap) => {
                    let snap = Arc::new(snap);
                    near.fill_parsed(Kind::User, uid, snap.clone(), gen);
                    Reply::Bool(check.on(&snap))
                }
                Err(json) => Reply::Str(json),
            }
        };
        if self.direct_store().is_some() {
            let key = keys::perm_user_key(&uid);
            self.get_direct_with(id, &key, move |r| Ok(answer(bulk_opt(r?)?, &uid)));
            return Ok(None);
        }
        self.run(id, move |s| async move {
            let json = s.perm_user_get(&uid).await?;
            Ok(answer(json, &uid))
        });
        Ok(None)
    }

    fn perm_get(
        &self,
        env: Env,
        id: u32,
        kind: Kind,
        what: &str,
        raw_id: JsId,
    ) -> napi::Result<Option<String>> {
        let pid = js(&env, keys::id_string(what, raw_id))?;
        let near = self.core.pubsub.near.clone();
        if let Some(snap) = near.get(kind, &pid) {
            return Ok(Some(snap.json.clone()));
        }
        // Captured before the read is sent: an invalidation in between refuses the fill.
        let gen = near.generation();
        if self.direct_store().is_some() {
            let key = match kind {
                Kind::User => keys::perm_user_key(&pid),
                Kind::Role => keys::perm_role_key(&pid),
            };
            self.get_direct_with(id, &key, move |r| {
                let json = bulk_opt(r?)?;
                if let Some(j) = &json {
                    near.fill(kind, &pid, j, gen);
                }
                Ok(Reply::opt_str(json))
            });
            return Ok(None);
        }
        self.run(id, move |s| async move {
            let json = match kind {
                Kind::User => s.perm_user_get(&pid).await?,
                Kind::Role => s.perm_role_get(&pid).await?,
            };
            if let Some(j) = &json {
                near.fill(kind, &pid, j, gen);
            }
            Ok(Reply::opt_str(json))
        });
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ttl_is_one_to_five_minutes() {
        assert_eq!(user_ttl(None).unwrap(), Duration::from_secs(300));
        assert_eq!(user_ttl(Some(60.0)).unwrap(), Duration::from_secs(60));
        for bad in [59.0, 301.0, f64::NAN, -1.0] {
            assert_eq!(user_ttl(Some(bad)).unwrap_err().code(), "ERR_OUT_OF_RANGE");
        }
    }
}
