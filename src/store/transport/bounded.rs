//! A stream that bounds the RESP replies read through it (`maxReplyBytes`), for the pub/sub
//! subscriber: redis-rs, which parses them, trusts a reply's announced length.
//!
//! Hand-written: neither redis-rs nor our codec (which parses whole replies held in a buffer)
//! can follow the framing of a byte stream in O(1) memory.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::store::codec::{MAX_DEPTH, MAX_NUMBER_LINE, MAX_STATUS_LINE};

/// `inner` with every byte read checked by a [`Scanner`]: a reply over the bound is an
/// `InvalidData` error (and so is every read after it); writes pass through.
pub struct BoundedResp<S> {
    inner: S,
    scan: Scanner,
    failed: Option<String>,
}

impl<S> BoundedResp<S> {
    /// `max_reply` bounds a bulk string, and a whole reply to `max_reply` + [`MAX_STATUS_LINE`]
    /// (as the pipelined transport's read buffer).
    pub fn new(inner: S, max_reply: usize) -> BoundedResp<S> {
        BoundedResp {
            inner,
            scan: Scanner::new(max_reply),
            failed: None,
        }
    }
}

fn invalid(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why.to_string())
}

impl<S: AsyncRead + Unpin> AsyncRead for BoundedResp<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(why) = &this.failed {
            return Poll::Ready(Err(invalid(why)));
        }
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        if let Err(why) = this.scan.feed(&buf.filled()[before..]) {
            // nothing of the read goes up: its reader sees only the error
            buf.set_filled(before);
            let e = invalid(&why);
            this.failed = Some(why);
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for BoundedResp<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Where the scanner is in the byte stream.
#[derive(Clone, Copy, Debug, PartialEq)]
enum At {
    /// The type byte of the next value.
    Tag,
    /// The line after the type byte.
    Line,
    /// This many bytes of a bulk body (its CRLF included) still to come.
    Body(u64),
}

/// Follows the framing of RESP2/RESP3 replies byte by byte, without keeping them: type bytes,
/// lines (only a length or count is kept, to parse), bulk bodies skipped by count, and the
/// element counts of the open aggregates. Refuses a bulk length over `max_bulk`, a count of
/// more elements than a reply can hold, a line over its bound, nesting deeper than
/// [`MAX_DEPTH`], and a reply longer than `max_bulk` + [`MAX_STATUS_LINE`].
pub struct Scanner {
    max_bulk: u64,
    max_reply: u64,
    at: At,
    tag: u8,
    /// Bytes of the current line so far (its CR included once seen), and whether the last was
    /// a CR.
    line_len: usize,
    cr: bool,
    /// The current line, when it is a length or count (its CR included).
    num: [u8; MAX_NUMBER_LINE + 1],
    /// The elements still due of each open aggregate, outermost first.
    open: [u64; MAX_DEPTH],
    depth: usize,
    /// Bytes of the reply being read.
    reply: u64,
}

impl Scanner {
    pub fn new(max_bulk: usize) -> Scanner {
        let max_bulk = max_bulk as u64;
        Scanner {
            max_bulk,
            max_reply: max_bulk.saturating_add(MAX_STATUS_LINE as u64),
            at: At::Tag,
            tag: 0,
            line_len: 0,
            cr: false,
            num: [0; MAX_NUMBER_LINE + 1],
            open: [0; MAX_DEPTH],
            depth: 0,
            reply: 0,
        }
    }

    /// Follows `bytes`, the next ones of the stream; an error when they break a bound.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<(), String> {
        let mut i = 0;
        while i < bytes.len() {
            match self.at {
                At::Tag => {
                    self.tag = bytes[i];
                    if max_line(self.tag).is_none() {
                        return Err(format!("unexpected reply type byte {:#x}", self.tag));
                    }
                    self.at = At::Line;
                    self.line_len = 0;
                    self.cr = false;
                    self.reply += 1;
                    i += 1;
                }
                At::Line => {
                    let b = bytes[i];
                    self.reply += 1;
                    i += 1;
                    if b == b'\n' && self.cr {
                        self.line_done()?;
                    } else {
                        self.line_len += 1;
                        self.cr = b == b'\r';
                        let max = max_line(self.tag).unwrap_or(0);
                        if self.line_len > max + 1 {
                            return Err(format!("reply line longer than {max} bytes"));
                        }
                        if let Some(slot) = self.num.get_mut(self.line_len - 1) {
                            *slot = b;
                        }
                    }
                }
                At::Body(left) => {
                    let take = left.min((bytes.len() - i) as u64);
                    self.reply += take;
                    i += take as usize;
                    if take == left {
                        self.value_done();
                    } else {
                        self.at = At::Body(left - take);
                    }
                }
            }
            if self.reply > self.max_reply {
                return Err(format!(
                    "reply longer than maxReplyBytes ({})",
                    self.max_bulk
                ));
            }
        }
        Ok(())
    }

    /// The line of `self.tag` has ended.
    fn line_done(&mut self) -> Result<(), String> {
        let text = || -> Result<i64, String> {
            std::str::from_utf8(&self.num[..self.line_len - 1])
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .ok_or_else(|| "malformed length in reply".to_string())
        };
        match self.tag {
            b'$' | b'!' | b'=' => {
                let len = text()?;
                if len < 0 && self.tag == b'$' {
                    self.value_done();
                    return Ok(());
                }
                if len < 0 || len as u64 > self.max_bulk {
                    return Err(format!(
                        "reply announces a bulk string of {len} bytes (maxReplyBytes is {})",
                        self.max_bulk
                    ));
                }
                self.at = At::Body(len as u64 + 2);
            }
            b'*' | b'~' | b'>' | b'%' | b'|' => {
                let n = text()?;
                if n <= 0 {
                    // null, empty, or (a map or attribute) refused by the parser above
                    self.value_done();
                    return Ok(());
                }
                let n = n as u64;
                let elements = match self.tag {
                    b'%' => n * 2,
                    b'|' => n * 2 + 1,
                    _ => n,
                };
                // every element takes 3 bytes at least (`_\r\n`)
                if elements > self.max_reply / 3 {
                    return Err(format!(
                        "reply announces {n} elements (maxReplyBytes is {})",
                        self.max_bulk
                    ));
                }
                if self.depth == MAX_DEPTH {
                    return Err("reply nested too deeply".into());
                }
                self.open[self.depth] = elements;
                self.depth += 1;
                self.at = At::Tag;
            }
            _ => self.value_done(),
        }
        Ok(())
    }

    /// A value has ended: so has every aggregate it was the last element of, and the reply
    /// when none is open.
    fn value_done(&mut self) {
        self.at = At::Tag;
        while self.depth > 0 {
            self.open[self.depth - 1] -= 1;
            if self.open[self.depth - 1] > 0 {
                return;
            }
            self.depth -= 1;
        }
        self.reply = 0;
    }
}

/// The longest line after type byte `tag`; `None` for a byte that starts no RESP value.
fn max_line(tag: u8) -> Option<usize> {
    match tag {
        b'$' | b'!' | b'=' | b'*' | b'~' | b'>' | b'%' | b'|' | b':' => Some(MAX_NUMBER_LINE),
        b'+' | b'-' | b'_' | b',' | b'#' | b'(' => Some(MAX_STATUS_LINE),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1024 * 1024;

    /// `bytes` fed in one go, and split in two at every byte boundary, and a byte at a time:
    /// the same outcome every way.
    fn scan(bytes: &[u8], max: usize) -> Result<Scanner, String> {
        let mut whole = Scanner::new(max);
        let outcome = whole.feed(bytes);
        for cut in 0..=bytes.len() {
            let mut s = Scanner::new(max);
            let split = s.feed(&bytes[..cut]).and_then(|_| s.feed(&bytes[cut..]));
            assert_eq!(split.is_ok(), outcome.is_ok(), "cut at {cut}: {split:?}");
            if split.is_ok() {
                assert_eq!(
                    (s.at, s.depth, s.reply),
                    (whole.at, whole.depth, whole.reply)
                );
            }
        }
        let mut s = Scanner::new(max);
        let bytewise = bytes.iter().try_for_each(|b| s.feed(&[*b]));
        assert_eq!(bytewise, outcome, "a byte at a time");
        outcome.map(|_| whole)
    }

    /// Scans whole replies: at the end the scanner waits for the next one.
    fn complete(bytes: &[u8], max: usize) {
        let s = scan(bytes, max).unwrap_or_else(|e| panic!("{e}: {bytes:?}"));
        assert_eq!((s.at, s.depth, s.reply), (At::Tag, 0, 0), "{bytes:?}");
    }

    fn refused(bytes: &[u8], max: usize) -> String {
        match scan(bytes, max) {
            Err(e) => e,
            Ok(_) => panic!("accepted: {:?}", String::from_utf8_lossy(bytes)),
        }
    }

    #[test]
    fn whole_replies_of_every_type_split_anywhere() {
        complete(b"*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n", MIB);
        complete(b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nh\r\nlo\r\n", MIB);
        complete(
            b"*4\r\n$8\r\npmessage\r\n$2\r\nc*\r\n$2\r\nch\r\n$0\r\n\r\n",
            MIB,
        );
        complete(b"+PONG\r\n-ERR no\r\n:42\r\n", MIB);
        // push frames (RESP3) and the other RESP3 types
        complete(b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$3\r\nabc\r\n", MIB);
        complete(
            b"_\r\n,3.14\r\n#t\r\n(123456789012345678901234567890\r\n!3\r\nERR\r\n=7\r\ntxt:abc\r\n",
            MIB,
        );
        complete(b"%2\r\n+a\r\n:1\r\n+b\r\n*2\r\n:1\r\n:2\r\n", MIB);
        complete(b"~2\r\n+a\r\n+b\r\n", MIB);
        // an attribute: one key and value, then the value it annotates
        complete(b"|1\r\n+key\r\n+val\r\n*1\r\n:1\r\n", MIB);
        // a body may hold CR and LF and anything else
        complete(b"$6\r\n\r\n*9\r\n\r\n", MIB);
    }

    #[test]
    fn nil_and_empty_values() {
        complete(b"$-1\r\n*-1\r\n*0\r\n~0\r\n%0\r\n>0\r\n", MIB);
        complete(b"*2\r\n$-1\r\n*-1\r\n", MIB);
        // a negative length of a blob error or verbatim string is no nil: refused
        refused(b"!-1\r\n", MIB);
        refused(b"=-5\r\n", MIB);
    }

    #[test]
    fn nested_arrays_end_together() {
        complete(b"*2\r\n*2\r\n*1\r\n:1\r\n$1\r\nx\r\n+ok\r\n", MIB);
        let mut s = Scanner::new(MIB);
        s.feed(b"*2\r\n*1\r\n:1\r\n").unwrap();
        assert_eq!(
            (s.depth, s.open[0]),
            (1, 1),
            "the outer array waits for its second"
        );
        s.feed(b":2\r\n").unwrap();
        assert_eq!((s.depth, s.reply), (0, 0));
        // MAX_DEPTH open aggregates, not one more
        let mut deep = b"*1\r\n".repeat(MAX_DEPTH);
        deep.extend_from_slice(b":1\r\n");
        complete(&deep, MIB);
        let mut deeper = b"*1\r\n".repeat(MAX_DEPTH + 1);
        deeper.extend_from_slice(b":1\r\n");
        assert!(refused(&deeper, MIB).contains("deeply"));
    }

    #[test]
    fn an_announced_length_over_the_cap_is_refused_at_its_header() {
        let e = refused(
            b"*3\r\n$7\r\nmessage\r\n$1\r\nx\r\n$9223372036854775807\r\n",
            MIB,
        );
        assert!(e.contains("9223372036854775807"), "{e}");
        refused(format!("${}\r\n", MIB + 1).as_bytes(), MIB);
        refused(format!("!{}\r\n", MIB + 1).as_bytes(), MIB);
        refused(format!("={}\r\n", MIB + 1).as_bytes(), MIB);
        // what the cap allows passes
        let mut at_cap = format!("${}\r\n", 1024).into_bytes();
        at_cap.extend(std::iter::repeat_n(b'z', 1024));
        at_cap.extend_from_slice(b"\r\n");
        complete(&at_cap, 1024);
        refused(b"$1025\r\n", 1024);
        // the default: 512 MiB
        let mut s = Scanner::new(512 * MIB);
        assert!(s.feed(format!("${}\r\n", 512 * MIB).as_bytes()).is_ok());
        assert!(Scanner::new(512 * MIB)
            .feed(format!("${}\r\n", 512 * MIB + 1).as_bytes())
            .is_err());
    }

    #[test]
    fn counts_that_no_reply_within_the_cap_can_hold_are_refused() {
        refused(b"*9223372036854775807\r\n", MIB);
        refused(b">9223372036854775807\r\n", MIB);
        refused(b"%4611686018427387904\r\n", MIB);
        refused(b"|4611686018427387903\r\n", MIB);
        let most = (MIB + MAX_STATUS_LINE) / 3;
        assert!(Scanner::new(MIB)
            .feed(format!("*{most}\r\n").as_bytes())
            .is_ok());
        refused(format!("*{}\r\n", most + 1).as_bytes(), MIB);
    }

    #[test]
    fn a_reply_of_many_small_parts_is_bounded_as_a_whole() {
        let mut s = Scanner::new(1024);
        s.feed(b"*1000\r\n").unwrap();
        let mut part = b"$1000\r\n".to_vec();
        part.extend(std::iter::repeat_n(b'y', 1000));
        part.extend_from_slice(b"\r\n");
        let mut fed = 0;
        let e = loop {
            match s.feed(&part) {
                Ok(()) => fed += 1,
                Err(e) => break e,
            }
        };
        assert!(e.contains("longer than maxReplyBytes"), "{e}");
        assert!(fed < 80, "refused after {fed} parts");
        // while whole replies of the same size one after another are fine
        let mut s = Scanner::new(1024);
        for _ in 0..1000 {
            s.feed(&part).unwrap();
        }
    }

    #[test]
    fn lines_are_bounded() {
        let mut long = b"+".to_vec();
        long.extend(std::iter::repeat_n(b'a', MAX_STATUS_LINE));
        long.extend_from_slice(b"\r\n");
        let mut s = Scanner::new(1024);
        s.feed(&long).unwrap();
        assert_eq!((s.at, s.reply), (At::Tag, 0));
        let mut longer = b"-".to_vec();
        longer.extend(std::iter::repeat_n(b'a', MAX_STATUS_LINE + 2));
        assert!(Scanner::new(1024).feed(&longer).is_err());
        // a length line: 24 bytes at most
        assert!(Scanner::new(MIB).feed(&[b'$'; 27]).is_err());
        complete(b"$000000000000000000000005\r\nhello\r\n", MIB);
        refused(b"$0000000000000000000000005\r\nhello\r\n", MIB);
        // a lone CR is part of the line; a text line may hold one
        complete(b"+a\rb\r\n", MIB);
        refused(b"$1\r2\r\n", MIB);
    }

    #[test]
    fn garbage_is_refused() {
        refused(b"?\r\n", MIB);
        refused(b"$abc\r\n", MIB);
        refused(b"*\r\n", MIB);
        refused(b"\r\n", MIB);
    }
}
