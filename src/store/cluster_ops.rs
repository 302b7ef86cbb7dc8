//! The store operations that a single Redis runs as one multi-key script, split for Redis
//! Cluster, where the documented key names put their keys in different slots (no hash tag is
//! possible without renaming keys the ERP already reads). Each part is a single-key command or
//! script, so each part is atomic, and the parts are ordered so that the whole stays safe:
//!
//! - `setSession`: the user's index first (cluster_session_index.lua 'add': prune by score,
//!   ZADD scored with the expiry, TTL raise), then the session (SET PX). A failure in between
//!   leaves an index member without a session, which every reader filters out (and
//!   `listUserSessions` prunes); never a session its user's index does not name, which
//!   `removeUserSessions` would miss. Pruning keeps a grace ([`INDEX_GRACE_MS`]) since the
//!   session is written after its member, on another node.
//! - `invalidateSession`: revision bump + GETDEL of the session (one script in its slot), then
//!   ZREM ('rem') from the index it names.
//! - `removeUserSessions`: the index's revision bump first, then the members ('members'),
//!   revision bump + DEL of each session, then 'rem' of exactly those members (a session
//!   added meanwhile stays indexed), repeated until empty (bounded).
//! - a loader's session fill: the guarded index add first (refused when the user's sessions
//!   were revoked at or after the miss, less [`SKEW_MS`]), then the guarded SET in the
//!   session's slot. In that order a user-wide revocation after the add finds the member in
//!   the index and bumps the session's revision, so the SET is refused.
//! - `listUserSessions`: the members after pruning ('live'), EXISTS of each session, 'rem' of
//!   the dead ones.
//! - `rate hit`: the IP's index entry first (cluster_rate_index.lua), then the counter
//!   (cluster_rate_count.lua, INCR + TTL in one script: exactness and the TTL invariant hold).
//! - `resetLimit`: DEL of the counter, then HDEL of its index entry.
//! - `resetAllLimitsForIp`: HKEYS of the index, DEL of each counter, HDEL of exactly those
//!   entries. `getIpStatus`: HGETALL, GET+PTTL of each counter, HDEL of dead entries.
//! - `invalidatePattern`: SCAN + UNLINK on every primary.
//!
//! Locks need no split: the fence key is hash-tagged to its lock key's slot.

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use super::codec::{cmd, decode};
use super::rate_limit::RateStatus;
use super::revision::{BUMP, REV_TTL_MS, SKEW_MS};
use super::script::{Script, ScriptCall};
use super::session::{index_script, user_of};
use super::transport::cluster::ClusterStore;
use super::Store;
use crate::error::{CacheError, CacheResult};
use crate::names::keys::{rate_ip_key, rate_key, session_key, session_user_key};
use std::time::Duration as StdDuration;

static SESSION_INDEX: LazyLock<Script> =
    LazyLock::new(|| Script::new(index_script!("scripts/cluster_session_index.lua")));
static SESSION_INDEX_GUARDED: LazyLock<Script> = LazyLock::new(|| {
    Script::new(index_script!(
        "scripts/cluster_session_index_guard.lua",
        "scripts/cluster_session_index.lua"
    ))
});
static RATE_INDEX: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/cluster_rate_index.lua")));
static RATE_COUNT: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/cluster_rate_count.lua")));
static COUNTER_STATUS: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/cluster_counter_status.lua")));

/// A session index member stays this long past its score on a cluster: its session is
/// written just after it, on another node.
const INDEX_GRACE_MS: &str = "5000";
/// `removeUserSessions` passes at most this many times over a set that keeps refilling.
const MAX_PASSES: usize = 100;
/// Keys asked of each SCAN step, keys per UNLINK, and the bounds of a pattern delete.
const SCAN_COUNT: usize = 1000;
const UNLINK_BATCH: usize = 500;
const PATTERN_DEADLINE: Duration = Duration::from_secs(30);
const MAX_SCAN_STEPS: usize = 1_000_000;

impl Store {
    /// The cluster back end, when the store is on Redis Cluster.
    pub fn cluster(&self) -> Option<&ClusterStore> {
        match &self.backend {
            super::Backend::Redis(r) => r.cluster(),
            _ => None,
        }
    }

    pub(crate) async fn cluster_session_put(
        &self,
        c: &ClusterStore,
        hash: &str,
        json: &str,
        ttl_ms: u64,
        user_id: Option<&str>,
    ) -> CacheResult<()> {
        let ttl_s = ttl_ms.to_string();
        if let Some(u) = user_id {
            let set = self.key(&session_user_key(u));
            c.script::<i64>(
                &SESSION_INDEX,
                &[&set],
                &["add", hash, &ttl_s, INDEX_GRACE_MS],
            )
            .await?;
        }
        let key = self.key(&session_key(hash));
        c.query::<()>(cmd("SET").arg(&key).arg(json).arg("PX").arg(ttl_ms))
            .await
    }

    /// A loader's session fill on a cluster (see the module's notes) → whether written.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn cluster_session_fill(
        &self,
        c: &ClusterStore,
        hash: &str,
        json: &str,
        ttl_ms: u64,
        user_id: Option<&str>,
        seen: &str,
        t: i64,
    ) -> CacheResult<bool> {
        let key = self.key(&session_key(hash));
        if !self.rev_colocated(&key) {
            return Ok(false);
        }
        if let Some(u) = user_id {
            let set = self.key(&session_user_key(u));
            if !self.rev_colocated(&set) {
                return Ok(false);
            }
            let set_rev = self.rev_of(&set);
            let since = (t - SKEW_MS).to_string();
            let ttl_s = ttl_ms.to_string();
            let added: i64 = c
                .script(
                    &SESSION_INDEX_GUARDED,
                    &[&set, &set_rev],
                    &["add", hash, &ttl_s, INDEX_GRACE_MS, &since],
                )
                .await?;
            if added != 1 {
                return Ok(false);
            }
        }
        self.guarded_fill(
            &session_key(hash),
            json,
            StdDuration::from_millis(ttl_ms),
            seen,
            t,
        )
        .await
    }

    /// A session's touch on a cluster: the index lives in another slot, so the session is
    /// checked first (a gone one is not written back into the index), then its index entry is
    /// raised before the session's TTL, so the index never names it for less time than it
    /// lives → whether the session exists.
    pub(crate) async fn cluster_session_touch(
        &self,
        c: &ClusterStore,
        hash: &str,
        ttl_ms: u64,
        user_id: Option<&str>,
    ) -> CacheResult<bool> {
        let key = self.key(&session_key(hash));
        if c.query::<i64>(cmd("EXISTS").arg(&key)).await? == 0 {
            return Ok(false);
        }
        if let Some(u) = user_id {
            let set = self.key(&session_user_key(u));
            let ttl_s = ttl_ms.to_string();
            c.script::<i64>(
                &SESSION_INDEX,
                &[&set],
                &["add", hash, &ttl_s, INDEX_GRACE_MS],
            )
            .await?;
        }
        Ok(c.query::<i64>(cmd("PEXPIRE").arg(&key).arg(ttl_ms)).await? == 1)
    }

    pub(crate) async fn cluster_session_remove(
        &self,
        c: &ClusterStore,
        hash: &str,
    ) -> CacheResult<bool> {
        let key = self.key(&session_key(hash));
        let Some(json) = self.revoke_stored(&key).await? else {
            return Ok(false);
        };
        if let Some(uid) = user_of(&json) {
            let set = self.key(&session_user_key(&uid));
            c.script::<i64>(&SESSION_INDEX, &[&set], &["rem", hash])
                .await?;
        }
        Ok(true)
    }

    pub(crate) async fn cluster_session_remove_user(
        &self,
        c: &ClusterStore,
        user_id: &str,
    ) -> CacheResult<u32> {
        let set = self.key(&session_user_key(user_id));
        // the index's revision first: every fill of this user's sessions whose load began
        // before is refused (at its index add, or at its SET through the session's own bump)
        c.script::<String>(&BUMP, &[&self.rev_of(&set)], &[&REV_TTL_MS.to_string()])
            .await?;
        let mut n = 0u32;
        for _ in 0..MAX_PASSES {
            let members: Vec<String> = c.script(&SESSION_INDEX, &[&set], &["members"]).await?;
            if members.is_empty() {
                return Ok(n);
            }
            for m in &members {
                let k = self.key(&session_key(m));
                if self.revoke_stored(&k).await?.is_some() {
                    n += 1;
                }
            }
            self.cluster_index_remove(c, &set, &members).await?;
        }
        Ok(n)
    }

    pub(crate) async fn cluster_session_list_user(
        &self,
        c: &ClusterStore,
        user_id: &str,
    ) -> CacheResult<Vec<String>> {
        let set = self.key(&session_user_key(user_id));
        let members: Vec<String> = c
            .script(&SESSION_INDEX, &[&set], &["live", INDEX_GRACE_MS])
            .await?;
        let mut live = Vec::with_capacity(members.len());
        let mut dead = Vec::new();
        for m in members {
            let k = self.key(&session_key(&m));
            if c.query::<i64>(cmd("EXISTS").arg(&k)).await? == 1 {
                live.push(m);
            } else {
                dead.push(m);
            }
        }
        self.cluster_index_remove(c, &set, &dead).await?;
        Ok(live)
    }

    /// ZREM of `members` from a user's session index, in bounded batches.
    async fn cluster_index_remove(
        &self,
        c: &ClusterStore,
        set: &str,
        members: &[String],
    ) -> CacheResult<()> {
        for chunk in members.chunks(UNLINK_BATCH) {
            let mut args = vec!["rem"];
            args.extend(chunk.iter().map(String::as_str));
            c.script::<i64>(&SESSION_INDEX, &[set], &args).await?;
        }
        Ok(())
    }

    /// A rate hit on a cluster as its two script calls, in order: the IP's index entry,
    /// then the counter (whose reply is the hit's, see `rate_hit_reply`).
    pub fn cluster_rate_hit_calls(
        &self,
        ip: &str,
        endpoint: &str,
        limit: u64,
        window: Duration,
    ) -> (ScriptCall, ScriptCall) {
        let key = self.key(&rate_key(ip, endpoint));
        let index = self.key(&rate_ip_key(ip));
        let window_ms = (window.as_millis() as u64).max(1);
        let (w, l) = (window_ms.to_string(), limit.to_string());
        (
            ScriptCall::new(&RATE_INDEX, &[&index], &[endpoint, &l, &w]),
            ScriptCall::new(&RATE_COUNT, &[&key], &[&w]),
        )
    }

    pub(crate) async fn cluster_rate_hit(
        &self,
        c: &ClusterStore,
        ip: &str,
        endpoint: &str,
        limit: u64,
        window_ms: u64,
    ) -> CacheResult<(i64, i64)> {
        let window = Duration::from_millis(window_ms);
        let (index, count) = self.cluster_rate_hit_calls(ip, endpoint, limit, window);
        c.call(index).await?;
        decode(c.call(count).await?)
    }

    pub(crate) async fn cluster_rate_reset(
        &self,
        c: &ClusterStore,
        ip: &str,
        endpoint: &str,
    ) -> CacheResult<bool> {
        let key = self.key(&rate_key(ip, endpoint));
        let index = self.key(&rate_ip_key(ip));
        let n: i64 = c.query(cmd("DEL").arg(&key)).await?;
        c.query::<i64>(cmd("HDEL").arg(&index).arg(endpoint))
            .await?;
        Ok(n > 0)
    }

    pub(crate) async fn cluster_rate_reset_ip(
        &self,
        c: &ClusterStore,
        ip: &str,
    ) -> CacheResult<u32> {
        let index = self.key(&rate_ip_key(ip));
        let endpoints: Vec<String> = c.query(cmd("HKEYS").arg(&index)).await?;
        let mut n = 0u32;
        for e in &endpoints {
            let k = self.key(&rate_key(ip, e));
            n += c.query::<u32>(cmd("DEL").arg(&k)).await?;
        }
        if !endpoints.is_empty() {
            c.query::<i64>(cmd("HDEL").arg(&index).arg(&endpoints))
                .await?;
        }
        Ok(n)
    }

    pub(crate) async fn cluster_rate_ip_status(
        &self,
        c: &ClusterStore,
        ip: &str,
    ) -> CacheResult<Vec<RateStatus>> {
        let index = self.key(&rate_ip_key(ip));
        let flat: Vec<(String, String)> = c.query(cmd("HGETALL").arg(&index)).await?;
        let mut out = Vec::new();
        let mut dead = Vec::new();
        for (endpoint, limit) in flat {
            let k = self.key(&rate_key(ip, &endpoint));
            let (hits, left): (Option<i64>, i64) = c.script(&COUNTER_STATUS, &[&k], &[]).await?;
            match hits {
                Some(current) if left > 0 => out.push(RateStatus {
                    limit: limit.parse().unwrap_or(0),
                    endpoint,
                    current,
                    left_ms: left,
                }),
                _ => dead.push(endpoint),
            }
        }
        if !dead.is_empty() {
            c.query::<i64>(cmd("HDEL").arg(&index).arg(&dead)).await?;
        }
        Ok(out)
    }

    /// SCAN + UNLINK of `full` (prefix applied, escaped) on every primary.
    pub(crate) async fn cluster_delete_pattern(
        &self,
        c: &ClusterStore,
        full: &str,
    ) -> CacheResult<u64> {
        let started = Instant::now();
        let mut removed: u64 = 0;
        for node in c.primaries().await? {
            // a multi-key UNLINK is split by slot by `ClusterStore::query`: no CROSSSLOT
            let mut cursor: u64 = 0;
            let mut done = false;
            for _ in 0..MAX_SCAN_STEPS {
                let (next, found): (u64, Vec<String>) = c
                    .query_on(
                        &node,
                        cmd("SCAN")
                            .arg(cursor)
                            .arg("MATCH")
                            .arg(full)
                            .arg("COUNT")
                            .arg(SCAN_COUNT),
                    )
                    .await?;
                for chunk in found.chunks(UNLINK_BATCH) {
                    removed += c.query::<u64>(cmd("UNLINK").arg(chunk)).await?;
                }
                cursor = next;
                if cursor == 0 {
                    done = true;
                    break;
                }
                if started.elapsed() > PATTERN_DEADLINE {
                    break;
                }
            }
            if !done {
                return Err(CacheError::Timeout(started.elapsed().as_millis() as u64));
            }
        }
        Ok(removed)
    }
}
