//! Rate-limit operations of the store: fixed-window counters `rate:{ip}:{endpoint}`, plus a
//! per-IP index (`rate-ip:{ip}`, endpoint as given → its limit) so that an IP's counters can be
//! listed and removed exactly. One script (Redis) or one critical section (memory) each.

use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use super::codec::{decimal, decode, Resp};
use super::memory::{Entry, MemData, MemVal};
use super::script::{BatchCall, Script};
use super::{Backend, Store};
use crate::error::{CacheError, CacheResult};
use crate::names::keys::{push_rate_ip_key, push_rate_key, rate_ip_key, rate_key};

static HIT: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("scripts/rate_hit.lua")));
static ADJUST: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/rate_adjust.lua")));
static RESET: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/rate_reset.lua")));
static RESET_IP: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/rate_reset_ip.lua")));
static IP_STATUS: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/rate_ip_status.lua")));

/// One live counter of an IP, as `getIpStatus` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateStatus {
    pub endpoint: String,
    pub limit: i64,
    pub current: i64,
    pub left_ms: i64,
}

fn not_an_integer() -> CacheError {
    CacheError::Redis("ERR value is not an integer or out of range".into())
}

fn wrong_type() -> CacheError {
    CacheError::Redis("WRONGTYPE Operation against a key holding the wrong kind of value".into())
}

/// INCR with the window's TTL set when the counter is created (or found without one):
/// → (hits, ms left, whether this hit started the window).
fn mem_incr(d: &mut MemData, key: &str, window: Duration) -> CacheResult<(i64, i64, bool)> {
    let window_ms = window.as_millis() as i64;
    match d.entry(key) {
        None => {
            d.put(key, MemVal::Str("1".into()), Some(window));
            Ok((1, window_ms, true))
        }
        Some(Entry {
            val: MemVal::Str(s),
            expires_at,
        }) => {
            let n = s
                .parse::<i64>()
                .ok()
                .and_then(|n| n.checked_add(1))
                .ok_or_else(not_an_integer)?;
            *s = n.to_string();
            match expires_at {
                Some(t) => Ok((
                    n,
                    t.saturating_duration_since(Instant::now()).as_millis() as i64,
                    false,
                )),
                None => {
                    *expires_at = Some(Instant::now() + window);
                    Ok((n, window_ms, true))
                }
            }
        }
        Some(_) => Err(wrong_type()),
    }
}

/// What [`Store::rate_adjust`] does to a live counter (see `scripts/rate_adjust.lua`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateAdjust {
    /// Reads it.
    Peek,
    /// Takes one hit back: never below 0, never on a counter that is gone.
    Undo,
    /// Keeps it for at least this long from now (a lockout); one that is gone is written back
    /// with this count.
    Block { ms: u64, total: i64 },
}

impl RateAdjust {
    fn mode(self) -> &'static str {
        match self {
            RateAdjust::Peek => "peek",
            RateAdjust::Undo => "undo",
            RateAdjust::Block { .. } => "block",
        }
    }
}

/// The memory store's `rate_adjust.lua` → (hits, ms left).
fn mem_adjust(d: &mut MemData, key: &str, op: RateAdjust) -> CacheResult<(i64, i64)> {
    let current = d.get_str(key)?.and_then(|s| s.parse::<i64>().ok());
    let left = d.pttl(key);
    if let RateAdjust::Block { ms, total } = op {
        let Some(n) = current else {
            d.set_str(key, total.to_string(), Some(Duration::from_millis(ms)));
            return Ok((total, ms as i64));
        };
        if left < ms as i64 {
            d.pexpire(key, Duration::from_millis(ms));
            return Ok((n, ms as i64));
        }
        return Ok((n, left));
    }
    let Some(n) = current.filter(|_| left > 0) else {
        return Ok((0, 0));
    };
    if op == RateAdjust::Undo && n > 0 {
        if let Some(Entry {
            val: MemVal::Str(s),
            ..
        }) = d.entry(key)
        {
            *s = (n - 1).to_string();
        }
        return Ok((n - 1, left));
    }
    Ok((n, left))
}

/// HSET; a new hash is created without expiry, as in Redis: callers set its TTL.
fn mem_hset(d: &mut MemData, key: &str, field: &str, value: &str) -> CacheResult<()> {
    if d.entry(key).is_none() {
        d.put(key, MemVal::Hash(HashMap::new()), None);
    }
    match d.entry(key) {
        Some(Entry {
            val: MemVal::Hash(h),
            ..
        }) => {
            h.insert(field.to_string(), value.to_string());
            Ok(())
        }
        _ => Err(wrong_type()),
    }
}

fn mem_hgetall(d: &mut MemData, key: &str) -> CacheResult<Vec<(String, String)>> {
    match d.entry(key) {
        None => Ok(Vec::new()),
        Some(Entry {
            val: MemVal::Hash(h),
            ..
        }) => Ok(h.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
        Some(_) => Err(wrong_type()),
    }
}

/// HDEL; an emptied hash is removed, as in Redis.
fn mem_hdel(d: &mut MemData, key: &str, field: &str) -> CacheResult<()> {
    let now_empty = match d.entry(key) {
        None => return Ok(()),
        Some(Entry {
            val: MemVal::Hash(h),
            ..
        }) => {
            h.remove(field);
            h.is_empty()
        }
        Some(_) => return Err(wrong_type()),
    };
    if now_empty {
        d.del(key);
    }
    Ok(())
}

/// The reply of [`Store::rate_hit_call`]: (hits, ms left).
pub fn rate_hit_reply(r: Resp) -> CacheResult<(i64, i64)> {
    decode(r)
}

impl Store {
    /// [`rate_hit`](Self::rate_hit) as one call of its script for the pipelined transport,
    /// which sends the hits of one tick together (`NativeCache::batch_direct`); its reply
    /// decodes with [`rate_hit_reply`].
    pub fn rate_hit_call(
        &self,
        ip: &str,
        endpoint: &str,
        limit: u64,
        window: Duration,
    ) -> BatchCall {
        // every hit's call: its keys and numbers written without intermediate strings
        let key = self.key_with(6 + ip.len() + endpoint.len(), |k| {
            push_rate_key(k, ip, endpoint)
        });
        let index = self.key_with(8 + ip.len(), |k| push_rate_ip_key(k, ip));
        let window_ms = (window.as_millis() as u64).max(1);
        let (mut w, mut l) = ([0u8; 20], [0u8; 20]);
        BatchCall::new(
            &HIT,
            &[&key, &index],
            &[decimal(window_ms, &mut w), endpoint, decimal(limit, &mut l)],
        )
    }

    /// Counts one hit of `ip` on `endpoint` in a fixed window of `window`; the first hit of a
    /// window sets the counter's TTL and records `endpoint` (with `limit`) in the IP's index.
    /// → (hits in this window including this one, ms left in the window).
    pub async fn rate_hit(
        &self,
        ip: &str,
        endpoint: &str,
        limit: u64,
        window: Duration,
    ) -> CacheResult<(i64, i64)> {
        let key = self.key(&rate_key(ip, endpoint));
        let index = self.key(&rate_ip_key(ip));
        let window_ms = (window.as_millis() as u64).max(1);
        if let Some(c) = self.cluster() {
            return self
                .cluster_rate_hit(c, ip, endpoint, limit, window_ms)
                .await;
        }
        match &self.backend {
            Backend::Redis(r) => {
                let (w, l) = (window_ms.to_string(), limit.to_string());
                r.script::<(i64, i64)>(&HIT, &[&key, &index], &[&w, endpoint, &l])
                    .await
            }
            Backend::Memory(m) => m.with(|d| {
                let window = Duration::from_millis(window_ms);
                let (n, left, started) = mem_incr(d, &key, window)?;
                if started {
                    mem_hset(d, &index, endpoint, &limit.to_string())?;
                    if d.pttl(&index) < left {
                        d.pexpire(&index, Duration::from_millis(left.max(1) as u64));
                    }
                }
                Ok((n, left))
            }),
        }
    }

    /// Reads, takes a hit back from, or extends (a lockout) the live counter of `ip` on
    /// `endpoint` without counting a hit → (hits, ms left); (0, 0) when there is none.
    pub async fn rate_adjust(
        &self,
        ip: &str,
        endpoint: &str,
        op: RateAdjust,
    ) -> CacheResult<(i64, i64)> {
        let key = self.key(&rate_key(ip, endpoint));
        let (ms, total) = match op {
            RateAdjust::Block { ms, total } => (ms.max(1).to_string(), total.to_string()),
            _ => (String::new(), String::new()),
        };
        let args = [op.mode(), ms.as_str(), total.as_str()];
        if let Some(c) = self.cluster() {
            return c.script::<(i64, i64)>(&ADJUST, &[&key], &args).await;
        }
        match &self.backend {
            Backend::Redis(r) => r.script::<(i64, i64)>(&ADJUST, &[&key], &args).await,
            Backend::Memory(m) => m.with(|d| mem_adjust(d, &key, op)),
        }
    }

    /// Removes the counter of `ip` on `endpoint`; true if it existed.
    pub async fn rate_reset(&self, ip: &str, endpoint: &str) -> CacheResult<bool> {
        if let Some(c) = self.cluster() {
            return self.cluster_rate_reset(c, ip, endpoint).await;
        }
        let key = self.key(&rate_key(ip, endpoint));
        let index = self.key(&rate_ip_key(ip));
        match &self.backend {
            Backend::Redis(r) => r
                .script::<i64>(&RESET, &[&key, &index], &[endpoint])
                .await
                .map(|n| n > 0),
            Backend::Memory(m) => m.with(|d| {
                let existed = d.del(&key);
                mem_hdel(d, &index, endpoint)?;
                Ok(existed)
            }),
        }
    }

    /// Removes every counter of `ip` (and only of `ip`); returns how many existed.
    pub async fn rate_reset_ip(&self, ip: &str) -> CacheResult<u32> {
        if let Some(c) = self.cluster() {
            return self.cluster_rate_reset_ip(c, ip).await;
        }
        let index = self.key(&rate_ip_key(ip));
        let counters = self.key(&rate_key(ip, ""));
        match &self.backend {
            Backend::Redis(r) => r.script::<u32>(&RESET_IP, &[&index], &[&counters]).await,
            Backend::Memory(m) => m.with(|d| {
                let mut n = 0;
                for (endpoint, _) in mem_hgetall(d, &index)? {
                    if d.del(&self.key(&rate_key(ip, &endpoint))) {
                        n += 1;
                    }
                }
                d.del(&index);
                Ok(n)
            }),
        }
    }

    /// The live counters of `ip`; index entries of expired or reset counters are pruned.
    pub async fn rate_ip_status(&self, ip: &str) -> CacheResult<Vec<RateStatus>> {
        if let Some(c) = self.cluster() {
            return self.cluster_rate_ip_status(c, ip).await;
        }
        let index = self.key(&rate_ip_key(ip));
        let counters = self.key(&rate_key(ip, ""));
        match &self.backend {
            Backend::Redis(r) => r
                .script::<Vec<(String, i64, i64, i64)>>(&IP_STATUS, &[&index], &[&counters])
                .await
                .map(|rows| {
                    rows.into_iter()
                        .map(|(endpoint, limit, current, left_ms)| RateStatus {
                            endpoint,
                            limit,
                            current,
                            left_ms,
                        })
                        .collect()
                }),
            Backend::Memory(m) => m.with(|d| {
                let mut out = Vec::new();
                for (endpoint, limit) in mem_hgetall(d, &index)? {
                    let key = self.key(&rate_key(ip, &endpoint));
                    let current = d.get_str(&key)?.and_then(|s| s.parse::<i64>().ok());
                    let left_ms = d.pttl(&key);
                    match current {
                        Some(current) if left_ms > 0 => out.push(RateStatus {
                            endpoint,
                            limit: limit.parse().unwrap_or(0),
                            current,
                            left_ms,
                        }),
                        _ => mem_hdel(d, &index, &endpoint)?,
                    }
                }
                Ok(out)
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_counter_counts_within_its_window_and_always_has_a_ttl() {
        let mut d = MemData::default();
        let w = Duration::from_secs(60);
        assert_eq!(mem_incr(&mut d, "c", w).unwrap().0, 1);
        assert!(!mem_incr(&mut d, "c", w).unwrap().2);
        let (n, left, _) = mem_incr(&mut d, "c", w).unwrap();
        assert_eq!(n, 3);
        assert!(left > 59_000 && left <= 60_000, "{left}");
        assert!(d.pttl("c") > 0);
    }

    #[test]
    fn a_counter_found_without_ttl_gets_one() {
        let mut d = MemData::default();
        d.set_str("c", "7".into(), None);
        let (n, left, started) = mem_incr(&mut d, "c", Duration::from_secs(5)).unwrap();
        assert_eq!((n, left, started), (8, 5000, true));
        assert!(d.pttl("c") > 0);
    }

    #[test]
    fn a_non_integer_is_an_error_not_a_panic() {
        let mut d = MemData::default();
        d.set_str("c", "x".into(), Some(Duration::from_secs(5)));
        assert!(mem_incr(&mut d, "c", Duration::from_secs(5)).is_err());
        d.set_str("m", i64::MAX.to_string(), Some(Duration::from_secs(5)));
        assert!(mem_incr(&mut d, "m", Duration::from_secs(5)).is_err());
        d.sadd("s", "a").unwrap();
        assert!(mem_incr(&mut d, "s", Duration::from_secs(5)).is_err());
    }

    #[test]
    fn an_undo_never_goes_below_zero_nor_outlives_its_window() {
        let mut d = MemData::default();
        let w = Duration::from_secs(60);
        assert_eq!(mem_adjust(&mut d, "c", RateAdjust::Undo).unwrap(), (0, 0));
        assert!(!d.exists("c"), "an undo never makes a counter");
        mem_incr(&mut d, "c", w).unwrap();
        mem_incr(&mut d, "c", w).unwrap();
        assert_eq!(mem_adjust(&mut d, "c", RateAdjust::Undo).unwrap().0, 1);
        assert_eq!(mem_adjust(&mut d, "c", RateAdjust::Undo).unwrap().0, 0);
        assert_eq!(mem_adjust(&mut d, "c", RateAdjust::Undo).unwrap().0, 0);
        assert!(d.pttl("c") > 59_000, "the TTL stays");
        d.set_str("n", "3".into(), None);
        assert_eq!(mem_adjust(&mut d, "n", RateAdjust::Undo).unwrap(), (0, 0));
        assert_eq!(d.get_str("n").unwrap().as_deref(), Some("3"));
    }

    #[test]
    fn a_block_extends_the_window_and_never_shortens_it() {
        let mut d = MemData::default();
        mem_incr(&mut d, "c", Duration::from_secs(60)).unwrap();
        let (n, left) = mem_adjust(
            &mut d,
            "c",
            RateAdjust::Block {
                ms: 600_000,
                total: 9,
            },
        )
        .unwrap();
        assert_eq!((n, left), (1, 600_000));
        let (_, left) = mem_adjust(
            &mut d,
            "c",
            RateAdjust::Block {
                ms: 1_000,
                total: 9,
            },
        )
        .unwrap();
        assert!(left > 599_000, "{left}");
        let (n, left) = mem_adjust(
            &mut d,
            "gone",
            RateAdjust::Block {
                ms: 5_000,
                total: 6,
            },
        )
        .unwrap();
        assert_eq!((n, left), (6, 5_000));
        assert_eq!(mem_adjust(&mut d, "gone", RateAdjust::Peek).unwrap().0, 6);
    }

    #[test]
    fn hashes_behave_like_redis_hashes() {
        let mut d = MemData::default();
        mem_hset(&mut d, "h", "a", "1").unwrap();
        mem_hset(&mut d, "h", "a", "2").unwrap();
        assert_eq!(
            mem_hgetall(&mut d, "h").unwrap(),
            vec![("a".into(), "2".into())]
        );
        mem_hdel(&mut d, "h", "a").unwrap();
        assert!(!d.exists("h"), "an emptied hash is removed");
        d.set_str("s", "v".into(), None);
        assert!(mem_hset(&mut d, "s", "a", "1").is_err());
    }
}
