//! Redis MATCH globs: matching a key against a pattern (as Redis does) and escaping a literal.

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
