//! sessionCache: the native half. Raw tokens are hashed here and never reach a key.

use std::time::Duration;

use napi::Env;
use napi_derive::napi;

use super::replies;
use crate::bridge::{NativeCache, Reply};
use crate::error::{js, CacheError, CacheResult};
use crate::names::keys::{self, JsId};
use crate::store::revision::check_seen;
use crate::store::session::{ScanBounds, ScanMode};

pub use crate::rules::{MAX_SESSION_TTL_MS, MAX_TOKEN_BYTES};

/// The bounds a caller may give a session scan: COUNT per step, keys visited in all, sessions
/// found, and time.
const MAX_SCAN_COUNT: u32 = 10_000;
const MAX_SCAN_VISITED: f64 = 100_000_000.0;
const MAX_SCAN_FOUND: u32 = 1_000_000;
const MAX_SCAN_MS: u32 = 600_000;

fn scan_bounds(
    count: u32,
    max_visited: f64,
    max_found: u32,
    max_ms: u32,
) -> CacheResult<ScanBounds> {
    if !(1..=MAX_SCAN_COUNT).contains(&count) {
        return Err(CacheError::OutOfRange(format!(
            "scan count must be 1 to {MAX_SCAN_COUNT} (got {count})"
        )));
    }
    if !max_visited.is_finite()
        || max_visited.fract() != 0.0
        || !(1.0..=MAX_SCAN_VISITED).contains(&max_visited)
    {
        return Err(CacheError::OutOfRange(format!(
            "the keys a scan may visit must be 1 to {MAX_SCAN_VISITED} (got {max_visited})"
        )));
    }
    if !(1..=MAX_SCAN_FOUND).contains(&max_found) {
        return Err(CacheError::OutOfRange(format!(
            "the sessions a scan may find must be 1 to {MAX_SCAN_FOUND} (got {max_found})"
        )));
    }
    if !(1..=MAX_SCAN_MS).contains(&max_ms) {
        return Err(CacheError::OutOfRange(format!(
            "a scan's time must be 1 to {MAX_SCAN_MS} ms (got {max_ms})"
        )));
    }
    Ok(ScanBounds {
        count: count as usize,
        max_visited: max_visited as u64,
        max_found: max_found as usize,
        deadline: Duration::from_millis(max_ms as u64),
    })
}

fn check_token(token: &str) -> CacheResult<()> {
    if token.is_empty() {
        return Err(CacheError::InvalidArg(
            "token must be a non-empty string".into(),
        ));
    }
    if token.len() > MAX_TOKEN_BYTES {
        return Err(CacheError::TooLarge(format!(
            "token is {} bytes; the limit is {MAX_TOKEN_BYTES}",
            token.len()
        )));
    }
    Ok(())
}

/// SHA-256 of a raw token, hex: the form under which a session is stored.
#[napi]
pub fn hash_token(env: Env, token: String) -> napi::Result<String> {
    js(&env, check_token(&token))?;
    Ok(keys::hash_token(&token))
}

impl NativeCache {
    /// The checks of a session write (setSession and a loader's fill): the token hash, the
    /// user id, the TTL (1 ms … 1 h) and the value's size → (user id, TTL).
    fn session_write(
        &self,
        token_hash: &str,
        json: &str,
        ttl_ms: f64,
        user_id: Option<JsId>,
    ) -> CacheResult<(Option<String>, Duration)> {
        keys::check_token_hash("tokenHash", token_hash)?;
        let user_id = match user_id {
            Some(u) => Some(keys::id_string("userId", u)?),
            None => None,
        };
        if !ttl_ms.is_finite() || !(1.0..=MAX_SESSION_TTL_MS).contains(&ttl_ms) {
            return Err(CacheError::OutOfRange(format!(
                "session TTL must be 1 ms to 1 h (got {ttl_ms} ms)"
            )));
        }
        self.check_value("session data", json)?;
        Ok((user_id, Duration::from_millis(ttl_ms as u64)))
    }
}

#[napi]
impl NativeCache {
    /// GET `session:{tokenHash}` → JSON string or null.
    #[napi]
    pub fn session_get(&self, env: Env, id: u32, token_hash: String) -> napi::Result<()> {
        js(&env, keys::check_token_hash("tokenHash", &token_hash))?;
        if !self.get_direct(id, &keys::session_key(&token_hash)) {
            self.run(id, move |s| async move {
                s.session_get(&token_hash).await.map(Reply::opt_str)
            });
        }
        Ok(())
    }

    /// Hashes the raw token and GETs its session → JSON string or null. (The bridge calls
    /// `fastSessionGetByToken()`'s function instead, which does the same.)
    #[napi]
    pub fn session_get_by_token(&self, env: Env, id: u32, token: String) -> napi::Result<()> {
        js(&env, self.start_session_get_by_token(id, &token))
    }

    /// [`session_get_by_token`](Self::session_get_by_token) once its arguments are read.
    pub(crate) fn start_session_get_by_token(&self, id: u32, token: &str) -> CacheResult<()> {
        check_token(token)?;
        let hash = keys::hash_token(token);
        if !self.get_direct(id, &keys::session_key(&hash)) {
            self.run(id, move |s| async move {
                s.session_get(&hash).await.map(Reply::opt_str)
            });
        }
        Ok(())
    }

    /// Stores a session for `ttlMs` (1 ms … 1 h) and indexes it under `userId` → true.
    #[napi]
    pub fn session_set(
        &self,
        env: Env,
        id: u32,
        token_hash: String,
        json: String,
        ttl_ms: f64,
        user_id: Option<JsId>,
    ) -> napi::Result<()> {
        let (user_id, ttl) = js(
            &env,
            self.session_write(&token_hash, &json, ttl_ms, user_id),
        )?;
        if let Some(s) = self.one_server_store() {
            let call = s.session_put_call(&token_hash, &json, ttl, user_id.as_deref());
            self.script_direct(id, call, |r| r.map(|_| Reply::Bool(true)));
            return Ok(());
        }
        self.run(id, move |s| async move {
            s.session_put(&token_hash, &json, ttl, user_id.as_deref())
                .await
                .map(|_| Reply::Bool(true))
        });
        Ok(())
    }

    /// The miss read of `session:{tokenHash}` (issue 15): `[rev, t]`, or `[rev, t, json]` when a
    /// session is there now. `rev` and `t` go back to [`session_fill`](Self::session_fill).
    #[napi]
    pub fn session_miss_read(&self, env: Env, id: u32, token_hash: String) -> napi::Result<()> {
        js(&env, keys::check_token_hash("tokenHash", &token_hash))?;
        self.run(id, move |s| async move {
            s.miss_read(&keys::session_key(&token_hash))
                .await
                .map(replies::miss)
        });
        Ok(())
    }

    /// A loader's fill: [`session_set`](Self::session_set), written only if neither the session
    /// nor its user's sessions were revoked since the miss read that gave `rev` and `t` →
    /// true if written, false if refused (the caller still gets the loader's row).
    #[napi]
    #[allow(clippy::too_many_arguments)]
    pub fn session_fill(
        &self,
        env: Env,
        id: u32,
        token_hash: String,
        json: String,
        ttl_ms: f64,
        user_id: Option<JsId>,
        rev: String,
        t: String,
    ) -> napi::Result<()> {
        let (user_id, ttl) = js(
            &env,
            self.session_write(&token_hash, &json, ttl_ms, user_id),
        )?;
        let t = js(&env, check_seen(&rev, &t))?;
        self.run(id, move |s| async move {
            s.session_fill(&token_hash, &json, ttl, user_id.as_deref(), &rev, t)
                .await
                .map(Reply::Bool)
        });
        Ok(())
    }

    /// Deletes `session:{tokenHash}` only while it still holds `json`, a value the façade could
    /// not serve (not a JSON object, or an expiry past or unreadable) → true if deleted.
    #[napi]
    pub fn session_drop_corrupt(
        &self,
        env: Env,
        id: u32,
        token_hash: String,
        json: String,
    ) -> napi::Result<()> {
        js(&env, keys::check_token_hash("tokenHash", &token_hash))?;
        self.run(id, move |s| async move {
            s.drop_if_equal(&keys::session_key(&token_hash), &json)
                .await
                .map(Reply::Bool)
        });
        Ok(())
    }

    /// Removes a session (and its entry in the user's set) → true if it existed.
    #[napi]
    pub fn session_remove(&self, env: Env, id: u32, token_hash: String) -> napi::Result<()> {
        js(&env, keys::check_token_hash("tokenHash", &token_hash))?;
        self.run(id, move |s| async move {
            s.session_remove(&token_hash).await.map(Reply::Bool)
        });
        Ok(())
    }

    /// Removes all sessions of a user → how many existed.
    #[napi]
    pub fn session_remove_user(&self, env: Env, id: u32, user_id: JsId) -> napi::Result<()> {
        let user_id = js(&env, keys::id_string("userId", user_id))?;
        self.run(id, move |s| async move {
            s.session_remove_user(&user_id)
                .await
                .map(|n| Reply::Num(n as f64))
        });
        Ok(())
    }

    /// The token hashes of a user's live sessions → string[].
    #[napi]
    pub fn session_list_user(&self, env: Env, id: u32, user_id: JsId) -> napi::Result<()> {
        let user_id = js(&env, keys::id_string("userId", user_id))?;
        self.run(id, move |s| async move {
            s.session_list_user(&user_id).await.map(Reply::Strs)
        });
        Ok(())
    }

    /// Refreshes a session's TTL (1 ms … 1 h) without rewriting it, and its entry in the
    /// user's index → true if the session exists (nothing is written when it does not).
    #[napi]
    pub fn session_touch(
        &self,
        env: Env,
        id: u32,
        token_hash: String,
        ttl_ms: f64,
        user_id: Option<JsId>,
    ) -> napi::Result<()> {
        let (user_id, ttl) = js(&env, self.session_write(&token_hash, "", ttl_ms, user_id))?;
        self.run(id, move |s| async move {
            s.session_touch(&token_hash, ttl, user_id.as_deref())
                .await
                .map(Reply::Bool)
        });
        Ok(())
    }

    /// Counts ('count'), reads ('list') or removes ('clear') the sessions whose token hash
    /// starts with `prefix`, by SCAN within the bounds given → the count, `[hash, json, …]`,
    /// or how many were removed.
    #[napi]
    #[allow(clippy::too_many_arguments)]
    pub fn session_scan(
        &self,
        env: Env,
        id: u32,
        prefix: String,
        mode: String,
        count: u32,
        max_visited: f64,
        max_found: u32,
        max_ms: u32,
    ) -> napi::Result<()> {
        let mode = js(
            &env,
            match mode.as_str() {
                "count" => Ok(ScanMode::Count),
                "list" => Ok(ScanMode::List),
                "clear" => Ok(ScanMode::Clear),
                _ => Err(CacheError::InvalidArg(format!(
                    "scan mode must be 'count', 'list' or 'clear' (got {mode:?})"
                ))),
            },
        )?;
        let bounds = js(&env, scan_bounds(count, max_visited, max_found, max_ms))?;
        js(&env, keys::check_token_hash("prefix", &prefix))?;
        self.run(id, move |s| async move {
            let out = s.session_scan(&prefix, mode, bounds).await?;
            Ok(match mode {
                ScanMode::List => replies::session_list(out.found),
                _ => Reply::Num(out.n as f64),
            })
        });
        Ok(())
    }
}
