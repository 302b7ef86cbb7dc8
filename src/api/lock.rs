//! distributedLock: the native half. Owners are minted here from the OS CSPRNG; the watchdog,
//! retries and `withLock`/`mutex` live in the façade (`lib/lock.js`).

use std::sync::Arc;
use std::time::Duration;

use napi::bindgen_prelude::spawn;
use napi::Env;
use napi_derive::napi;

use super::replies;
use crate::bridge::{NativeCache, Reply};
use crate::error::{js, CacheError, CacheResult};
use crate::names::keys::{self, JsId};
use crate::store::lock::{check_sem_name, lock_acquire_reply, lock_release_reply, Acquired};
use crate::store::Store;

/// The longest lock TTL (a longer job keeps a shorter lock alive with `extend`).
pub use crate::rules::MAX_LOCK_TTL_MS;
/// Random bytes in an owner token: 128 bits, from the OS CSPRNG (`getrandom`).
pub const OWNER_RANDOM_BYTES: usize = 16;
/// Waits before each attempt to remove a lock whose acquire timed out (see [`clean_phantom`]).
const PHANTOM_CLEANUP_DELAYS_MS: [u64; 3] = [0, 500, 2000];

fn check_ttl(ttl_ms: f64) -> CacheResult<Duration> {
    if !ttl_ms.is_finite() || ttl_ms.fract() != 0.0 || !(1.0..=MAX_LOCK_TTL_MS).contains(&ttl_ms) {
        return Err(CacheError::OutOfRange(format!(
            "lock TTL must be a whole number of milliseconds from 1 to {MAX_LOCK_TTL_MS} (got {ttl_ms})"
        )));
    }
    Ok(Duration::from_millis(ttl_ms as u64))
}

fn check_node_id(node_id: &str) -> CacheResult<()> {
    keys::check_id("nodeId", node_id)?;
    if node_id.contains(':') {
        return Err(CacheError::InvalidArg("nodeId must not contain ':'".into()));
    }
    Ok(())
}

/// Bytes of OS randomness fetched per `getrandom` call and handed out 16 at a time: one
/// syscall per 256 owners instead of one per lock (it was ≈ 0.4 µs of every acquire).
const RANDOM_POOL_BYTES: usize = 4096;

struct RandomPool {
    bytes: [u8; RANDOM_POOL_BYTES],
    used: usize,
}

thread_local! {
    /// Per thread (only the JS thread makes owners): fresh OS bytes, each handed out once.
    static POOL: std::cell::RefCell<RandomPool> = const {
        std::cell::RefCell::new(RandomPool { bytes: [0; RANDOM_POOL_BYTES], used: RANDOM_POOL_BYTES })
    };
}

/// 16 bytes from the OS CSPRNG, never handed out twice (see [`RANDOM_POOL_BYTES`]).
fn random_owner_bytes() -> CacheResult<[u8; OWNER_RANDOM_BYTES]> {
    POOL.with_borrow_mut(|p| {
        if p.used + OWNER_RANDOM_BYTES > RANDOM_POOL_BYTES {
            getrandom::fill(&mut p.bytes).map_err(|e| {
                CacheError::Unavailable(format!("the OS random generator failed: {e}"))
            })?;
            p.used = 0;
        }
        let mut out = [0u8; OWNER_RANDOM_BYTES];
        out.copy_from_slice(&p.bytes[p.used..p.used + OWNER_RANDOM_BYTES]);
        // what was handed out does not stay in memory
        p.bytes[p.used..p.used + OWNER_RANDOM_BYTES].fill(0);
        p.used += OWNER_RANDOM_BYTES;
        Ok(out)
    })
}

/// This process' id, read once (`getpid` is a syscall each time).
fn pid() -> u32 {
    static PID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *PID.get_or_init(std::process::id)
}

/// `nodeId:pid:random`, with 128 random bits from the OS CSPRNG as 32 hex digits.
pub fn new_owner(node_id: &str) -> CacheResult<String> {
    check_node_id(node_id)?;
    let bytes = random_owner_bytes()?;
    Ok(format!("{node_id}:{}:{}", pid(), hex::encode(bytes)))
}

fn resource_and_id(env: &Env, resource: JsId, id: JsId) -> napi::Result<(String, String)> {
    Ok((
        js(env, keys::id_string("resource", resource))?,
        js(env, keys::id_string("id", id))?,
    ))
}

/// True for failures after which an acquire's SET may still have reached Redis: the command
/// was (or may have been) written, but no answer came back.
fn may_have_applied(e: &CacheError) -> bool {
    matches!(e, CacheError::Timeout(_) | CacheError::Unavailable(_))
}

/// What an acquire that may have applied left behind: a lock or a semaphore permit.
enum Phantom {
    Lock { resource: String, id: String },
    Permit { name: String },
}

/// Best effort: removes the lock (or permit) an acquire may have set although its caller was
/// told it failed, so no phantom holder blocks the resource for its whole TTL. Compare-and-delete
/// with the owner token that was sent, so it can only ever remove that acquire's own grant. On
/// the same connection the release is queued behind the acquire (Redis answers in order), and
/// it is retried a few times (bounded) in case the connection was lost and must come back first.
async fn clean_phantom(store: Arc<Store>, phantom: Phantom, owner: String) {
    for delay in PHANTOM_CLEANUP_DELAYS_MS {
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        let r = match &phantom {
            Phantom::Lock { resource, id } => store.lock_release(resource, id, &owner).await,
            Phantom::Permit { name } => store.sem_release(name, &owner).await,
        };
        match r {
            Ok(_) | Err(CacheError::Closed) | Err(CacheError::Disabled) => return,
            Err(_) => continue,
        }
    }
}

/// An acquire's answer: `['1', owner, fence]` or `['0', holder, pttlMs]`; after a failure
/// that may have applied, the phantom lock is cleaned up in the background.
fn acquired_reply(
    r: CacheResult<Acquired>,
    store: Arc<Store>,
    resource: String,
    lock_id: String,
    owner: String,
) -> CacheResult<Reply> {
    match r {
        Ok(a) => Ok(replies::lock_acquired(a, owner)),
        Err(e) => {
            if may_have_applied(&e) {
                let phantom = Phantom::Lock {
                    resource,
                    id: lock_id,
                };
                spawn(clean_phantom(store, phantom, owner));
            }
            Err(e)
        }
    }
}

#[napi]
impl NativeCache {
    /// Tries once to take `lock:{resource}:{id}` for `ttlMs` with a new owner token →
    /// `['1', owner, fence]` or `['0', holder, pttlMs]`.
    #[napi]
    pub fn lock_acquire(
        &self,
        env: Env,
        id: u32,
        resource: JsId,
        lock_id: JsId,
        node_id: String,
        ttl_ms: f64,
    ) -> napi::Result<()> {
        let (resource, lock_id) = resource_and_id(&env, resource, lock_id)?;
        let ttl = js(&env, check_ttl(ttl_ms))?;
        let owner = js(&env, new_owner(&node_id))?;
        if let Some(s) = self.direct_store() {
            let call = s.lock_acquire_call(&resource, &lock_id, &owner, ttl);
            let s = s.clone();
            self.script_direct(id, call, move |r| {
                acquired_reply(r.and_then(lock_acquire_reply), s, resource, lock_id, owner)
            });
            return Ok(());
        }
        self.run(id, move |s| async move {
            let r = s.lock_acquire(&resource, &lock_id, &owner, ttl).await;
            acquired_reply(r, s, resource, lock_id, owner)
        });
        Ok(())
    }

    /// Compare-and-delete by owner → true only if `owner` held the lock.
    #[napi]
    pub fn lock_release(
        &self,
        env: Env,
        id: u32,
        resource: JsId,
        lock_id: JsId,
        owner: String,
    ) -> napi::Result<()> {
        let (resource, lock_id) = resource_and_id(&env, resource, lock_id)?;
        js(&env, keys::check_id("owner", &owner))?;
        if let Some(s) = self.direct_store() {
            let call = s.lock_release_call(&resource, &lock_id, &owner);
            self.script_direct(id, call, |r| {
                r.and_then(lock_release_reply).map(Reply::Bool)
            });
            return Ok(());
        }
        self.run(id, move |s| async move {
            s.lock_release(&resource, &lock_id, &owner)
                .await
                .map(Reply::Bool)
        });
        Ok(())
    }

    /// Compare-and-pexpire by owner → true only if `owner` still holds the lock.
    #[napi]
    pub fn lock_extend(
        &self,
        env: Env,
        id: u32,
        resource: JsId,
        lock_id: JsId,
        owner: String,
        ttl_ms: f64,
    ) -> napi::Result<()> {
        let (resource, lock_id) = resource_and_id(&env, resource, lock_id)?;
        js(&env, keys::check_id("owner", &owner))?;
        let ttl = js(&env, check_ttl(ttl_ms))?;
        self.run(id, move |s| async move {
            s.lock_extend(&resource, &lock_id, &owner, ttl)
                .await
                .map(Reply::Bool)
        });
        Ok(())
    }

    /// The holder → `[owner, pttlMs]`, or `[]` when the lock is free.
    #[napi]
    pub fn lock_status(
        &self,
        env: Env,
        id: u32,
        resource: JsId,
        lock_id: JsId,
    ) -> napi::Result<()> {
        let (resource, lock_id) = resource_and_id(&env, resource, lock_id)?;
        self.run(id, move |s| async move {
            s.lock_status(&resource, &lock_id)
                .await
                .map(replies::lock_holder)
        });
        Ok(())
    }
}

fn sem_name(env: &Env, name: JsId) -> napi::Result<String> {
    let name = js(env, keys::id_string("name", name))?;
    js(env, check_sem_name(&name))?;
    Ok(name)
}

fn check_permits(permits: f64) -> CacheResult<u32> {
    if !permits.is_finite() || permits.fract() != 0.0 || !(1.0..=MAX_SEM_PERMITS).contains(&permits)
    {
        return Err(CacheError::OutOfRange(format!(
            "permits must be a whole number from 1 to {MAX_SEM_PERMITS} (got {permits})"
        )));
    }
    Ok(permits as u32)
}

/// The most permits a semaphore may have: an acquire reads up to this many holders.
pub const MAX_SEM_PERMITS: f64 = 10_000.0;

#[napi]
impl NativeCache {
    /// Tries once to take one of `permits` permits of semaphore `name` for `ttlMs` with a new
    /// owner token → `['1', owner, fence, held]` or `['0', held, msUntilTheFirstFrees]`.
    #[napi]
    pub fn sem_acquire(
        &self,
        env: Env,
        id: u32,
        name: JsId,
        node_id: String,
        permits: f64,
        ttl_ms: f64,
    ) -> napi::Result<()> {
        let name = sem_name(&env, name)?;
        let permits = js(&env, check_permits(permits))?;
        let ttl = js(&env, check_ttl(ttl_ms))?;
        let owner = js(&env, new_owner(&node_id))?;
        self.run(id, move |s| async move {
            match s.sem_acquire(&name, &owner, permits, ttl).await {
                Ok(a) => Ok(replies::sem_acquired(a, owner)),
                Err(e) => {
                    if may_have_applied(&e) {
                        spawn(clean_phantom(s, Phantom::Permit { name }, owner));
                    }
                    Err(e)
                }
            }
        });
        Ok(())
    }

    /// Returns `owner`'s permit of semaphore `name` → true only if this call freed it.
    #[napi]
    pub fn sem_release(&self, env: Env, id: u32, name: JsId, owner: String) -> napi::Result<()> {
        let name = sem_name(&env, name)?;
        js(&env, keys::check_id("owner", &owner))?;
        self.run(id, move |s| async move {
            s.sem_release(&name, &owner).await.map(Reply::Bool)
        });
        Ok(())
    }

    /// Moves a live holder's expiry to now + `ttlMs` → true only if `owner` still holds a permit.
    #[napi]
    pub fn sem_extend(
        &self,
        env: Env,
        id: u32,
        name: JsId,
        owner: String,
        ttl_ms: f64,
    ) -> napi::Result<()> {
        let name = sem_name(&env, name)?;
        js(&env, keys::check_id("owner", &owner))?;
        let ttl = js(&env, check_ttl(ttl_ms))?;
        self.run(id, move |s| async move {
            s.sem_extend(&name, &owner, ttl).await.map(Reply::Bool)
        });
        Ok(())
    }

    /// The live holders of semaphore `name` → `[held, msUntilTheEarliestExpires or -1]`.
    #[napi]
    pub fn sem_status(&self, env: Env, id: u32, name: JsId) -> napi::Result<()> {
        let name = sem_name(&env, name)?;
        self.run(id, move |s| async move {
            s.sem_status(&name).await.map(replies::sem_status)
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_carry_node_pid_and_128_random_bits() {
        let a = new_owner("node1").unwrap();
        let b = new_owner("node1").unwrap();
        assert_ne!(a, b);
        let parts: Vec<&str> = a.split(':').collect();
        assert_eq!(parts.len(), 3, "{a}");
        assert_eq!(parts[0], "node1");
        assert_eq!(parts[1], std::process::id().to_string());
        assert_eq!(parts[2].len(), 2 * OWNER_RANDOM_BYTES);
        assert!(parts[2].chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn owners_stay_distinct_across_pool_refills() {
        // three refills of the pool: no 16 bytes are handed out twice
        let n = 3 * RANDOM_POOL_BYTES / OWNER_RANDOM_BYTES + 7;
        let owners: std::collections::HashSet<String> =
            (0..n).map(|_| new_owner("n").unwrap()).collect();
        assert_eq!(owners.len(), n);
        assert!(owners.iter().all(|o| !o.ends_with(&"0".repeat(32))));
    }

    #[test]
    fn bad_node_ids_and_ttls_are_refused() {
        for bad in ["", "a:b", "a b", "*"] {
            assert_eq!(
                new_owner(bad).unwrap_err().code(),
                "ERR_INVALID_ARG",
                "{bad:?}"
            );
        }
        for bad in [
            0.0,
            -1.0,
            1.5,
            f64::NAN,
            f64::INFINITY,
            MAX_LOCK_TTL_MS + 1.0,
        ] {
            assert_eq!(
                check_ttl(bad).unwrap_err().code(),
                "ERR_OUT_OF_RANGE",
                "{bad}"
            );
        }
        assert_eq!(check_ttl(30_000.0).unwrap(), Duration::from_secs(30));
        for bad in [0.0, -1.0, 1.5, f64::NAN, MAX_SEM_PERMITS + 1.0] {
            assert_eq!(
                check_permits(bad).unwrap_err().code(),
                "ERR_OUT_OF_RANGE",
                "{bad}"
            );
        }
        assert_eq!(check_permits(3.0).unwrap(), 3);
    }

    #[test]
    fn only_unanswered_failures_trigger_the_phantom_cleanup() {
        assert!(may_have_applied(&CacheError::Timeout(1000)));
        assert!(may_have_applied(&CacheError::Unavailable("x".into())));
        assert!(!may_have_applied(&CacheError::Redis("WRONGTYPE".into())));
        assert!(!may_have_applied(&CacheError::Closed));
        assert!(!may_have_applied(&CacheError::Disabled));
    }
}
