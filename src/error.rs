//! One error type for the whole crate, mapped to JS errors with stable `code`s.

use napi::{sys, Env, JsError, JsRangeError, JsTypeError, Status};

use crate::rules;

#[derive(Debug, Clone, thiserror::Error)]
pub enum CacheError {
    /// Wrong type or a malformed id/value: JS `TypeError`, `code: 'ERR_INVALID_ARG'`.
    #[error("{0}")]
    InvalidArg(String),
    /// A value over `maxValueBytes` (or an id over its length cap): `RangeError`, `ERR_VALUE_TOO_LARGE`.
    #[error("{0}")]
    TooLarge(String),
    /// A number outside its allowed range (TTL, timeout…): `RangeError`, `ERR_OUT_OF_RANGE`.
    #[error("{0}")]
    OutOfRange(String),
    /// No back end configured: the caller falls back (fail-open).
    #[error("cache is disabled (no Redis URL configured)")]
    Disabled,
    /// Redis did not answer within `commandTimeoutMs`.
    #[error("Redis did not answer within {0} ms")]
    Timeout(u64),
    /// The connection is down or could not be made. The text is already free of secrets.
    #[error("Redis unavailable: {0}")]
    Unavailable(String),
    /// Redis answered with an error (OOM, NOPERM, …). The text is already free of secrets.
    #[error("Redis error: {0}")]
    Redis(String),
    /// `shutdown()` was called on this instance.
    #[error("cache instance is shut down")]
    Closed,
    /// The circuit breaker is open: Redis failed repeatedly and is skipped for a cool-down.
    #[error("Redis is skipped for a cool-down after repeated failures (circuit open)")]
    CircuitOpen,
    /// An operation ended without an answer (a bug: it panicked, or its task was dropped).
    /// Treated like a back-end failure, so the caller falls back instead of waiting forever.
    #[error("internal error: {0}")]
    Internal(&'static str),
}

pub type CacheResult<T> = std::result::Result<T, CacheError>;

enum JsKind {
    Type,
    Range,
    Plain,
}

impl CacheError {
    pub fn code(&self) -> &'static str {
        match self {
            CacheError::InvalidArg(_) => rules::ERR_INVALID_ARG,
            CacheError::TooLarge(_) => rules::ERR_VALUE_TOO_LARGE,
            CacheError::OutOfRange(_) => rules::ERR_OUT_OF_RANGE,
            CacheError::Disabled => rules::ECACHEDISABLED,
            CacheError::Timeout(_) => rules::ETIMEDOUT,
            CacheError::Unavailable(_) => rules::ECACHEUNAVAILABLE,
            CacheError::Redis(_) => rules::ERR_REDIS,
            CacheError::Closed => rules::ECLOSED,
            CacheError::CircuitOpen => rules::ECIRCUITOPEN,
            CacheError::Internal(_) => rules::ERR_CACHE_INTERNAL,
        }
    }

    /// True for failures of the back end (as opposed to bad input): these make the caller
    /// fall back, and count as errors in `stats()`. The set is [`rules::BACKEND_FAILURE_CODES`]
    /// (which says why `Disabled` is one), the same set JS reads.
    pub fn is_backend_failure(&self) -> bool {
        rules::is_backend_code(self.code())
    }

    fn kind(&self) -> JsKind {
        match self {
            CacheError::InvalidArg(_) => JsKind::Type,
            CacheError::TooLarge(_) | CacheError::OutOfRange(_) => JsKind::Range,
            _ => JsKind::Plain,
        }
    }

    fn to_napi(&self) -> napi::Error<String> {
        napi::Error::new(self.code().to_string(), self.to_string())
    }

    /// Throws this error as the right JS class on the JS thread and returns the marker error
    /// that tells napi-rs an exception is already pending.
    pub fn throw(self, env: &Env) -> napi::Error {
        let msg = self.to_string();
        let code = Some(self.code());
        let _ = match self.kind() {
            JsKind::Type => env.throw_type_error(&msg, code),
            JsKind::Range => env.throw_range_error(&msg, code),
            JsKind::Plain => env.throw_error(&msg, code),
        };
        napi::Error::from_status(Status::PendingException)
    }

    /// Builds the JS error object (for rejections delivered in a batch).
    ///
    /// # Safety
    /// `env` must be the live env of the calling JS thread.
    pub unsafe fn to_js(&self, env: sys::napi_env) -> sys::napi_value {
        let e = self.to_napi();
        unsafe {
            match self.kind() {
                JsKind::Type => JsTypeError::from(e).into_value(env),
                JsKind::Range => JsRangeError::from(e).into_value(env),
                JsKind::Plain => JsError::from(e).into_value(env),
            }
        }
    }
}

/// Makes a napi `Result` of a `CacheResult`, throwing the typed JS error.
pub fn js<T>(env: &Env, r: CacheResult<T>) -> napi::Result<T> {
    r.map_err(|e| e.throw(env))
}

/// Replaces every occurrence of `secret` in `text` (a Redis password must never reach an
/// error, a log line or `Debug` output).
pub fn redact(text: &str, secret: Option<&str>) -> String {
    match secret {
        Some(s) if !s.is_empty() => text.replace(s, "***"),
        _ => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable() {
        assert_eq!(CacheError::InvalidArg("x".into()).code(), "ERR_INVALID_ARG");
        assert_eq!(
            CacheError::TooLarge("x".into()).code(),
            "ERR_VALUE_TOO_LARGE"
        );
        assert_eq!(CacheError::Timeout(5).code(), "ETIMEDOUT");
        assert!(CacheError::Timeout(5).is_backend_failure());
        assert!(!CacheError::InvalidArg("x".into()).is_backend_failure());
    }

    /// One of each variant: the drift check of the codes against the shared rules.
    fn every_variant() -> Vec<CacheError> {
        vec![
            CacheError::InvalidArg("x".into()),
            CacheError::TooLarge("x".into()),
            CacheError::OutOfRange("x".into()),
            CacheError::Disabled,
            CacheError::Timeout(5),
            CacheError::Unavailable("x".into()),
            CacheError::Redis("x".into()),
            CacheError::Closed,
            CacheError::CircuitOpen,
            CacheError::Internal("x"),
        ]
    }

    #[test]
    fn the_back_end_failures_are_the_shared_set() {
        let backend: Vec<&str> = every_variant()
            .iter()
            .filter(|e| e.is_backend_failure())
            .map(CacheError::code)
            .collect();
        // Every back-end code but the one JS raises itself (ERR_CACHE_OVERLOAD) is a variant's.
        let expected: Vec<&str> = rules::BACKEND_FAILURE_CODES
            .into_iter()
            .filter(|c| *c != rules::ERR_CACHE_OVERLOAD)
            .collect();
        assert_eq!(backend, expected);
        assert!(CacheError::Disabled.is_backend_failure());
        for input in ["ERR_INVALID_ARG", "ERR_VALUE_TOO_LARGE", "ERR_OUT_OF_RANGE"] {
            assert!(!rules::is_backend_code(input), "{input}");
        }
    }

    #[test]
    fn redact_hides_the_secret() {
        assert_eq!(
            redact("auth s3cr3t failed", Some("s3cr3t")),
            "auth *** failed"
        );
        assert_eq!(redact("plain", None), "plain");
        assert_eq!(redact("plain", Some("")), "plain");
    }
}
