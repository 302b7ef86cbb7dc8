//! Key builders and id validation: pure functions, the only place a key is spelled.
//!
//! An id never widens into a pattern: empty ids and ids holding whitespace, control characters
//! or glob characters (`* ? [ ]`) are refused.

use napi::bindgen_prelude::FromNapiValue;
use napi::{sys, Status};

use super::slot::slot_string;
use crate::error::{CacheError, CacheResult};

/// Longest id accepted, in bytes. Longer ones are refused (they are never legitimate ids and
/// would only bloat keys).
pub const MAX_ID_BYTES: usize = 512;

/// An id as JS gives it: a string or an integer.
///
/// Read by hand rather than as napi-rs' `Either<String, f64>`, which tries the string first
/// and, for every number, formats an error message only to drop it: user ids are usually
/// numbers, and that was ≈ 4 % of the JS thread's cost of a permission check.
pub enum JsId {
    Str(String),
    Num(f64),
}

impl FromNapiValue for JsId {
    unsafe fn from_napi_value(env: sys::napi_env, v: sys::napi_value) -> napi::Result<Self> {
        let mut t = sys::ValueType::napi_undefined;
        // SAFETY: `env` and `v` are the live call's, as napi-rs passes them.
        let status = unsafe { sys::napi_typeof(env, v, &mut t) };
        match (status, t) {
            // SAFETY: as above; the type was just checked.
            (sys::Status::napi_ok, sys::ValueType::napi_string) => {
                Ok(JsId::Str(unsafe { String::from_napi_value(env, v)? }))
            }
            (sys::Status::napi_ok, sys::ValueType::napi_number) => {
                Ok(JsId::Num(unsafe { f64::from_napi_value(env, v)? }))
            }
            // napi-rs' message for Either<String, f64>, which this replaces.
            _ => Err(napi::Error::new(
                Status::InvalidArg,
                "Value is none of these types `String`, `f64`, ",
            )),
        }
    }
}

/// Validates an id given as a string.
pub fn check_id(what: &str, id: &str) -> CacheResult<()> {
    if id.is_empty() {
        return Err(CacheError::InvalidArg(format!("{what} must not be empty")));
    }
    if id.len() > MAX_ID_BYTES {
        return Err(CacheError::TooLarge(format!(
            "{what} is {} bytes long; the limit is {MAX_ID_BYTES}",
            id.len()
        )));
    }
    // ASCII (nearly every id): the same test on bytes. Its whitespace and control characters
    // are the bytes below 0x21 and 0x7f.
    if id.is_ascii() {
        return match id
            .bytes()
            .find(|&b| b < 0x21 || b == 0x7f || matches!(b, b'*' | b'?' | b'[' | b']'))
        {
            Some(b) => Err(forbidden(what, char::from(b))),
            None => Ok(()),
        };
    }
    if let Some(c) = id
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || matches!(c, '*' | '?' | '[' | ']'))
    {
        return Err(forbidden(what, c));
    }
    Ok(())
}

fn forbidden(what: &str, c: char) -> CacheError {
    CacheError::InvalidArg(format!(
        "{what} must not contain whitespace, control or glob characters (found {c:?})"
    ))
}

/// Turns a JS id (string or integer) into its validated string form.
pub fn id_string(what: &str, id: JsId) -> CacheResult<String> {
    match id {
        JsId::Str(s) => {
            check_id(what, &s)?;
            Ok(s)
        }
        JsId::Num(n) => number_id(what, n),
    }
}

/// Validates a numeric id: a finite integer within the safe-integer range.
pub fn number_id(what: &str, n: f64) -> CacheResult<String> {
    const MAX_SAFE: f64 = 9_007_199_254_740_991.0;
    if !n.is_finite() || n.fract() != 0.0 || n.abs() > MAX_SAFE {
        return Err(CacheError::InvalidArg(format!(
            "{what} must be a string or a safe integer (got {n})"
        )));
    }
    Ok(format!("{}", n as i64))
}

/// Validates a token hash, the `{hash}` of `session:{hash}`: an id (see [`check_id`]) that also
/// holds no `:`. So `session:{hash}` can never name another key under `session:`, such as a
/// user's session index `session:user:{id}` (a bare `session:user` is no index: user ids are
/// never empty). [`hash_token`] gives 64 hex characters.
pub fn check_token_hash(what: &str, hash: &str) -> CacheResult<()> {
    check_id(what, hash)?;
    if hash.contains(':') {
        return Err(CacheError::InvalidArg(format!(
            "{what} must not contain ':' (a token hash is hex, as hashToken gives it)"
        )));
    }
    Ok(())
}

pub fn session_key(token_hash: &str) -> String {
    format!("session:{token_hash}")
}

pub fn session_user_key(user_id: &str) -> String {
    format!("session:user:{user_id}")
}

pub fn perm_user_key(user_id: &str) -> String {
    format!("perm:user:{user_id}")
}

pub fn perm_role_key(role_id: &str) -> String {
    format!("perm:role:{role_id}")
}

/// `rate:{ip}:{endpoint with '/' as '_'}`.
pub fn rate_key(ip: &str, endpoint: &str) -> String {
    let mut k = String::with_capacity(6 + ip.len() + endpoint.len());
    push_rate_key(&mut k, ip, endpoint);
    k
}

/// [`rate_key`] appended to `out` (the hit path writes it behind the key prefix, in one
/// allocation).
pub fn push_rate_key(out: &mut String, ip: &str, endpoint: &str) {
    out.push_str("rate:");
    out.push_str(ip);
    out.push(':');
    let mut rest = endpoint;
    while let Some(i) = rest.find('/') {
        out.push_str(&rest[..i]);
        out.push('_');
        rest = &rest[i + 1..];
    }
    out.push_str(rest);
}

/// The per-IP index of rate counters (a hash: endpoint as given → its limit), so that one IP's
/// counters can be listed and removed exactly: a `rate:{ip}:*` pattern would also match other
/// IPv6 addresses (`rate:::1:*` matches `::1:2`). Outside `rate:` so it can never equal a counter.
pub fn rate_ip_key(ip: &str) -> String {
    let mut k = String::with_capacity(8 + ip.len());
    push_rate_ip_key(&mut k, ip);
    k
}

/// [`rate_ip_key`] appended to `out`.
pub fn push_rate_ip_key(out: &mut String, ip: &str) {
    out.push_str("rate-ip:");
    out.push_str(ip);
}

pub fn lock_key(resource: &str, id: &str) -> String {
    format!("lock:{resource}:{id}")
}

/// The fence counter of a lock, given the lock key *as stored* (keyPrefix applied):
/// `{prefix}lock-fence:{{<slot string>}}`, e.g. `lock-fence:{lock:task:99}`.
///
/// Why this shape:
/// - it starts with the prefix, so ACL key patterns (`~erp:prod:*`) and prefix scans cover it;
/// - it cannot collide with a lock key (`lock-fence:` is not `lock:`; ids may hold `:`);
/// - its hash tag is the string that decides the lock key's Redis Cluster slot (the lock key's
///   own hash tag if it has one, else the whole key), so a Cluster back end can run the acquire
///   script on both keys. The only keys that cannot be co-located this way are a prefix holding
///   an unclosed `{`, or a tagless lock key holding a `}`; see [`same_slot`](super::slot::same_slot) (a Cluster would
///   answer CROSSSLOT there, and the lock would be refused, never wrongly granted).
pub fn lock_fence_key(prefix: &str, stored_lock_key: &str) -> String {
    format!("{prefix}lock-fence:{{{}}}", slot_string(stored_lock_key))
}

/// The revision key of a stored data key `K` (keyPrefix applied: `session:{hash}`,
/// `perm:user:{id}`, `perm:role:{id}`, `session:user:{id}`): Redis' time in ms of the last
/// revocation of `K`, which every loader fill of `K` checks (see src/store/revision.rs).
/// `{prefix}rev:{K}` when `K` has no hash tag, else `{prefix}rev:{<tag>}:K`, e.g.
/// `rev:{session:abc}`, `{erp}:rev:{erp}:{erp}:perm:user:5`.
///
/// The same reasoning as [`lock_fence_key`]: it starts with the prefix (ACL patterns), it
/// cannot collide with a data key (`rev:` is a family of its own), it is unique per `K` (`K`
/// is spelled in it whole), and its hash tag is `K`'s slot string, so it lives in `K`'s
/// Cluster slot. The same two exceptions as the fence ([`same_slot`](super::slot::same_slot) says false there: an
/// unclosed `{` in the prefix, a tagless key holding `}`): on Cluster a fill of such a key is
/// not cached, and its revocation does the DEL and the bump as two commands.
pub fn rev_key(prefix: &str, stored_key: &str) -> String {
    let slot = slot_string(stored_key);
    if slot == stored_key {
        format!("{prefix}rev:{{{stored_key}}}")
    } else {
        format!("{prefix}rev:{{{slot}}}:{stored_key}")
    }
}

/// SHA-256 of a raw token, lower-case hex: the only form of a token that reaches a key.
pub fn hash_token(token: &str) -> String {
    use sha2::{Digest, Sha256};
    // Into a fixed buffer: `hex::encode` builds the string one char at a time, which cost
    // the hot path twice the hash itself.
    let mut out = [0u8; 64];
    hex::encode_to_slice(Sha256::digest(token.as_bytes()), &mut out)
        .expect("32 bytes are 64 hex digits");
    std::str::from_utf8(&out)
        .expect("hex digits are ASCII")
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::slot::{key_slot, same_slot};

    #[test]
    fn the_ascii_id_check_refuses_exactly_what_the_char_check_does() {
        for b in 0u8..128 {
            let c = char::from(b);
            let id = format!("a{c}b");
            let by_char = c.is_whitespace() || c.is_control() || matches!(c, '*' | '?' | '[' | ']');
            assert_eq!(check_id("id", &id).is_err(), by_char, "byte {b:#x}");
        }
        // non-ASCII ids take the char check
        assert!(check_id("id", "caf\u{e9}").is_ok());
        assert!(check_id("id", "a\u{a0}b").is_err(), "no-break space");
        assert!(check_id("id", "a\u{85}b").is_err(), "next line");
    }

    #[test]
    fn rate_keys_written_in_place_equal_the_contract() {
        for (ip, endpoint) in [
            ("1.2.3.4", "/api/login"),
            ("::1", "//x//"),
            ("u:7", "no-slash"),
            ("1.2.3.4", "/"),
        ] {
            assert_eq!(
                rate_key(ip, endpoint),
                format!("rate:{ip}:{}", endpoint.replace('/', "_"))
            );
            let mut k = String::from("pre:");
            push_rate_key(&mut k, ip, endpoint);
            assert_eq!(k, format!("pre:{}", rate_key(ip, endpoint)));
            assert_eq!(rate_ip_key(ip), format!("rate-ip:{ip}"));
        }
    }

    #[test]
    fn builders_match_the_contract() {
        assert_eq!(session_key("abc123"), "session:abc123");
        assert_eq!(session_user_key("123"), "session:user:123");
        assert_eq!(perm_user_key("123"), "perm:user:123");
        assert_eq!(perm_role_key("5"), "perm:role:5");
        assert_eq!(
            rate_key("1.2.3.4", "/api/auth/login"),
            "rate:1.2.3.4:_api_auth_login"
        );
        assert_eq!(lock_key("task", "99"), "lock:task:99");
        assert_eq!(rate_ip_key("::1"), "rate-ip:::1");
    }

    #[test]
    fn rev_keys_share_their_data_key_slot() {
        assert_eq!(key_slot("123456789"), 0x31c3);
        for prefix in ["", "erp:", "{erp}:", "a{b}c:"] {
            for k in [
                session_key("abc"),
                session_user_key("7"),
                perm_user_key("u-1"),
                perm_role_key("5"),
                perm_user_key("{x}"),
                perm_user_key("a{b}c"),
                session_user_key("{"),
            ] {
                let stored = format!("{prefix}{k}");
                let rev = rev_key(prefix, &stored);
                assert!(rev.starts_with(&format!("{prefix}rev:")), "{rev}");
                assert!(rev.contains(&stored), "{rev} names {stored}");
                assert!(same_slot(&rev, &stored), "{rev} / {stored}");
                assert_eq!(key_slot(&rev), key_slot(&stored), "{rev}");
            }
        }
        assert_eq!(rev_key("", "session:abc"), "rev:{session:abc}");
        assert_eq!(
            rev_key("erp:", "erp:perm:role:5"),
            "erp:rev:{erp:perm:role:5}"
        );
        assert_eq!(
            rev_key("{erp}:", "{erp}:perm:user:5"),
            "{erp}:rev:{erp}:{erp}:perm:user:5"
        );
        // distinct keys, distinct revisions
        assert_ne!(rev_key("", "perm:user:{a}"), rev_key("", "perm:user:{a}x"));
        // the lock fence's exceptions: an unclosed `{` in the prefix, a tagless key with `}`
        assert!(!same_slot(&rev_key("a{", "a{perm:user:1"), "a{perm:user:1"));
        assert!(!same_slot(&rev_key("", "perm:user:a}"), "perm:user:a}"));
        assert!(!same_slot(&rev_key("", "perm:role:{}"), "perm:role:{}"));
    }

    #[test]
    fn integer_ids_render_without_fraction() {
        assert_eq!(id_string("id", JsId::Num(123.0)).unwrap(), "123");
        assert_eq!(id_string("id", JsId::Num(-7.0)).unwrap(), "-7");
        assert_eq!(
            id_string("id", JsId::Num(9_007_199_254_740_991.0)).unwrap(),
            "9007199254740991"
        );
    }

    #[test]
    fn bad_numbers_are_refused() {
        for n in [1.5, f64::NAN, f64::INFINITY, -f64::INFINITY, 1e300] {
            let e = id_string("id", JsId::Num(n)).unwrap_err();
            assert_eq!(e.code(), "ERR_INVALID_ARG", "{n}");
        }
    }

    #[test]
    fn patterns_and_blanks_are_refused() {
        for s in [
            "", "*", "a*", "a?b", "[ab]", "a]", "a b", "a\tb", "a\nb", "\u{0}", "\u{7f}",
            "a\u{a0}b",
        ] {
            assert!(check_id("id", s).is_err(), "{s:?} should be refused");
        }
        assert_eq!(
            check_id("id", &"x".repeat(MAX_ID_BYTES + 1))
                .unwrap_err()
                .code(),
            "ERR_VALUE_TOO_LARGE"
        );
    }

    #[test]
    fn ordinary_ids_pass() {
        for s in [
            "abc123",
            "user-1",
            "a:b",
            "é",
            "x".repeat(MAX_ID_BYTES).as_str(),
        ] {
            assert!(check_id("id", s).is_ok(), "{s:?}");
        }
    }

    #[test]
    fn token_hashes_cannot_name_another_family() {
        for bad in ["user:5", "user:", ":", "a:b", "x:user:1"] {
            assert_eq!(
                check_token_hash("tokenHash", bad).unwrap_err().code(),
                "ERR_INVALID_ARG",
                "{bad:?}"
            );
        }
        assert!(check_token_hash("tokenHash", "*").is_err());
        for ok in ["abc123", "user", &hash_token("t")] {
            assert!(check_token_hash("tokenHash", ok).is_ok(), "{ok:?}");
        }
    }

    #[test]
    fn token_hash_is_sha256_hex() {
        assert_eq!(
            hash_token("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
