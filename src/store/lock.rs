//! Lock operations of the store: owner-checked, fenced; one script (Redis) or one critical
//! section (memory) each.

use std::sync::LazyLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::codec::{decode, Resp, Value};
use super::memory::now_ms;
use super::script::{Script, ScriptCall};
use super::{Backend, Store};
use crate::error::{CacheError, CacheResult};
use crate::names::keys::{lock_fence_key, lock_key};

static ACQUIRE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/lock_acquire.lua")));
static RELEASE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/lock_release.lua")));
static EXTEND: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/lock_extend.lua")));
static STATUS: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/lock_status.lua")));

static SEM_ACQUIRE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/sem_acquire.lua")));
static SEM_RELEASE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/sem_release.lua")));
static SEM_EXTEND: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/sem_extend.lua")));
static SEM_STATUS: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/sem_status.lua")));

/// How long a fence counter outlives the last grant of its lock. A lock idle for longer loses
/// its counter; the next grant restarts from the clock floor (see `lock_acquire.lua`), which is
/// above every fence handed out before, so fences still only grow.
pub const FENCE_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// What an acquire found.
#[derive(Debug, PartialEq)]
pub enum Acquired {
    /// Granted to the caller, with its fencing token.
    Granted { fence: i64 },
    /// Held by `holder` for `pttl_ms` more milliseconds.
    Busy { holder: String, pttl_ms: i64 },
}

/// The holder of a lock, if any.
#[derive(Debug, PartialEq)]
pub struct Held {
    pub owner: String,
    pub pttl_ms: i64,
}

/// What a semaphore acquire found.
#[derive(Debug, PartialEq)]
pub enum SemAcquired {
    /// A permit granted to the caller, with its fencing token; `held` permits are now taken.
    Granted { fence: i64, held: i64 },
    /// All permits taken (`held` of them); the earliest frees in `retry_ms` at the latest.
    Full { held: i64, retry_ms: i64 },
}

/// The live holders of a semaphore: how many, and the ms until the earliest expires (-1: none).
#[derive(Debug, PartialEq)]
pub struct SemStatus {
    pub held: i64,
    pub next_expiry_ms: i64,
}

/// The keys of semaphore `name` (keyPrefix not applied): its holders, a sorted set of owner
/// tokens scored by expiry, and its fence counter. `{name}` is the hash tag of both, so a
/// Cluster keeps them in one slot; names holding `{` or `}` are refused (see
/// [`check_sem_name`]).
pub fn sem_keys(name: &str) -> (String, String) {
    (format!("sem:{{{name}}}"), format!("sem:{{{name}}}:fence"))
}

/// A semaphore name is an id (see `keys::check_id`) without `{` or `}`: it is the hash tag of
/// the semaphore's keys.
pub fn check_sem_name(name: &str) -> CacheResult<()> {
    crate::names::keys::check_id("name", name)?;
    if name.contains(['{', '}']) {
        return Err(CacheError::InvalidArg(
            "a semaphore name must not contain '{' or '}'".into(),
        ));
    }
    Ok(())
}

/// The clock floor of a fence: microseconds since the epoch (the memory twin of Redis `TIME`).
fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

fn unexpected(what: &str) -> CacheError {
    CacheError::Redis(format!("unexpected reply of the {what} script"))
}

fn int_of(v: &Value) -> Option<i64> {
    match v {
        Value::Int(n) => Some(*n),
        Value::BulkString(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        Value::SimpleString(s) => s.parse().ok(),
        _ => None,
    }
}

fn str_of(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

fn parse_acquire(reply: &[Value]) -> CacheResult<Acquired> {
    match reply {
        [flag, fence] if int_of(flag) == Some(1) => Ok(Acquired::Granted {
            fence: int_of(fence).ok_or_else(|| unexpected("lock acquire"))?,
        }),
        [flag, holder, pttl] if int_of(flag) == Some(0) => Ok(Acquired::Busy {
            holder: str_of(holder).ok_or_else(|| unexpected("lock acquire"))?,
            pttl_ms: int_of(pttl).ok_or_else(|| unexpected("lock acquire"))?,
        }),
        _ => Err(unexpected("lock acquire")),
    }
}

fn parse_sem_acquire(reply: &[Value]) -> CacheResult<SemAcquired> {
    let bad = || unexpected("semaphore acquire");
    match reply {
        [flag, fence, held] if int_of(flag) == Some(1) => Ok(SemAcquired::Granted {
            fence: int_of(fence).ok_or_else(bad)?,
            held: int_of(held).ok_or_else(bad)?,
        }),
        [flag, held, retry] if int_of(flag) == Some(0) => Ok(SemAcquired::Full {
            held: int_of(held).ok_or_else(bad)?,
            retry_ms: int_of(retry).ok_or_else(bad)?,
        }),
        _ => Err(bad()),
    }
}

/// The reply of [`Store::lock_acquire_call`].
pub fn lock_acquire_reply(r: Resp) -> CacheResult<Acquired> {
    parse_acquire(&decode::<Vec<Value>>(r)?)
}

/// The reply of [`Store::lock_release_call`]: true if the owner held the lock.
pub fn lock_release_reply(r: Resp) -> CacheResult<bool> {
    decode::<i64>(r).map(|n| n > 0)
}

impl Store {
    /// [`lock_acquire`](Self::lock_acquire) as one script call for the pipelined transport.
    pub fn lock_acquire_call(
        &self,
        resource: &str,
        id: &str,
        owner: &str,
        ttl: Duration,
    ) -> ScriptCall {
        let (key, fence_key) = self.lock_keys(resource, id);
        let ttl_ms = (ttl.as_millis() as u64).max(1).to_string();
        let fence_ttl = (FENCE_TTL.as_millis() as u64).to_string();
        ScriptCall::new(&ACQUIRE, &[&key, &fence_key], &[owner, &ttl_ms, &fence_ttl])
    }

    /// [`lock_release`](Self::lock_release) as one script call for the pipelined transport.
    pub fn lock_release_call(&self, resource: &str, id: &str, owner: &str) -> ScriptCall {
        let (key, _) = self.lock_keys(resource, id);
        ScriptCall::new(&RELEASE, &[&key], &[owner])
    }

    /// The lock key as stored and its fence counter key.
    fn lock_keys(&self, resource: &str, id: &str) -> (String, String) {
        let key = self.key(&lock_key(resource, id));
        let fence = lock_fence_key(self.prefix(), &key);
        (key, fence)
    }

    /// SET NX PX of `owner` and, when granted, the next fence; else the holder and its PTTL.
    pub async fn lock_acquire(
        &self,
        resource: &str,
        id: &str,
        owner: &str,
        ttl: Duration,
    ) -> CacheResult<Acquired> {
        let (key, fence_key) = self.lock_keys(resource, id);
        let ttl_ms = (ttl.as_millis() as u64).max(1);
        match &self.backend {
            Backend::Redis(r) => {
                let ttl_s = ttl_ms.to_string();
                let fence_ttl = (FENCE_TTL.as_millis() as u64).to_string();
                let reply: Vec<Value> = r
                    .script(&ACQUIRE, &[&key, &fence_key], &[owner, &ttl_s, &fence_ttl])
                    .await?;
                parse_acquire(&reply)
            }
            Backend::Memory(m) => m.with(|d| {
                // read before any write, as the script does
                let last = d
                    .get_str(&fence_key)?
                    .and_then(|s| s.parse::<i64>().ok())
                    .unwrap_or(0);
                if let Some(holder) = d.get_str(&key)? {
                    let pttl_ms = d.pttl(&key);
                    return Ok(Acquired::Busy { holder, pttl_ms });
                }
                d.set_str(&key, owner.to_string(), Some(Duration::from_millis(ttl_ms)));
                let fence = (last + 1).max(now_micros());
                d.set_str(&fence_key, fence.to_string(), Some(FENCE_TTL));
                Ok(Acquired::Granted { fence })
            }),
        }
    }

    /// Compare-and-delete: true only if `owner` held the lock.
    pub async fn lock_release(&self, resource: &str, id: &str, owner: &str) -> CacheResult<bool> {
        let (key, _) = self.lock_keys(resource, id);
        match &self.backend {
            Backend::Redis(r) => r
                .script::<i64>(&RELEASE, &[&key], &[owner])
                .await
                .map(|n| n > 0),
            Backend::Memory(m) => m.with(|d| {
                if d.get_str(&key)?.as_deref() == Some(owner) {
                    d.del(&key);
                    Ok(true)
                } else {
                    Ok(false)
                }
            }),
        }
    }

    /// Compare-and-pexpire: true only if `owner` holds the lock; its TTL becomes `ttl`.
    pub async fn lock_extend(
        &self,
        resource: &str,
        id: &str,
        owner: &str,
        ttl: Duration,
    ) -> CacheResult<bool> {
        let (key, _) = self.lock_keys(resource, id);
        let ttl_ms = (ttl.as_millis() as u64).max(1);
        match &self.backend {
            Backend::Redis(r) => r
                .script::<i64>(&EXTEND, &[&key], &[owner, &ttl_ms.to_string()])
                .await
                .map(|n| n > 0),
            Backend::Memory(m) => m.with(|d| {
                if d.get_str(&key)?.as_deref() == Some(owner) {
                    Ok(d.pexpire(&key, Duration::from_millis(ttl_ms)))
                } else {
                    Ok(false)
                }
            }),
        }
    }

    /// The holder of the lock and its PTTL, in one read.
    pub async fn lock_status(&self, resource: &str, id: &str) -> CacheResult<Option<Held>> {
        let (key, _) = self.lock_keys(resource, id);
        match &self.backend {
            Backend::Redis(r) => {
                let reply: Vec<Value> = r.script(&STATUS, &[&key], &[]).await?;
                match reply.as_slice() {
                    [] => Ok(None),
                    [owner, pttl] => Ok(Some(Held {
                        owner: str_of(owner).ok_or_else(|| unexpected("lock status"))?,
                        pttl_ms: int_of(pttl).ok_or_else(|| unexpected("lock status"))?,
                    })),
                    _ => Err(unexpected("lock status")),
                }
            }
            Backend::Memory(m) => m.with(|d| {
                Ok(d.get_str(&key)?.map(|owner| Held {
                    owner,
                    pttl_ms: d.pttl(&key),
                }))
            }),
        }
    }
}

impl Store {
    fn sem_stored_keys(&self, name: &str) -> (String, String) {
        let (holders, fence) = sem_keys(name);
        (self.key(&holders), self.key(&fence))
    }

    /// Takes one of `permits` permits of semaphore `name` for `owner` for `ttl`, dropping the
    /// holders whose TTL has ended first; when granted, the next fence of the semaphore.
    pub async fn sem_acquire(
        &self,
        name: &str,
        owner: &str,
        permits: u32,
        ttl: Duration,
    ) -> CacheResult<SemAcquired> {
        let (key, fence_key) = self.sem_stored_keys(name);
        let ttl_ms = (ttl.as_millis() as u64).max(1);
        match &self.backend {
            Backend::Redis(r) => {
                let fence_ttl = (FENCE_TTL.as_millis() as u64).to_string();
                let reply: Vec<Value> = r
                    .script(
                        &SEM_ACQUIRE,
                        &[&key, &fence_key],
                        &[owner, &ttl_ms.to_string(), &permits.to_string(), &fence_ttl],
                    )
                    .await?;
                parse_sem_acquire(&reply)
            }
            Backend::Memory(m) => m.with(|d| {
                // read before any write, as the script does
                let last = d
                    .get_str(&fence_key)?
                    .and_then(|s| s.parse::<i64>().ok())
                    .unwrap_or(0);
                let now = now_ms();
                let z = d.zset(&key)?;
                z.remove_below(now + 1);
                let held = z.len() as i64;
                if held >= i64::from(permits) {
                    let first = z.first_score().unwrap_or(now);
                    return Ok(SemAcquired::Full {
                        held,
                        retry_ms: first - now,
                    });
                }
                z.insert(owner, now + ttl_ms as i64);
                if d.pttl(&key) < ttl_ms as i64 {
                    d.pexpire(&key, Duration::from_millis(ttl_ms));
                }
                let fence = (last + 1).max(now_micros());
                d.set_str(&fence_key, fence.to_string(), Some(FENCE_TTL));
                Ok(SemAcquired::Granted {
                    fence,
                    held: held + 1,
                })
            }),
        }
    }

    /// Returns `owner`'s permit → true only if `owner` held it and its TTL had not ended.
    pub async fn sem_release(&self, name: &str, owner: &str) -> CacheResult<bool> {
        let (key, _) = self.sem_stored_keys(name);
        match &self.backend {
            Backend::Redis(r) => r
                .script::<i64>(&SEM_RELEASE, &[&key], &[owner])
                .await
                .map(|n| n > 0),
            Backend::Memory(m) => m.with(|d| {
                if !d.exists(&key) {
                    return Ok(false);
                }
                let z = d.zset(&key)?;
                z.remove_below(now_ms() + 1);
                let freed = z.remove(owner);
                if z.is_empty() {
                    d.del(&key);
                }
                Ok(freed)
            }),
        }
    }

    /// Moves a live holder's expiry to now + `ttl` → true only if `owner` still holds a permit.
    pub async fn sem_extend(&self, name: &str, owner: &str, ttl: Duration) -> CacheResult<bool> {
        let (key, _) = self.sem_stored_keys(name);
        let ttl_ms = (ttl.as_millis() as u64).max(1);
        match &self.backend {
            Backend::Redis(r) => r
                .script::<i64>(&SEM_EXTEND, &[&key], &[owner, &ttl_ms.to_string()])
                .await
                .map(|n| n > 0),
            Backend::Memory(m) => m.with(|d| {
                if !d.exists(&key) {
                    return Ok(false);
                }
                let now = now_ms();
                let z = d.zset(&key)?;
                if z.score(owner).is_none_or(|s| s <= now) {
                    return Ok(false);
                }
                z.insert(owner, now + ttl_ms as i64);
                if d.pttl(&key) < ttl_ms as i64 {
                    d.pexpire(&key, Duration::from_millis(ttl_ms));
                }
                Ok(true)
            }),
        }
    }

    /// The live holders of semaphore `name`, in one read.
    pub async fn sem_status(&self, name: &str) -> CacheResult<SemStatus> {
        let (key, _) = self.sem_stored_keys(name);
        match &self.backend {
            Backend::Redis(r) => {
                let reply: Vec<Value> = r.script(&SEM_STATUS, &[&key], &[]).await?;
                match reply.as_slice() {
                    [held, next] => Ok(SemStatus {
                        held: int_of(held).ok_or_else(|| unexpected("semaphore status"))?,
                        next_expiry_ms: int_of(next)
                            .ok_or_else(|| unexpected("semaphore status"))?,
                    }),
                    _ => Err(unexpected("semaphore status")),
                }
            }
            Backend::Memory(m) => m.with(|d| {
                if !d.exists(&key) {
                    return Ok(SemStatus {
                        held: 0,
                        next_expiry_ms: -1,
                    });
                }
                let now = now_ms();
                let z = d.zset(&key)?;
                z.remove_below(now + 1);
                let status = SemStatus {
                    held: z.len() as i64,
                    next_expiry_ms: z.first_score().map_or(-1, |s| s - now),
                };
                if z.is_empty() {
                    d.del(&key);
                }
                Ok(status)
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::keys::lock_fence_key;
    use crate::names::slot::{key_slot, same_slot, slot_string};

    fn memory_store(name: &str) -> Store {
        Store::from_config(
            &crate::config::Config::from_options(crate::config::NativeOptions {
                url: Some(format!("memory://{name}")),
                ..Default::default()
            })
            .unwrap(),
        )
        .unwrap()
        .unwrap()
    }

    fn block_on(f: impl std::future::Future<Output = ()>) {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn key_slot_matches_redis() {
        // Values from the Redis Cluster specification / CLUSTER KEYSLOT.
        assert_eq!(key_slot("123456789"), 0x31c3 & 0x3fff);
        assert_eq!(key_slot("foo"), 12182);
        assert_eq!(key_slot("{user1000}.following"), key_slot("user1000"));
        assert_eq!(key_slot("foo{}{bar}"), key_slot("foo{}{bar}"));
        assert_eq!(slot_string("foo{}{bar}"), "foo{}{bar}");
        assert_eq!(slot_string("foo{{bar}}zap"), "{bar");
        assert_eq!(slot_string("foo{bar}{zap}"), "bar");
    }

    #[test]
    fn the_fence_key_shares_the_lock_keys_slot() {
        for (prefix, resource, id) in [
            ("", "task", "99"),
            ("erp:prod:", "payment", "a:b:c"),
            ("{erp}:", "approval", "7"),
            ("", "res{x}", "1"),
            ("p:", "r", "{tagged}id"),
            ("", "r", "a{b"),
        ] {
            let key = format!("{prefix}{}", lock_key(resource, id));
            let fence = lock_fence_key(prefix, &key);
            assert!(fence.starts_with(prefix), "{fence} keeps the prefix");
            assert!(!fence.starts_with(&format!("{prefix}lock:")), "{fence}");
            assert!(same_slot(&key, &fence), "{key} / {fence}");
            assert_eq!(key_slot(&key), key_slot(&fence), "{key} / {fence}");
        }
        // The documented exceptions: a tagless lock key holding a `}`, a prefix with an
        // unclosed `{`. (Standalone Redis does not care; a Cluster would refuse the lock.)
        for (prefix, key) in [
            ("", "lock:r:{}x"),
            ("", "lock:a}b:1"),
            ("p{", "p{lock:r:1}"),
        ] {
            assert!(!same_slot(key, &lock_fence_key(prefix, key)), "{key}");
        }
        assert_eq!(
            lock_fence_key("", "lock:task:99"),
            "lock-fence:{lock:task:99}"
        );
        assert_eq!(
            lock_fence_key("erp:", "erp:lock:task:99"),
            "erp:lock-fence:{erp:lock:task:99}"
        );
    }

    #[test]
    fn acquire_replies_are_parsed() {
        let granted = [
            Value::Int(1),
            Value::BulkString(b"1764000000000001".to_vec()),
        ];
        assert_eq!(
            parse_acquire(&granted).unwrap(),
            Acquired::Granted {
                fence: 1_764_000_000_000_001
            }
        );
        let busy = [
            Value::Int(0),
            Value::BulkString(b"n:1:ab".to_vec()),
            Value::Int(2500),
        ];
        assert_eq!(
            parse_acquire(&busy).unwrap(),
            Acquired::Busy {
                holder: "n:1:ab".into(),
                pttl_ms: 2500
            }
        );
        assert!(parse_acquire(&[Value::Int(1)]).is_err());
        assert!(parse_acquire(&[Value::Int(2), Value::Int(1)]).is_err());
    }

    #[test]
    fn memory_locks_are_owner_checked_and_fenced() {
        let store = memory_store("lock-unit");
        let ttl = Duration::from_secs(5);
        block_on(async {
            let a = store.lock_acquire("r", "1", "a", ttl).await.unwrap();
            let Acquired::Granted { fence: f1 } = a else {
                panic!("{a:?}")
            };
            match store.lock_acquire("r", "1", "b", ttl).await.unwrap() {
                Acquired::Busy { holder, pttl_ms } => {
                    assert_eq!(holder, "a");
                    assert!(pttl_ms > 4000 && pttl_ms <= 5000);
                }
                other => panic!("{other:?}"),
            }
            assert!(!store.lock_release("r", "1", "b").await.unwrap());
            assert!(!store.lock_extend("r", "1", "b", ttl).await.unwrap());
            assert!(store.lock_extend("r", "1", "a", ttl).await.unwrap());
            assert_eq!(
                store.lock_status("r", "1").await.unwrap().map(|h| h.owner),
                Some("a".to_string())
            );
            assert!(store.lock_release("r", "1", "a").await.unwrap());
            assert_eq!(store.lock_status("r", "1").await.unwrap(), None);
            let Acquired::Granted { fence: f2 } =
                store.lock_acquire("r", "1", "b", ttl).await.unwrap()
            else {
                panic!("free lock not granted")
            };
            assert!(f2 > f1, "{f2} > {f1}");
            assert!(
                f1 >= now_micros() - 60_000_000,
                "the fence has a clock floor"
            );
        });
    }

    #[test]
    fn semaphore_keys_share_one_hash_tag_and_names_cannot_break_it() {
        let (holders, fence) = sem_keys("reports");
        assert_eq!(holders, "sem:{reports}");
        assert_eq!(fence, "sem:{reports}:fence");
        for prefix in ["", "erp:", "{erp}:", "p{"] {
            let (h, f) = sem_keys("a:b");
            assert!(
                same_slot(&format!("{prefix}{h}"), &format!("{prefix}{f}")),
                "{prefix}"
            );
        }
        for bad in ["", "a{b", "}x", "a b", "*"] {
            assert_eq!(
                check_sem_name(bad).unwrap_err().code(),
                "ERR_INVALID_ARG",
                "{bad:?}"
            );
        }
        assert!(check_sem_name("report-jobs:eu").is_ok());
    }

    #[test]
    fn memory_semaphores_bound_holders_expire_and_fence() {
        let store = memory_store("sem-unit");
        block_on(async {
            let long = Duration::from_secs(5);
            let short = Duration::from_millis(30);
            let SemAcquired::Granted { fence: f1, held: 1 } =
                store.sem_acquire("s", "a", 2, long).await.unwrap()
            else {
                panic!("first permit")
            };
            let SemAcquired::Granted { fence: f2, held: 2 } =
                store.sem_acquire("s", "b", 2, short).await.unwrap()
            else {
                panic!("second permit")
            };
            assert!(f2 > f1);
            match store.sem_acquire("s", "c", 2, long).await.unwrap() {
                SemAcquired::Full { held: 2, retry_ms } => assert!((0..=30).contains(&retry_ms)),
                other => panic!("{other:?}"),
            }
            assert!(!store.sem_release("s", "c").await.unwrap(), "not a holder");
            assert!(store.sem_extend("s", "a", long).await.unwrap());
            assert!(!store.sem_extend("s", "c", long).await.unwrap());
            std::thread::sleep(Duration::from_millis(40));
            assert!(!store.sem_release("s", "b").await.unwrap(), "expired");
            assert_eq!(store.sem_status("s").await.unwrap().held, 1);
            let SemAcquired::Granted { fence: f3, .. } =
                store.sem_acquire("s", "c", 2, long).await.unwrap()
            else {
                panic!("the expired permit was not freed")
            };
            assert!(f3 > f2);
            assert!(store.sem_release("s", "a").await.unwrap());
            assert!(!store.sem_release("s", "a").await.unwrap(), "idempotent");
            assert!(store.sem_release("s", "c").await.unwrap());
            assert_eq!(
                store.sem_status("s").await.unwrap(),
                SemStatus {
                    held: 0,
                    next_expiry_ms: -1
                }
            );
        });
    }
}
