//! A Lua script as the store sends it: its source and SHA-1, and one call of it (keys and
//! arguments encoded once). Every call goes out as EVALSHA; on NOSCRIPT (the first use since
//! Redis started) it is sent again as EVAL with the source, which also caches the script in
//! Redis for the EVALSHAs that follow. The transport does the re-send ([`is_noscript`]).

use super::codec::{decimal, encode_arg, encode_header, parse, Resp};

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

    /// Appends the head of a call of `argc` arguments in all: EVALSHA and the SHA-1, or EVAL
    /// and the source when `eval`.
    fn write_head(&self, b: &mut Vec<u8>, argc: usize, eval: bool) {
        encode_header(b, argc);
        if eval {
            encode_arg(b, b"EVAL");
            encode_arg(b, self.src.as_bytes());
        } else {
            encode_arg(b, b"EVALSHA");
            encode_arg(b, self.sha.as_bytes());
        }
    }

    /// A call of this script with `keys` and `args`.
    pub fn call(&'static self, keys: &[&str], args: &[&str]) -> ScriptCall {
        ScriptCall::new(self, keys, args)
    }
}

/// One call of a script whose Lua takes any number of calls at once: KEYS holds every call's
/// keys in call order, ARGV every call's arguments, each call the same number of each; it
/// returns, for one call, that call's reply (or error, as an error reply), and for several,
/// the array of their replies, where a call that failed holds its error. Its keys and
/// arguments are encoded once; the pipeline gathers the calls one tick starts into a
/// [`Batch`] (one EVALSHA, one run of the script's fixed cost for all of them).
pub struct BatchCall {
    script: &'static Script,
    keys: Vec<u8>,
    args: Vec<u8>,
    nkeys: usize,
    nargs: usize,
}

impl BatchCall {
    pub fn new(script: &'static Script, keys: &[&str], args: &[&str]) -> BatchCall {
        let encode = |parts: &[&str]| {
            let mut b = Vec::with_capacity(parts.iter().map(|a| a.len() + 16).sum());
            for a in parts {
                encode_arg(&mut b, a.as_bytes());
            }
            b
        };
        BatchCall {
            script,
            keys: encode(keys),
            args: encode(args),
            nkeys: keys.len(),
            nargs: args.len(),
        }
    }

    /// Bytes of its keys and arguments.
    pub fn bytes(&self) -> usize {
        self.keys.len() + self.args.len()
    }
}

/// Calls of one script (see [`BatchCall`]) sent as one: their keys then their arguments, held
/// as one growing call.
pub struct Batch {
    all: BatchCall,
    calls: usize,
}

impl Batch {
    pub fn new(first: BatchCall) -> Batch {
        Batch {
            all: first,
            calls: 1,
        }
    }

    /// Whether `call` is a call of this batch's script (and can join it).
    pub fn takes(&self, call: &BatchCall) -> bool {
        std::ptr::eq(self.all.script, call.script)
    }

    /// Adds `call` (of this batch's script: see [`takes`](Self::takes)).
    pub fn push(&mut self, call: BatchCall) {
        debug_assert!(self.takes(&call));
        let all = &mut self.all;
        all.keys.extend_from_slice(&call.keys);
        all.args.extend_from_slice(&call.args);
        all.nkeys += call.nkeys;
        all.nargs += call.nargs;
        self.calls += 1;
    }

    /// How many calls it holds.
    pub fn calls(&self) -> usize {
        self.calls
    }

    /// Bytes of its keys and arguments.
    pub fn bytes(&self) -> usize {
        self.all.bytes()
    }

    /// Appends it as one EVALSHA, or as EVAL with the script's source when `eval`. A batch of
    /// one call is exactly that call sent alone.
    pub fn write(&self, b: &mut Vec<u8>, eval: bool) {
        let all = &self.all;
        all.script.write_head(b, 3 + all.nkeys + all.nargs, eval);
        encode_arg(b, decimal(all.nkeys as u64, &mut [0; 20]).as_bytes());
        b.extend_from_slice(&all.keys);
        b.extend_from_slice(&all.args);
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
        encode_arg(
            &mut tail,
            decimal(keys.len() as u64, &mut [0; 20]).as_bytes(),
        );
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
        self.script.write_head(b, self.argc, eval);
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

    #[test]
    fn a_batch_is_one_call_with_every_key_then_every_argument_and_a_batch_of_one_is_the_call() {
        static LUA: LazyLock<Script> = LazyLock::new(|| Script::new("return 1"));
        let mut one = Vec::new();
        Batch::new(BatchCall::new(&LUA, &["k1", "i1"], &["a"])).write(&mut one, false);
        let mut alone = Vec::new();
        ScriptCall::new(&LUA, &["k1", "i1"], &["a"]).write(&mut alone, false);
        assert_eq!(one, alone);
        let mut batch = Batch::new(BatchCall::new(&LUA, &["k1", "i1"], &["a"]));
        batch.push(BatchCall::new(&LUA, &["k2", "i2"], &["bc"]));
        assert_eq!(batch.calls(), 2);
        let mut b = Vec::new();
        batch.write(&mut b, true);
        assert_eq!(
            String::from_utf8(b).unwrap(),
            "*9\r\n$4\r\nEVAL\r\n$8\r\nreturn 1\r\n$1\r\n4\r\n$2\r\nk1\r\n$2\r\ni1\r\n$2\r\nk2\r\n$2\r\ni2\r\n$1\r\na\r\n$2\r\nbc\r\n"
        );
        static OTHER: LazyLock<Script> = LazyLock::new(|| Script::new("return 2"));
        assert!(!batch.takes(&BatchCall::new(&OTHER, &["k"], &[])));
    }
}
