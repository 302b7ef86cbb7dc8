//! Options from JS, validated once. A Redis URL never appears in an error or `Debug` output.

use std::time::Duration;

use napi_derive::napi;

use crate::error::{CacheError, CacheResult};
use crate::keys;

/// What the JS façade passes to `new NativeCache(options, onBatch)`.
#[napi(object)]
#[derive(Default)]
pub struct NativeOptions {
    /// `redis://…`, `rediss://…`, `memory://[name]`; absent means disabled.
    pub url: Option<String>,
    pub key_prefix: Option<String>,
    pub command_timeout_ms: Option<f64>,
    pub connect_timeout_ms: Option<f64>,
    pub max_value_bytes: Option<f64>,
    /// Near cache of permission snapshots: TTL in ms (0 disables), and its size bound.
    pub near_cache_ttl_ms: Option<f64>,
    pub near_cache_max: Option<f64>,
    /// Roles that grant everything (default `['SUPER_ADMIN']`).
    pub super_roles: Option<Vec<String>>,
}

/// Where the data lives.
pub enum Backend {
    Disabled,
    /// Instances naming the same memory store share its data, as nodes share one Redis.
    Memory(String),
    Redis(RedisTarget),
}

/// A Redis URL with its password kept apart, so that every error can be scrubbed of it.
pub struct RedisTarget {
    pub url: String,
    pub password: Option<String>,
}

impl std::fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisTarget(<redacted>)")
    }
}

pub struct Config {
    pub backend: Backend,
    pub key_prefix: String,
    pub command_timeout: Duration,
    pub connect_timeout: Duration,
    pub max_value_bytes: usize,
}

pub const DEFAULT_COMMAND_TIMEOUT_MS: f64 = 1000.0;
pub const DEFAULT_CONNECT_TIMEOUT_MS: f64 = 2000.0;
pub const DEFAULT_MAX_VALUE_BYTES: f64 = 512.0 * 1024.0;

fn millis(what: &str, v: Option<f64>, default: f64) -> CacheResult<Duration> {
    let ms = v.unwrap_or(default);
    if !ms.is_finite() || ms.fract() != 0.0 || !(1.0..=600_000.0).contains(&ms) {
        return Err(CacheError::OutOfRange(format!(
            "{what} must be a whole number of milliseconds from 1 to 600000 (got {ms})"
        )));
    }
    Ok(Duration::from_millis(ms as u64))
}

/// Splits the password out of `scheme://[user:]pass@host…` (percent-encoded and decoded forms).
fn password_of(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let userinfo = authority.rsplit_once('@')?.0;
    let pass = match userinfo.split_once(':') {
        Some((_, p)) => p,
        None => userinfo,
    };
    if pass.is_empty() {
        None
    } else {
        Some(pass.to_string())
    }
}

/// Percent-decodes a URL component (for scrubbing: redis-rs may echo the decoded form).
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
            if let Ok(b) = u8::from_str_radix(hex, 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Config {
    pub fn from_options(o: NativeOptions) -> CacheResult<Config> {
        let backend =
            match o.url.as_deref().map(str::trim) {
                None | Some("") => Backend::Disabled,
                Some(u) if u.starts_with("memory://") => {
                    let name = &u["memory://".len()..];
                    let name = if name.is_empty() { "default" } else { name };
                    Backend::Memory(name.to_string())
                }
                Some(u) if u.starts_with("redis://") || u.starts_with("rediss://") => {
                    Backend::Redis(RedisTarget {
                        url: u.to_string(),
                        password: password_of(u),
                    })
                }
                Some(_) => return Err(CacheError::InvalidArg(
                    "url must start with redis://, rediss:// or memory:// (the value is not shown)"
                        .into(),
                )),
            };
        let key_prefix = o.key_prefix.unwrap_or_default();
        if !key_prefix.is_empty() {
            keys::check_id("keyPrefix", &key_prefix)?;
        }
        let max_value_bytes = o.max_value_bytes.unwrap_or(DEFAULT_MAX_VALUE_BYTES);
        if !max_value_bytes.is_finite()
            || max_value_bytes.fract() != 0.0
            || !(1.0..=536_870_912.0).contains(&max_value_bytes)
        {
            return Err(CacheError::OutOfRange(format!(
                "maxValueBytes must be a whole number from 1 to 536870912 (got {max_value_bytes})"
            )));
        }
        Ok(Config {
            backend,
            key_prefix,
            command_timeout: millis(
                "commandTimeoutMs",
                o.command_timeout_ms,
                DEFAULT_COMMAND_TIMEOUT_MS,
            )?,
            connect_timeout: millis(
                "connectTimeoutMs",
                o.connect_timeout_ms,
                DEFAULT_CONNECT_TIMEOUT_MS,
            )?,
            max_value_bytes: max_value_bytes as usize,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(url: &str) -> CacheResult<Config> {
        Config::from_options(NativeOptions {
            url: Some(url.into()),
            ..Default::default()
        })
    }

    #[test]
    fn backends_by_scheme() {
        assert!(matches!(cfg("").unwrap().backend, Backend::Disabled));
        assert!(matches!(cfg("memory://").unwrap().backend, Backend::Memory(n) if n == "default"));
        assert!(matches!(cfg("memory://a").unwrap().backend, Backend::Memory(n) if n == "a"));
        assert!(matches!(
            cfg("redis://127.0.0.1:6379").unwrap().backend,
            Backend::Redis(_)
        ));
        assert!(matches!(
            cfg("rediss://h:1").unwrap().backend,
            Backend::Redis(_)
        ));
    }

    #[test]
    fn a_bad_url_is_refused_without_echoing_it() {
        let e = cfg("http://user:hunter2@host").err().unwrap();
        assert_eq!(e.code(), "ERR_INVALID_ARG");
        assert!(!e.to_string().contains("hunter2"));
    }

    #[test]
    fn the_password_is_found_for_scrubbing() {
        assert_eq!(password_of("redis://:pw@h:1/0").as_deref(), Some("pw"));
        assert_eq!(
            password_of("redis://u:p%40ss@h:1").as_deref(),
            Some("p%40ss")
        );
        assert_eq!(percent_decode("p%40ss"), "p@ss");
        assert_eq!(password_of("redis://h:1"), None);
        let t = RedisTarget {
            url: "redis://:pw@h".into(),
            password: Some("pw".into()),
        };
        assert!(!format!("{t:?}").contains("pw"));
    }

    #[test]
    fn timeouts_are_range_checked() {
        let e = Config::from_options(NativeOptions {
            command_timeout_ms: Some(0.0),
            ..Default::default()
        })
        .err()
        .unwrap();
        assert_eq!(e.code(), "ERR_OUT_OF_RANGE");
    }
}
