//! RESP2, the wire format of Redis: the parsed reply type, the bounded parser, the command
//! encoder, and the conversion of a reply to a caller's type.

pub use redis::{cmd, Cmd, FromRedisValue, Value};

use crate::config::DEFAULT_MAX_REPLY_BYTES;
use crate::error::{CacheError, CacheResult};

/// A parsed RESP2 reply.
#[derive(Debug, Clone, PartialEq)]
pub enum Resp {
    Nil,
    Int(i64),
    Bulk(Vec<u8>),
    Simple(String),
    Error(String),
    Array(Vec<Resp>),
}

impl Resp {
    /// The reply as redis-rs' `Value`, for typed conversions (`FromRedisValue`).
    pub fn into_value(self) -> Value {
        match self {
            Resp::Nil | Resp::Error(_) => Value::Nil,
            Resp::Int(i) => Value::Int(i),
            Resp::Bulk(b) => Value::BulkString(b),
            Resp::Simple(s) if s == "OK" => Value::Okay,
            Resp::Simple(s) => Value::SimpleString(s),
            Resp::Array(a) => Value::Array(a.into_iter().map(Resp::into_value).collect()),
        }
    }
}

/// Longest header line (`$len`, `*count`, `:int`) of a reply: an i64 and its sign.
pub const MAX_NUMBER_LINE: usize = 24;
/// Longest status or error line (`+…`, `-…`) of a reply.
pub const MAX_STATUS_LINE: usize = 64 * 1024;
/// Deepest nesting of aggregates in a reply.
pub const MAX_DEPTH: usize = 32;

/// Parses one reply from the front of `buf`: `Ok(None)` when it is not complete yet. A bulk
/// string announced longer than `max_bulk` bytes, or a line longer than its bound, is a
/// protocol error (the announced length is never trusted to size anything).
pub fn parse(buf: &[u8]) -> Result<Option<(Resp, usize)>, String> {
    parse_max(buf, DEFAULT_MAX_REPLY_BYTES)
}

/// [`parse`] with a bound on bulk lengths.
pub fn parse_max(buf: &[u8], max_bulk: usize) -> Result<Option<(Resp, usize)>, String> {
    /// The line starting at `from` (without its CRLF) and where the next one starts; an
    /// error when no CRLF comes within `max` bytes.
    fn line(buf: &[u8], from: usize, max: usize) -> Result<Option<(&[u8], usize)>, String> {
        let Some(rest) = buf.get(from..) else {
            return Ok(None);
        };
        let window = &rest[..rest.len().min(max + 2)];
        match window.windows(2).position(|w| w == b"\r\n") {
            Some(end) => Ok(Some((&rest[..end], from + end + 2))),
            None if rest.len() >= max + 2 => Err(format!("reply line longer than {max} bytes")),
            None => Ok(None),
        }
    }
    fn int(bytes: &[u8]) -> Result<i64, String> {
        std::str::from_utf8(bytes)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| "malformed integer in reply".to_string())
    }
    fn value(
        buf: &[u8],
        at: usize,
        depth: usize,
        max_bulk: usize,
    ) -> Result<Option<(Resp, usize)>, String> {
        if depth > MAX_DEPTH {
            return Err("reply nested too deeply".into());
        }
        let Some(&tag) = buf.get(at) else {
            return Ok(None);
        };
        let max_line = match tag {
            b'+' | b'-' => MAX_STATUS_LINE,
            _ => MAX_NUMBER_LINE,
        };
        let Some((body, next)) = line(buf, at + 1, max_line)? else {
            return Ok(None);
        };
        let text = || String::from_utf8_lossy(body).into_owned();
        Ok(Some(match tag {
            b'+' => (Resp::Simple(text()), next),
            b'-' => (Resp::Error(text()), next),
            b':' => (Resp::Int(int(body)?), next),
            b'$' => {
                let len = int(body)?;
                if len < 0 {
                    return Ok(Some((Resp::Nil, next)));
                }
                if len as u64 > max_bulk as u64 {
                    return Err(format!(
                        "reply announces a bulk string of {len} bytes (maxReplyBytes is {max_bulk})"
                    ));
                }
                let end = next + len as usize;
                if buf.len() < end + 2 {
                    return Ok(None);
                }
                (Resp::Bulk(buf[next..end].to_vec()), end + 2)
            }
            b'*' => {
                let n = int(body)?;
                if n < 0 {
                    return Ok(Some((Resp::Nil, next)));
                }
                let mut items = Vec::with_capacity((n as usize).min(1024));
                let mut pos = next;
                for _ in 0..n {
                    match value(buf, pos, depth + 1, max_bulk)? {
                        Some((v, p)) => {
                            items.push(v);
                            pos = p;
                        }
                        None => return Ok(None),
                    }
                }
                (Resp::Array(items), pos)
            }
            other => return Err(format!("unexpected reply type byte {other:#x}")),
        }))
    }
    value(buf, 0, 0, max_bulk)
}

pub fn push_decimal(buf: &mut Vec<u8>, n: usize) {
    buf.extend_from_slice(decimal(n as u64, &mut [0u8; 20]).as_bytes());
}

/// `n` in decimal, written into `buf` (an argument without a `String`).
pub fn decimal(n: u64, buf: &mut [u8; 20]) -> &str {
    let mut i = buf.len();
    let mut n = n;
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    std::str::from_utf8(&buf[i..]).unwrap_or("0") // ASCII digits: always UTF-8
}

/// Appends `*n` (the start of a command of `n` arguments).
pub fn encode_header(buf: &mut Vec<u8>, n: usize) {
    buf.push(b'*');
    push_decimal(buf, n);
    buf.extend_from_slice(b"\r\n");
}

/// Appends one bulk-string argument.
pub fn encode_arg(buf: &mut Vec<u8>, arg: &[u8]) {
    buf.push(b'$');
    push_decimal(buf, arg.len());
    buf.extend_from_slice(b"\r\n");
    buf.extend_from_slice(arg);
    buf.extend_from_slice(b"\r\n");
}

/// Appends a whole command.
pub fn encode(buf: &mut Vec<u8>, args: &[&[u8]]) {
    encode_header(buf, args.len());
    for a in args {
        encode_arg(buf, a);
    }
}

/// A reply as the caller's type (for replies decoded on the I/O task).
pub fn decode<T: FromRedisValue>(reply: Resp) -> CacheResult<T> {
    T::from_redis_value(reply.into_value())
        .map_err(|e| CacheError::Redis(format!("unexpected reply: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_commands_as_resp() {
        let mut b = Vec::new();
        encode(&mut b, &[b"GET", b"session:abc"]);
        assert_eq!(b, b"*2\r\n$3\r\nGET\r\n$11\r\nsession:abc\r\n");
        let mut b = Vec::new();
        push_decimal(&mut b, 0);
        push_decimal(&mut b, 1234567890);
        assert_eq!(decimal(0, &mut [0; 20]), "0");
        assert_eq!(decimal(u64::MAX, &mut [0; 20]), "18446744073709551615");
        assert_eq!(b, b"01234567890");
    }

    #[test]
    fn parses_every_reply_type() {
        assert_eq!(
            parse(b"+OK\r\n").unwrap(),
            Some((Resp::Simple("OK".into()), 5))
        );
        assert_eq!(
            parse(b"-ERR x\r\n").unwrap(),
            Some((Resp::Error("ERR x".into()), 8))
        );
        assert_eq!(parse(b":-12\r\n").unwrap(), Some((Resp::Int(-12), 6)));
        assert_eq!(parse(b"$-1\r\n").unwrap(), Some((Resp::Nil, 5)));
        assert_eq!(
            parse(b"$3\r\nab\n\r\n").unwrap(),
            Some((Resp::Bulk(b"ab\n".to_vec()), 9))
        );
        assert_eq!(
            parse(b"*2\r\n:1\r\n$1\r\nx\r\n").unwrap(),
            Some((
                Resp::Array(vec![Resp::Int(1), Resp::Bulk(b"x".to_vec())]),
                15
            ))
        );
        assert_eq!(parse(b"*-1\r\n").unwrap(), Some((Resp::Nil, 5)));
    }

    #[test]
    fn incomplete_replies_wait_for_more_bytes() {
        for partial in [
            &b""[..],
            b"+OK",
            b"+OK\r",
            b"$5\r\nab",
            b"*2\r\n:1\r\n",
            b"$3\r\nabc\r",
        ] {
            assert_eq!(parse(partial).unwrap(), None, "{partial:?}");
        }
    }

    #[test]
    fn an_announced_length_over_the_bound_is_a_protocol_error() {
        // Hardening 15: `$` with 2^63-1 must not make the parser wait for (and the read
        // buffer grow towards) that many bytes.
        let e = parse(b"$9223372036854775807\r\n").unwrap_err();
        assert!(e.contains("maxReplyBytes"), "{e}");
        assert!(parse_max(b"$11\r\n", 10).is_err());
        assert_eq!(parse_max(b"$10\r\n", 10).unwrap(), None);
        assert!(
            parse_max(b"*1\r\n$11\r\n", 10).is_err(),
            "inside an array too"
        );
        // a header line that never ends is refused once it is longer than any number
        assert!(parse(b"$123456789012345678901234567890").is_err());
        assert_eq!(parse(b"$1234").unwrap(), None);
        let mut status = b"+".to_vec();
        status.extend(std::iter::repeat_n(b'a', MAX_STATUS_LINE + 2));
        assert!(parse(&status).is_err());
    }

    #[test]
    fn garbage_is_a_protocol_error() {
        assert!(parse(b"?x\r\n").is_err());
        assert!(parse(b":abc\r\n").is_err());
    }
}
