//! rateLimiter: the native half. Fixed-window counters, counted atomically in the store.

use std::time::Duration;

use napi::Env;
use napi_derive::napi;

use super::replies;
use crate::bridge::{NativeCache, Reply};
use crate::error::{js, CacheError, CacheResult};
use crate::names::keys::{self, JsId};
use crate::store::codec::Resp;
use crate::store::rate_limit::{rate_hit_reply, RateAdjust};

/// The bounds of `max` and `windowSec`.
pub use crate::rules::{MAX_LIMIT, MAX_WINDOW_SEC};

fn check_limits(max: f64, window_sec: f64) -> CacheResult<(u64, Duration)> {
    if !max.is_finite() || max.fract() != 0.0 || !(0.0..=MAX_LIMIT).contains(&max) {
        return Err(CacheError::OutOfRange(format!(
            "max must be a whole number from 0 to {MAX_LIMIT} (got {max})"
        )));
    }
    if !window_sec.is_finite()
        || window_sec.fract() != 0.0
        || !(1.0..=MAX_WINDOW_SEC).contains(&window_sec)
    {
        return Err(CacheError::OutOfRange(format!(
            "windowSec must be a whole number of seconds from 1 to {MAX_WINDOW_SEC} (got {window_sec})"
        )));
    }
    Ok((max as u64, Duration::from_secs(window_sec as u64)))
}

/// Validates an (ip, endpoint) pair: both become part of a key.
fn ip_endpoint(ip: JsId, endpoint: &str) -> CacheResult<String> {
    let ip = keys::id_string("ip", ip)?;
    keys::check_id("endpoint", endpoint)?;
    Ok(ip)
}

#[napi]
impl NativeCache {
    /// Counts one hit of `ip` on `endpoint` (fixed window of `windowSec`, limit `max`, which is
    /// recorded for getIpStatus) → `[total, ms left in the window]`.
    #[napi]
    pub fn rate_hit(
        &self,
        env: Env,
        id: u32,
        ip: JsId,
        endpoint: String,
        max: f64,
        window_sec: f64,
    ) -> napi::Result<()> {
        js(
            &env,
            self.start_rate_hit(id, ip, &endpoint, max, window_sec),
        )
    }

    /// [`rate_hit`](Self::rate_hit) once its arguments are read (also the work of the
    /// hand-written entry of `fastRateHit()`).
    pub(crate) fn start_rate_hit(
        &self,
        id: u32,
        ip: JsId,
        endpoint: &str,
        max: f64,
        window_sec: f64,
    ) -> CacheResult<()> {
        let ip = ip_endpoint(ip, endpoint)?;
        let (max, window) = check_limits(max, window_sec)?;
        let answer = |r: CacheResult<Resp>| {
            let (total, left) = rate_hit_reply(r?)?;
            Ok(replies::counter(total, left))
        };
        if let Some(s) = self.one_server_store() {
            let call = s.rate_hit_call(&ip, endpoint, max, window);
            self.batch_direct(id, call, answer);
            return Ok(());
        }
        if let Some(s) = self.direct_store() {
            // a cluster: the IP's index entry, then the counter (see cluster_ops.rs)
            let (index, count) = s.cluster_rate_hit_calls(&ip, endpoint, max, window);
            self.script_pair_direct(id, index, count, answer);
            return Ok(());
        }
        let endpoint = endpoint.to_string();
        self.run(id, move |s| async move {
            s.rate_hit(&ip, &endpoint, max, window)
                .await
                .map(|(total, left)| replies::counter(total, left))
        });
        Ok(())
    }

    /// Reads the live counter of `ip` on `endpoint` without counting a hit →
    /// `[total, ms left]` (`[0, 0]` when there is none).
    #[napi]
    pub fn rate_peek(&self, env: Env, id: u32, ip: JsId, endpoint: String) -> napi::Result<()> {
        self.rate_adjust(env, id, ip, endpoint, RateAdjust::Peek)
    }

    /// Takes one hit back from the live counter of `ip` on `endpoint` (never below 0; a
    /// counter that is gone stays gone) → `[total, ms left]`.
    #[napi]
    pub fn rate_undo(&self, env: Env, id: u32, ip: JsId, endpoint: String) -> napi::Result<()> {
        self.rate_adjust(env, id, ip, endpoint, RateAdjust::Undo)
    }

    /// Keeps the counter of `ip` on `endpoint` for at least `blockSec` from now (a lockout
    /// longer than its window; a counter that expired meanwhile is written back as `total`)
    /// → `[total, ms left]`.
    #[napi]
    pub fn rate_block(
        &self,
        env: Env,
        id: u32,
        ip: JsId,
        endpoint: String,
        total: f64,
        block_sec: f64,
    ) -> napi::Result<()> {
        let (total, block) = js(&env, check_limits(total, block_sec))?;
        let op = RateAdjust::Block {
            ms: block.as_millis() as u64,
            total: total as i64,
        };
        self.rate_adjust(env, id, ip, endpoint, op)
    }

    /// Removes the counter of `ip` on `endpoint` → true if it existed.
    #[napi]
    pub fn rate_reset(&self, env: Env, id: u32, ip: JsId, endpoint: String) -> napi::Result<()> {
        let ip = js(&env, ip_endpoint(ip, &endpoint))?;
        self.run(id, move |s| async move {
            s.rate_reset(&ip, &endpoint).await.map(Reply::Bool)
        });
        Ok(())
    }

    /// Removes every counter of `ip` → how many existed.
    #[napi]
    pub fn rate_reset_ip(&self, env: Env, id: u32, ip: JsId) -> napi::Result<()> {
        let ip = js(&env, keys::id_string("ip", ip))?;
        self.run(id, move |s| async move {
            s.rate_reset_ip(&ip).await.map(|n| Reply::Num(n as f64))
        });
        Ok(())
    }

    /// The live counters of `ip` → JSON `{ [endpoint]: { current, limit, resetIn } }`.
    #[napi]
    pub fn rate_ip_status(&self, env: Env, id: u32, ip: JsId) -> napi::Result<()> {
        let ip = js(&env, keys::id_string("ip", ip))?;
        self.run(id, move |s| async move {
            s.rate_ip_status(&ip).await.map(replies::rate_status)
        });
        Ok(())
    }
}

impl NativeCache {
    fn rate_adjust(
        &self,
        env: Env,
        id: u32,
        ip: JsId,
        endpoint: String,
        op: RateAdjust,
    ) -> napi::Result<()> {
        let ip = js(&env, ip_endpoint(ip, &endpoint))?;
        self.run(id, move |s| async move {
            s.rate_adjust(&ip, &endpoint, op)
                .await
                .map(|(total, left)| replies::counter(total, left))
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_range_checked() {
        assert!(check_limits(5.0, 60.0).is_ok());
        assert!(check_limits(0.0, 1.0).is_ok());
        for (max, w) in [
            (-1.0, 60.0),
            (1.5, 60.0),
            (f64::NAN, 60.0),
            (5.0, 0.0),
            (5.0, 0.5),
            (5.0, MAX_WINDOW_SEC + 1.0),
            (MAX_LIMIT + 1.0, 60.0),
            (5.0, f64::INFINITY),
        ] {
            assert_eq!(
                check_limits(max, w).unwrap_err().code(),
                "ERR_OUT_OF_RANGE",
                "{max} {w}"
            );
        }
    }
}
