//! A Lua script as the store sends it: its source and SHA-1, and one call of it (keys and
//! arguments encoded once). Every call goes out as EVALSHA; on NOSCRIPT (the first use since
//! Redis started) it is sent again as EVAL with the source, which also caches the script in
//! Redis for the EVALSHAs that follow. The transport does the re-send ([`is_noscript`]).

use super::codec::{encode_arg, encode_header, parse, push_decimal, Resp};

/// A Lua script: its source (for EVAL after a NOSCRIPT) and SHA-1.
pub struct Script {
    src: &'static str,
    sha: String,
}

impl Script {
    pub fn new(src: &'static str) -> Script {
        Script {
            src,
            sha: redis::Script::new(src).get_hash().to_string(),
        }
    }

    /// A call of this script with `keys` and `args`.
    pub fn call(&'static self, keys: &[&str], args: &[&str]) -> ScriptCall {
        ScriptCall::new(self, keys, args)
    }
}

/// True for the error reply of an EVALSHA whose script Redis does not hold.
pub fn is_noscript(error: &str) -> bool {
    error.starts_with("NOSCRIPT")
}

/// One script call, encoded once: `numkeys key… arg…` kept for a possible EVAL re-send.
pub struct ScriptCall {
    script: &'static Script,
    argc: usize,
    tail: Vec<u8>,
}

impl ScriptCall {
    pub fn new(script: &'static Script, keys: &[&str], args: &[&str]) -> ScriptCall {
        let size: usize = keys.iter().chain(args).map(|a| a.len() + 16).sum();
        let mut tail = Vec::with_capacity(size + 8);
        let mut numkeys = Vec::with_capacity(4);
        push_decimal(&mut numkeys, keys.len());
        encode_arg(&mut tail, &numkeys);
        for a in keys.iter().chain(args) {
            encode_arg(&mut tail, a.as_bytes());
        }
        ScriptCall {
            script,
            argc: 3 + keys.len() + args.len(),
            tail,
        }
    }

    /// The first key, for routing (a cluster slot); none for a call without keys.
    pub fn first_key(&self) -> Option<Vec<u8>> {
        // `tail` is `numkeys key… arg…` as bulk strings
        let (numkeys, used) = parse(&self.tail).ok()??;
        if numkeys == Resp::Bulk(b"0".to_vec()) {
            return None;
        }
        match parse(&self.tail[used..]).ok()?? {
            (Resp::Bulk(k), _) => Some(k),
            _ => None,
        }
    }

    /// Appends the call as EVALSHA, or as EVAL with the script's source when `eval`.
    pub fn write(&self, b: &mut Vec<u8>, eval: bool) {
        encode_header(b, self.argc);
        if eval {
            encode_arg(b, b"EVAL");
            encode_arg(b, self.script.src.as_bytes());
        } else {
            encode_arg(b, b"EVALSHA");
            encode_arg(b, self.script.sha.as_bytes());
        }
        b.extend_from_slice(&self.tail);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::LazyLock;

    #[test]
    fn a_script_call_is_evalsha_then_eval_with_the_same_arguments() {
        static LUA: LazyLock<Script> = LazyLock::new(|| Script::new("return 1"));
        let call = ScriptCall::new(&LUA, &["k"], &["a", "bc"]);
        let mut b = Vec::new();
        call.write(&mut b, false);
        let sha = LUA.sha.clone();
        let expected = format!(
            "*6\r\n$7\r\nEVALSHA\r\n$40\r\n{sha}\r\n$1\r\n1\r\n$1\r\nk\r\n$1\r\na\r\n$2\r\nbc\r\n"
        );
        assert_eq!(String::from_utf8(b).unwrap(), expected);
        let mut b = Vec::new();
        call.write(&mut b, true);
        assert_eq!(
            b,
            b"*6\r\n$4\r\nEVAL\r\n$8\r\nreturn 1\r\n$1\r\n1\r\n$1\r\nk\r\n$1\r\na\r\n$2\r\nbc\r\n"
        );
        assert_eq!(sha.len(), 40);
    }
}
