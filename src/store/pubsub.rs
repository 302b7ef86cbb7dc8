//! Pub/sub and bulk-invalidation operations of the store: PUBLISH on prefixed channels,
//! UNLINK of exact keys, and SCAN + UNLINK of a pattern in batches (never KEYS).

use std::time::{Duration, Instant};

use super::{Backend, Store};
use crate::error::{CacheError, CacheResult};

/// Keys asked of each SCAN step, and keys per UNLINK.
const SCAN_COUNT: usize = 1000;
const UNLINK_BATCH: usize = 500;
/// A pattern delete stops (with ETIMEDOUT) after this long or this many SCAN steps.
const PATTERN_DEADLINE: Duration = Duration::from_secs(60);
const MAX_SCAN_STEPS: usize = 1_000_000;

/// Redis `stringmatchlen` semantics: `*`, `?`, `[abc]`, `[^a-z]`, and `\` escapes.
pub fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0usize, 0usize);
    // Where to resume after the last `*`: (pattern index after it, text index it matched to).
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        let step = if p < pattern.len() {
            match pattern[p] {
                b'*' => {
                    star = Some((p + 1, t));
                    p += 1;
                    continue;
                }
                b'?' => Some(p + 1),
                b'[' => class_match(pattern, p, text[t]),
                b'\\' if p + 1 < pattern.len() => (pattern[p + 1] == text[t]).then_some(p + 2),
                c => (c == text[t]).then_some(p + 1),
            }
        } else {
            None
        };
        match (step, star) {
            (Some(next), _) => {
                p = next;
                t += 1;
            }
            (None, Some((sp, st))) => {
                p = sp;
                t = st + 1;
                star = Some((sp, st + 1));
            }
            (None, None) => return false,
        }
    }
    pattern[p.min(pattern.len())..].iter().all(|&c| c == b'*')
}

/// Matches `c` against the class starting at `pattern[start] == b'['`; the index after the
/// class when it matches.
fn class_match(pattern: &[u8], start: usize, c: u8) -> Option<usize> {
    let mut i = start + 1;
    let negate = pattern.get(i) == Some(&b'^');
    if negate {
        i += 1;
    }
    let mut hit = false;
    loop {
        match pattern.get(i) {
            // An unterminated class ends at the end of the pattern, as in Redis.
            None => break,
            Some(b']') => {
                i += 1;
                break;
            }
            Some(b'\\') if i + 1 < pattern.len() => {
                hit |= pattern[i + 1] == c;
                i += 2;
            }
            Some(&lo) if pattern.get(i + 1) == Some(&b'-') && i + 2 < pattern.len() => {
                let hi = pattern[i + 2];
                let (lo, hi) = if lo <= hi { (lo, hi) } else { (hi, lo) };
                hit |= (lo..=hi).contains(&c);
                i += 3;
            }
            Some(&x) => {
                hit |= x == c;
                i += 1;
            }
        }
    }
    (hit != negate).then_some(i)
}

/// Escapes glob characters of a literal (the key prefix) for use in a MATCH pattern.
pub fn glob_escape(literal: &str) -> String {
    let mut out = String::with_capacity(literal.len());
    for c in literal.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl Store {
    /// PUBLISH on `keyPrefix + channel` → how many subscribers received it.
    pub async fn publish(&self, channel: &str, payload: &str) -> CacheResult<u32> {
        self.check_value("message", payload)?;
        let ch = self.key(channel);
        if let Some(c) = self.cluster() {
            let home = self.key(crate::pubsub::CHANNELS[0]);
            return c.publish(&home, &ch, payload).await;
        }
        match &self.backend {
            Backend::Redis(r) => {
                r.query::<u32>(::redis::cmd("PUBLISH").arg(&ch).arg(payload))
                    .await
            }
            Backend::Memory(m) => Ok(m.publish(&ch, payload)),
        }
    }

    /// UNLINK of exact (unprefixed) keys, in batches → how many existed.
    pub async fn unlink_keys(&self, keys: &[String]) -> CacheResult<u32> {
        let full: Vec<String> = keys.iter().map(|k| self.key(k)).collect();
        match &self.backend {
            Backend::Redis(r) => {
                let mut n = 0;
                for chunk in full.chunks(UNLINK_BATCH) {
                    n += r.query::<u32>(::redis::cmd("UNLINK").arg(chunk)).await?;
                }
                Ok(n)
            }
            Backend::Memory(m) => Ok(m.with(|d| full.iter().filter(|k| d.del(k)).count() as u32)),
        }
    }

    /// Deletes every key matching `keyPrefix + pattern` by SCAN + UNLINK in batches →
    /// how many were removed. Never KEYS: Redis keeps serving between the steps.
    pub async fn delete_pattern(&self, pattern: &str) -> CacheResult<u64> {
        let full = format!("{}{}", glob_escape(self.prefix()), pattern);
        if let Some(c) = self.cluster() {
            return self.cluster_delete_pattern(c, &full).await;
        }
        match &self.backend {
            Backend::Redis(r) => {
                let started = Instant::now();
                let mut cursor: u64 = 0;
                let mut removed: u64 = 0;
                for _ in 0..MAX_SCAN_STEPS {
                    let (next, found): (u64, Vec<Vec<u8>>) = r
                        .query(
                            ::redis::cmd("SCAN")
                                .arg(cursor)
                                .arg("MATCH")
                                .arg(&full)
                                .arg("COUNT")
                                .arg(SCAN_COUNT),
                        )
                        .await?;
                    for chunk in found.chunks(UNLINK_BATCH) {
                        removed += r.query::<u64>(::redis::cmd("UNLINK").arg(chunk)).await?;
                    }
                    cursor = next;
                    if cursor == 0 {
                        return Ok(removed);
                    }
                    if started.elapsed() > PATTERN_DEADLINE {
                        break;
                    }
                }
                Err(CacheError::Timeout(started.elapsed().as_millis() as u64))
            }
            Backend::Memory(m) => Ok(m.with(|d| {
                let doomed: Vec<String> = d
                    .keys()
                    .into_iter()
                    .filter(|k| glob_match(full.as_bytes(), k.as_bytes()))
                    .collect();
                doomed.iter().filter(|k| d.del(k)).count() as u64
            })),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, t: &str) -> bool {
        glob_match(p.as_bytes(), t.as_bytes())
    }

    #[test]
    fn globs_follow_redis() {
        assert!(m("dash:*", "dash:stats:2024"));
        assert!(m("dash:*", "dash:"));
        assert!(!m("dash:*", "dashboard"));
        assert!(!m("dash:*", "x:dash:1"));
        assert!(m("*", ""));
        assert!(m("a?c", "abc"));
        assert!(!m("a?c", "ac"));
        assert!(m("a*b*c", "axxbyyc"));
        assert!(!m("a*b*c", "axxbyy"));
        assert!(m("r[ae]d", "red") && m("r[ae]d", "rad") && !m("r[ae]d", "rid"));
        assert!(m("r[^e]d", "rad") && !m("r[^e]d", "red"));
        assert!(m("v[0-9]", "v7") && !m("v[0-9]", "vx"));
        assert!(m("a\\*", "a*") && !m("a\\*", "ab"));
        assert!(m("perm:user:*", "perm:user:5"));
    }

    #[test]
    fn the_prefix_is_escaped_literally() {
        assert_eq!(glob_escape("erp:prod:"), "erp:prod:");
        assert_eq!(glob_escape("a\\b"), "a\\\\b");
        let p = format!("{}{}", glob_escape("x\\"), "k*");
        assert!(m(&p, "x\\k1"));
        assert!(!m(&p, "xk1"));
    }
}
