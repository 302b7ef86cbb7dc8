//! The rules both languages follow, defined once: error codes and which of them mean "the back
//! end failed", the pub/sub channel names, the TTL and size bounds, the default rate limits and
//! the default super roles. The Rust code uses these constants; JS reads them from [`rules`]
//! once, when `lib/rules.js` loads, and spells none of them again.

use napi_derive::napi;

// ---- error codes (the `code` of every error the package raises for a cache operation) ----

/// Wrong type or a malformed id/value (TypeError).
pub const ERR_INVALID_ARG: &str = "ERR_INVALID_ARG";
/// A value or id over its size bound (RangeError).
pub const ERR_VALUE_TOO_LARGE: &str = "ERR_VALUE_TOO_LARGE";
/// A number outside its allowed range (RangeError).
pub const ERR_OUT_OF_RANGE: &str = "ERR_OUT_OF_RANGE";
/// No back end configured.
pub const ECACHEDISABLED: &str = "ECACHEDISABLED";
/// Redis did not answer within `commandTimeoutMs`.
pub const ETIMEDOUT: &str = "ETIMEDOUT";
/// The connection is down or could not be made.
pub const ECACHEUNAVAILABLE: &str = "ECACHEUNAVAILABLE";
/// Redis answered with an error.
pub const ERR_REDIS: &str = "ERR_REDIS";
/// `shutdown()` was called on the instance.
pub const ECLOSED: &str = "ECLOSED";
/// The circuit breaker skips Redis for a cool-down.
pub const ECIRCUITOPEN: &str = "ECIRCUITOPEN";
/// An operation ended without an answer (a bug).
pub const ERR_CACHE_INTERNAL: &str = "ERR_CACHE_INTERNAL";
/// Too many operations in flight in this process: raised by the JS bridge before a call
/// reaches Rust (lib/errors.js `overloadError`).
pub const ERR_CACHE_OVERLOAD: &str = "ERR_CACHE_OVERLOAD";

/// The codes of back-end failures, as opposed to bad input: the caller falls back (reads ask
/// the loader, limits fail open, locks are refused, revocations are journaled) and `stats()`
/// counts an error; anything else is rethrown to the caller.
///
/// `ECACHEDISABLED` is one. A cache created without a Redis URL answers every operation with
/// it, and the contract for that case is fail-open: the ERP runs on its loaders exactly as
/// when Redis is down (lib/context.js falls back only for codes of this set and rethrows the
/// rest, so leaving it out would make every call of a cache-less deployment throw). The few
/// places that must tell "nothing configured" from "Redis failed" test the code itself: the
/// journal keeps no revocation when there is no cache to revoke from, and a lock attempt does
/// not retry.
pub const BACKEND_FAILURE_CODES: [&str; 8] = [
    ECACHEDISABLED,
    ETIMEDOUT,
    ECACHEUNAVAILABLE,
    ERR_REDIS,
    ECLOSED,
    ECIRCUITOPEN,
    ERR_CACHE_INTERNAL,
    ERR_CACHE_OVERLOAD,
];

/// True for a code of [`BACKEND_FAILURE_CODES`].
pub fn is_backend_code(code: &str) -> bool {
    BACKEND_FAILURE_CODES.contains(&code)
}

// ---- pub/sub ----

pub const CH_PERMISSIONS: &str = "permissions:invalidate";
pub const CH_SESSIONS: &str = "sessions:invalidate";
pub const CH_CACHE: &str = "cache:invalidate";
/// The channels, in the order of their sequence counters (a channel's index is its slot).
pub const CHANNELS: [&str; 3] = [CH_PERMISSIONS, CH_SESSIONS, CH_CACHE];

// ---- permissions ----

/// User permission snapshots live 60 s to 5 min (default 5 min).
pub const USER_TTL_MIN_SEC: f64 = 60.0;
pub const USER_TTL_MAX_SEC: f64 = 300.0;

// ---- sessions ----

/// Longest raw token accepted (UTF-8 bytes): generous for JWTs (several KB).
/// `getSessionWithFallback` answers null past it without asking the loader; `hashToken`
/// refuses it with RangeError ERR_VALUE_TOO_LARGE.
pub const MAX_TOKEN_BYTES: usize = 64 * 1024;
/// A session is cached for one hour at most.
pub const MAX_SESSION_TTL_MS: f64 = 3_600_000.0;

// ---- locks ----

/// A lock is held for one day at most.
pub const MAX_LOCK_TTL_MS: f64 = 86_400_000.0;

// ---- rate limits ----

/// Largest `max` of a limit.
pub const MAX_LIMIT: f64 = 1_000_000_000.0;
/// Longest window of a limit (one week).
pub const MAX_WINDOW_SEC: f64 = 604_800.0;
/// The endpoint name of the limit that applies to every endpoint without its own.
pub const DEFAULT_LIMIT_ENDPOINT: &str = "default";
/// The default limits: `(endpoint, max, windowSec)`.
pub const DEFAULT_LIMITS: [(&str, u32, u32); 5] = [
    ("/api/auth/login", 5, 60),
    ("/api/auth/register", 3, 60),
    ("/api/otp/send", 3, 60),
    ("/api/payments", 30, 60),
    (DEFAULT_LIMIT_ENDPOINT, 100, 60),
];

// ---- permissions ----

/// The roles that grant every module and page unless `superRoles` says otherwise.
pub const DEFAULT_SUPER_ROLES: [&str; 1] = ["SUPER_ADMIN"];
/// In a snapshot's `modules`, grants every module; in a page's action list, every action of
/// that page.
pub const PERMISSION_WILDCARD: &str = "*";

// ---- the near cache's shared memory (`SharedWords`, read by lib/near_l1.js) ----

/// Index of the 32-bit word holding the JS generation.
pub const NEAR_WORD_GEN: u32 = 0;
/// Index of the 32-bit word that is 1 while the near cache is trusted.
pub const NEAR_WORD_TRUSTED: u32 = 1;

// ---- the delivery of answers to JS (src/bridge.rs writes it, lib/bridge.js reads it) ----

/// Numbers per completion in a delivery's head: id, kind, and two numbers.
pub const BATCH_ROW: u32 = 4;
/// Kinds of answer in a head row: the next entry of the delivery's values…
pub const BATCH_VALUE: u8 = 0;
/// …null, false, true…
pub const BATCH_NIL: u8 = 1;
pub const BATCH_FALSE: u8 = 2;
pub const BATCH_TRUE: u8 = 3;
/// …the row's first number, a fresh array of the row's two numbers…
pub const BATCH_NUM: u8 = 4;
pub const BATCH_PAIR: u8 = 5;
/// …or a failure: the next entry of the values is its Error (with `code`).
pub const BATCH_ERROR: u8 = 6;

/// The delivery format's constants, by name.
#[napi(object)]
pub struct BatchFormat {
    pub row: u32,
    pub value: u32,
    pub nil: u32,
    pub bool_false: u32,
    pub bool_true: u32,
    pub num: u32,
    pub pair: u32,
    pub error: u32,
}

/// Every error code, by name.
#[napi(object)]
pub struct ErrorCodes {
    pub invalid_arg: String,
    pub value_too_large: String,
    pub out_of_range: String,
    pub disabled: String,
    pub timeout: String,
    pub unavailable: String,
    pub redis: String,
    pub closed: String,
    pub circuit_open: String,
    pub internal: String,
    pub overload: String,
}

/// The pub/sub channels, by name.
#[napi(object)]
pub struct Channels {
    pub permissions: String,
    pub sessions: String,
    pub cache: String,
}

/// One default rate limit.
#[napi(object)]
pub struct RateLimitRule {
    pub endpoint: String,
    pub max: u32,
    pub window_sec: u32,
}

/// The shared rules as JS reads them (lib/rules.js freezes them).
#[napi(object)]
pub struct Rules {
    pub error_codes: ErrorCodes,
    pub backend_failure_codes: Vec<String>,
    pub channel: Channels,
    /// The channels in the order of [`CHANNELS`].
    pub channels: Vec<String>,
    pub session_max_ttl_ms: f64,
    pub session_max_token_bytes: u32,
    pub lock_max_ttl_ms: f64,
    pub rate_limit_max: f64,
    pub rate_limit_max_window_sec: f64,
    pub default_rate_limits: Vec<RateLimitRule>,
    pub default_super_roles: Vec<String>,
    pub permission_wildcard: String,
    pub near_word_gen: u32,
    pub near_word_trusted: u32,
    pub perm_user_ttl_min_sec: f64,
    pub perm_user_ttl_max_sec: f64,
    pub batch: BatchFormat,
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// The shared rules (read once by lib/rules.js).
#[napi]
pub fn rules() -> Rules {
    Rules {
        error_codes: ErrorCodes {
            invalid_arg: ERR_INVALID_ARG.into(),
            value_too_large: ERR_VALUE_TOO_LARGE.into(),
            out_of_range: ERR_OUT_OF_RANGE.into(),
            disabled: ECACHEDISABLED.into(),
            timeout: ETIMEDOUT.into(),
            unavailable: ECACHEUNAVAILABLE.into(),
            redis: ERR_REDIS.into(),
            closed: ECLOSED.into(),
            circuit_open: ECIRCUITOPEN.into(),
            internal: ERR_CACHE_INTERNAL.into(),
            overload: ERR_CACHE_OVERLOAD.into(),
        },
        backend_failure_codes: strings(&BACKEND_FAILURE_CODES),
        channel: Channels {
            permissions: CH_PERMISSIONS.into(),
            sessions: CH_SESSIONS.into(),
            cache: CH_CACHE.into(),
        },
        channels: strings(&CHANNELS),
        session_max_ttl_ms: MAX_SESSION_TTL_MS,
        session_max_token_bytes: MAX_TOKEN_BYTES as u32,
        lock_max_ttl_ms: MAX_LOCK_TTL_MS,
        rate_limit_max: MAX_LIMIT,
        rate_limit_max_window_sec: MAX_WINDOW_SEC,
        default_rate_limits: DEFAULT_LIMITS
            .iter()
            .map(|&(endpoint, max, window_sec)| RateLimitRule {
                endpoint: endpoint.into(),
                max,
                window_sec,
            })
            .collect(),
        default_super_roles: strings(&DEFAULT_SUPER_ROLES),
        permission_wildcard: PERMISSION_WILDCARD.into(),
        near_word_gen: NEAR_WORD_GEN,
        near_word_trusted: NEAR_WORD_TRUSTED,
        perm_user_ttl_min_sec: USER_TTL_MIN_SEC,
        perm_user_ttl_max_sec: USER_TTL_MAX_SEC,
        batch: BatchFormat {
            row: BATCH_ROW,
            value: BATCH_VALUE.into(),
            nil: BATCH_NIL.into(),
            bool_false: BATCH_FALSE.into(),
            bool_true: BATCH_TRUE.into(),
            num: BATCH_NUM.into(),
            pair: BATCH_PAIR.into(),
            error: BATCH_ERROR.into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_codes_js_reads_are_the_constants() {
        let r = rules();
        assert_eq!(r.backend_failure_codes, strings(&BACKEND_FAILURE_CODES));
        assert_eq!(r.error_codes.disabled, ECACHEDISABLED);
        assert_eq!(
            r.channels,
            vec![r.channel.permissions, r.channel.sessions, r.channel.cache]
        );
        assert_eq!(r.default_rate_limits.len(), DEFAULT_LIMITS.len());
        assert!(r
            .default_rate_limits
            .iter()
            .any(|l| l.endpoint == DEFAULT_LIMIT_ENDPOINT));
        assert!(is_backend_code(ECACHEDISABLED));
        assert!(!is_backend_code(ERR_INVALID_ARG));
    }
}
