//! The pub/sub channels (canonical names and their sequence-counter indices) and the rules for
//! the keys and patterns an invalidation may name.

use super::keys;
use crate::error::{CacheError, CacheResult};
use crate::rules::CHANNELS;

/// The index of a canonical channel name in [`CHANNELS`] (the sequence counters' slot).
pub fn channel_index(name: &str) -> CacheResult<usize> {
    CHANNELS
        .iter()
        .position(|c| *c == name)
        .ok_or_else(|| CacheError::InvalidArg(format!("not a pub/sub channel: {name:?}")))
}

/// A channel name as JS gives it → the canonical one.
pub fn channel_of(name: &str) -> CacheResult<&'static str> {
    CHANNELS.into_iter().find(|c| *c == name).ok_or_else(|| {
        CacheError::InvalidArg(format!(
            "channel must be one of {} (got {name:?})",
            CHANNELS.join(", ")
        ))
    })
}

/// Key families this library writes itself. A pattern may reach into one only with a literal
/// that goes past the family's prefix (`perm:user:42*`, never `perm:user:*` or `perm:*`):
/// `invalidatePattern` must not be a way to drop every session, every snapshot or every rate
/// counter at once (the services have their own calls for their own keys).
const OWN_FAMILIES: [&str; 6] = [
    "session:",
    "session:user:",
    "perm:user:",
    "perm:role:",
    "rate:",
    "rate-ip:",
];
/// First segments a pattern may never name: locks, semaphores (`sem:{name}` and
/// `sem:{name}:fence`, src/store/lock.rs) and their fencing counters are no cache entries, and
/// deleting one hands its resource to a second owner, frees held permits, or resets a fence
/// counter.
const NEVER_FAMILIES: [&str; 3] = ["lock", "lock-fence", "sem"];

/// Bytes that make a Redis MATCH pattern more than a literal (`\` escapes one).
fn is_glob(c: char) -> bool {
    matches!(c, '*' | '?' | '[' | ']' | '\\')
}

/// A pattern for `invalidatePattern` (keys under `keyPrefix`, Redis MATCH syntax). Refused:
/// - empty, longer than 512 bytes, or holding control characters;
/// - a first segment (up to the first `:`, or the whole pattern without one) that is empty
///   or holds a glob character or `\` (so `*`, `?*`, `*?`, `[^]*`, `*:*`, `:*`, `da*:x`);
/// - any pattern whose first segment is `lock`, `lock-fence` or `sem`;
/// - a pattern whose literal part (everything before its first glob character or `\`) does
///   not reach past the prefix of one of the library's own families [`OWN_FAMILIES`]: it
///   would match every key of that family (`session:*`, `session:user:*`, `session:u*`,
///   `perm:*`, `perm:user:*`, `perm:*:5`, `rate:*`, `rate-ip:*`).
///
/// The app's own families take any pattern behind a literal first segment: `dash:*`,
/// `dash:stats:*`, `report:sales:*` (the guide's examples) keep working.
pub fn check_pattern(pattern: &str) -> CacheResult<()> {
    if pattern.is_empty() {
        return Err(CacheError::InvalidArg(
            "pattern must name something: an empty pattern is refused".into(),
        ));
    }
    if pattern.len() > keys::MAX_ID_BYTES {
        return Err(CacheError::TooLarge(format!(
            "pattern is {} bytes long; the limit is {}",
            pattern.len(),
            keys::MAX_ID_BYTES
        )));
    }
    if pattern.chars().any(char::is_control) {
        return Err(CacheError::InvalidArg(
            "pattern must not contain control characters".into(),
        ));
    }
    let first = pattern.split(':').next().unwrap_or_default();
    if first.is_empty() || first.chars().any(is_glob) {
        return Err(CacheError::InvalidArg(
            "pattern must start with a literal segment (before the first ':', no '*', '?', \
             '[', ']' or '\\'), e.g. 'dash:*': a glob there reaches every key family"
                .into(),
        ));
    }
    if NEVER_FAMILIES.contains(&first) {
        return Err(CacheError::InvalidArg(format!(
            "pattern must not name {first}: keys: locks and semaphores are no cache entries \
             (release them with distributedLock.release or semaphore(name).release)"
        )));
    }
    let literal_end = pattern.find(is_glob);
    if let Some(end) = literal_end {
        let literal = &pattern[..end];
        if let Some(family) = OWN_FAMILIES.iter().find(|f| f.starts_with(literal)) {
            return Err(CacheError::InvalidArg(format!(
                "pattern would match every key of the {family}* family; name more of the key \
                 before the first glob (or use the service's own invalidation)"
            )));
        }
    }
    Ok(())
}

/// An exact key for `invalidateKeys`.
pub fn check_key(key: &str) -> CacheResult<()> {
    if key.is_empty() {
        return Err(CacheError::InvalidArg(
            "keys must not be empty strings".into(),
        ));
    }
    if key.len() > keys::MAX_ID_BYTES {
        return Err(CacheError::TooLarge(format!(
            "a key is {} bytes long; the limit is {}",
            key.len(),
            keys::MAX_ID_BYTES
        )));
    }
    if key.chars().any(char::is_control) {
        return Err(CacheError::InvalidArg(
            "keys must not contain control characters".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::CH_CACHE;

    #[test]
    fn only_the_three_channels() {
        assert_eq!(channel_of("cache:invalidate").unwrap(), CH_CACHE);
        assert_eq!(channel_of("x").unwrap_err().code(), "ERR_INVALID_ARG");
    }

    #[test]
    fn keyspace_wide_patterns_are_refused() {
        for p in ["", "*", "**", "***"] {
            assert_eq!(
                check_pattern(p).unwrap_err().code(),
                "ERR_INVALID_ARG",
                "{p:?}"
            );
        }
        assert!(check_pattern("dash:*").is_ok());
        assert_eq!(
            check_pattern(&"a".repeat(600)).unwrap_err().code(),
            "ERR_VALUE_TOO_LARGE"
        );
    }

    // Hardening 9: `?*`, `*?`, `[^]*`, `*:*` each deleted everything under the prefix.
    #[test]
    fn a_pattern_needs_a_literal_first_segment_and_must_not_cover_a_family() {
        for p in [
            "?*",
            "*?",
            "[^]*",
            "*:*",
            ":*",
            "::",
            "da*:x",
            "d?sh:*",
            "\\*",
            "a\\:*",
            "[a]:*",
            "session:*",
            "session:user:*",
            "session:u*",
            "session:*:x",
            "perm:*",
            "perm:user:*",
            "perm:role:*",
            "perm:*:5",
            "perm:[ur]*",
            "rate:*",
            "rate-ip:*",
            "lock:*",
            "lock:task:*",
            "lock:task:99",
            "lock-fence:*",
            "sem:*",
            "sem:{jobs}*",
        ] {
            assert_eq!(
                check_pattern(p).unwrap_err().code(),
                "ERR_INVALID_ARG",
                "{p:?} must be refused"
            );
        }
        for p in [
            "dash:*",
            "dash:stats:*",
            "report:sales:*",
            "report:sales:1?3",
            "dash",
            "perm:user:42*",
            "session:ab*",
            "rate:1.2.3.4:*",
            "sessions:*",
            "dash:\\*",
        ] {
            assert!(check_pattern(p).is_ok(), "{p:?} must be accepted");
        }
    }
}
