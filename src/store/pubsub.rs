//! Pub/sub and bulk-invalidation operations of the store: PUBLISH on prefixed channels,
//! UNLINK of exact keys, and SCAN + UNLINK of a pattern in batches (never KEYS); and the rules
//! every message obeys on the wire ([`MessageRules`]: a size bound, opt-in HMAC signatures).

use std::borrow::Cow;
use std::fmt::Write;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use parking_lot::Mutex;
use sha2::Sha256;

use super::codec::{cmd, decode, encode};
use super::{Backend, Store};
use crate::error::{CacheError, CacheResult};
use crate::names::glob::{glob_escape, glob_match};

/// Keys asked of each SCAN step, and keys per UNLINK.
const SCAN_COUNT: usize = 1000;
const UNLINK_BATCH: usize = 500;
/// A pattern delete stops (with ETIMEDOUT) after this long or this many SCAN steps.
const PATTERN_DEADLINE: Duration = Duration::from_secs(60);
const MAX_SCAN_STEPS: usize = 1_000_000;

/// A signed message is the JSON object published with one field added last:
/// `"sig":"<HMAC-SHA256, 64 lowercase hex>"`. The MAC covers the exact bytes of the object as
/// published (without the field) and the channel it travels on, so verifying never
/// re-serialises JSON, and a message signed for one channel (or key prefix) is refused on
/// another. Receivers without a secret read it as a plain object with one more field.
const SIG_FIELD: &[u8] = b"\"sig\":\"";
const SIG_HEX: usize = 64;
/// `"sig":"` + 64 hex + `"}`
const SIG_TAIL: usize = SIG_FIELD.len() + SIG_HEX + 2;
const MAC_DOMAIN: &[u8] = b"bisman-cache pubsub v1\n";

/// Every message this library publishes is numbered (issue 15, gap detection): two fields are
/// appended to the object before it is signed, so they are covered by the signature:
/// `"sender":"<32 lowercase hex>"` (128 random bits, new for every `Store`: a restart or a
/// reconfigure makes a new sender) and `"seq":<n>`, counting from 1 per (sender, channel).
/// The bytes they add at most: `,"sender":"` + 32 hex + `","seq":` + 20 digits.
pub const SENDER_HEX: usize = 32;
const NUMBER_TAIL: usize = 11 + SENDER_HEX + 8 + 20;

/// Why a received message was dropped (counted per reason in `stats().pubsub.rejected`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejected {
    /// Over `maxMessageBytes`.
    Oversize,
    /// A secret is set and the message carries no signature.
    Unsigned,
    /// A secret is set and the signature matches none of the secrets.
    BadSignature,
}

/// The size bound and the signing secrets of one instance's messages.
pub struct MessageRules {
    max_bytes: usize,
    secrets: Vec<Vec<u8>>,
    /// This store's sender id (see [`SENDER_HEX`]).
    sender: String,
    /// The last number given per channel (index in `crate::rules::CHANNELS`). Held while a
    /// numbered message is handed to its connection, so messages leave in number order.
    seqs: Mutex<[u64; 3]>,
    /// Held across the whole PUBLISH on transports where handing a command to the
    /// connection is itself asynchronous (TLS, Sentinel, Cluster): see `Store::publish`.
    pub order: tokio::sync::Mutex<()>,
}

/// A fresh random sender id (falls back to time and address bits if the OS has no entropy:
/// it must differ between instances, it need not be secret).
fn new_sender() -> String {
    let mut b = [0u8; SENDER_HEX / 2];
    if getrandom::fill(&mut b).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let here = &b as *const _ as usize as u128;
        b.copy_from_slice(&(t ^ here.rotate_left(64)).to_le_bytes());
    }
    hex::encode(b)
}

/// The MAC of `payload` on `channel` (None never happens: HMAC takes keys of any length).
fn mac_of(secret: &[u8], channel: &str, payload: &[u8]) -> Option<Hmac<Sha256>> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(secret).ok()?;
    m.update(MAC_DOMAIN);
    m.update(channel.as_bytes());
    m.update(b"\n");
    m.update(payload);
    Some(m)
}

/// Splits a signed wire message into the published object and its signature; None when it
/// carries no well-formed `sig` field at its end.
fn split_signed(wire: &[u8]) -> Option<(Cow<'_, [u8]>, [u8; 32])> {
    let len = wire.len();
    if len < SIG_TAIL + 1 || !wire.ends_with(b"\"}") {
        return None;
    }
    let tail = &wire[len - SIG_TAIL..];
    if !tail.starts_with(SIG_FIELD) {
        return None;
    }
    let mut sig = [0u8; 32];
    hex::decode_to_slice(&tail[SIG_FIELD.len()..SIG_FIELD.len() + SIG_HEX], &mut sig).ok()?;
    let head = &wire[..len - SIG_TAIL];
    let object: Cow<'_, [u8]> = match head.last() {
        Some(b',') => {
            let mut o = head[..head.len() - 1].to_vec();
            o.push(b'}');
            Cow::Owned(o)
        }
        Some(b'{') if head.len() == 1 => Cow::Borrowed(b"{}"),
        _ => return None,
    };
    Some((object, sig))
}

impl MessageRules {
    pub fn new(max_bytes: usize, secrets: Vec<Vec<u8>>) -> MessageRules {
        MessageRules {
            max_bytes,
            secrets,
            sender: new_sender(),
            seqs: Mutex::new([0; 3]),
            order: tokio::sync::Mutex::new(()),
        }
    }

    /// This store's sender id.
    pub fn sender(&self) -> &str {
        &self.sender
    }

    /// Numbers the next message of channel `idx` (its index in `CHANNELS`; `channel` is the
    /// channel as published, prefix included), seals it, and hands the wire to `send` while
    /// the sequence lock is still held: whatever `send` queues on a connection synchronously
    /// leaves in number order. A message refused by [`check`](Self::check) takes no number;
    /// one that `send` fails to deliver has taken one, so its receivers see a gap (it is lost).
    pub fn send_next<R>(
        &self,
        idx: usize,
        channel: &str,
        payload: &str,
        send: impl FnOnce(String) -> R,
    ) -> CacheResult<R> {
        self.check(payload)?;
        let inner = payload
            .strip_prefix('{')
            .and_then(|p| p.strip_suffix('}'))
            .ok_or_else(|| {
                CacheError::InvalidArg("a pub/sub message must be a JSON object".into())
            })?;
        let sep = if inner.trim().is_empty() { "" } else { "," };
        let mut seqs = self.seqs.lock();
        let slot = seqs
            .get_mut(idx)
            .ok_or(CacheError::Internal("no such channel"))?;
        let seq = *slot + 1;
        let mut numbered = String::with_capacity(payload.len() + NUMBER_TAIL);
        for part in [
            "{",
            inner,
            sep,
            "\"sender\":\"",
            &self.sender,
            "\",\"seq\":",
        ] {
            numbered.push_str(part);
        }
        // writing to a String cannot fail
        let _ = write!(numbered, "{seq}}}");
        let wire = self.seal(channel, numbered)?;
        *slot = seq;
        Ok(send(wire))
    }

    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// True when messages are signed and unsigned ones refused.
    pub fn signs(&self) -> bool {
        !self.secrets.is_empty()
    }

    /// Bytes of received messages a subscriber may hold for JS at once.
    pub fn queue_budget(&self) -> usize {
        (4 * self.max_bytes).max(32 * 1024 * 1024)
    }

    /// Refuses (RangeError) a message that would be over `maxMessageBytes` on the wire,
    /// signature included: call it before anything is written.
    pub fn check(&self, payload: &str) -> CacheResult<()> {
        let numbered = payload.len() + NUMBER_TAIL;
        let wire = if self.signs() {
            numbered + 1 + SIG_TAIL
        } else {
            numbered
        };
        if wire > self.max_bytes {
            return Err(CacheError::TooLarge(format!(
                "the message is {wire} bytes on the wire; maxMessageBytes is {}",
                self.max_bytes
            )));
        }
        Ok(())
    }

    /// The message as it goes on the wire of `channel` (the channel as published, prefix
    /// included): unchanged without a secret, else signed with the first secret.
    fn seal(&self, channel: &str, message: String) -> CacheResult<String> {
        let wire = message.len() + if self.signs() { 1 + SIG_TAIL } else { 0 };
        if wire > self.max_bytes {
            return Err(CacheError::TooLarge(format!(
                "the message is {wire} bytes on the wire; maxMessageBytes is {}",
                self.max_bytes
            )));
        }
        let Some(secret) = self.secrets.first() else {
            return Ok(message);
        };
        let payload = message.as_str();
        let inner = payload
            .strip_prefix('{')
            .and_then(|p| p.strip_suffix('}'))
            .ok_or_else(|| {
                CacheError::InvalidArg("a signed pub/sub message must be a JSON object".into())
            })?;
        let (object, head) = if inner.trim().is_empty() {
            ("{}", "{".to_string())
        } else {
            (payload, format!("{{{inner},"))
        };
        let sig = mac_of(secret, channel, object.as_bytes())
            .ok_or(CacheError::Internal(
                "the pub/sub secret was refused by HMAC",
            ))?
            .finalize()
            .into_bytes();
        let mut wire = String::with_capacity(head.len() + SIG_TAIL);
        wire.push_str(&head);
        wire.push_str("\"sig\":\"");
        wire.push_str(&hex::encode(sig));
        wire.push_str("\"}");
        Ok(wire)
    }

    /// A received message → the object as its sender published it (signature field removed),
    /// or why it is dropped. Without a secret every message within the size bound passes (a
    /// signed one with its signature field removed, unverified). With secrets, the signature
    /// must match one of them (compared in constant time).
    pub fn open<'a>(&self, channel: &str, wire: &'a [u8]) -> Result<Cow<'a, [u8]>, Rejected> {
        if wire.len() > self.max_bytes {
            return Err(Rejected::Oversize);
        }
        let signed = split_signed(wire);
        if !self.signs() {
            return Ok(signed.map_or(Cow::Borrowed(wire), |(object, _)| object));
        }
        let Some((object, sig)) = signed else {
            return Err(Rejected::Unsigned);
        };
        // every secret is tried, so the time taken does not say which one matched
        let mut ok = false;
        for secret in &self.secrets {
            ok |= mac_of(secret, channel, &object).is_some_and(|m| m.verify_slice(&sig).is_ok());
        }
        if ok {
            Ok(object)
        } else {
            Err(Rejected::BadSignature)
        }
    }
}

impl Store {
    /// PUBLISH on `keyPrefix + channel` → how many subscribers received it.
    /// The message is bounded by `maxMessageBytes`, numbered (sender id and sequence number,
    /// see [`SENDER_HEX`]) and signed when `pubsubSecret` is set (every message kind,
    /// whichever service sends it).
    ///
    /// Numbers must leave in order, whichever task publishes. On the pipelined transport the
    /// command is queued synchronously while the sequence lock is held (the direct path of
    /// `pubsub_publish` queues on the same pipeline the same way), so the outbox, and the
    /// wire, hold them in number order. On the other transports a command reaches its
    /// connection only inside an await, so [`MessageRules::order`] is held across the whole
    /// PUBLISH: one at a time per instance (bounded by `commandTimeoutMs` to get the turn).
    /// `memory://` delivers synchronously, under the sequence lock.
    pub async fn publish(&self, channel: &str, payload: &str) -> CacheResult<u32> {
        let idx = crate::names::channels::channel_index(channel)?;
        let ch = self.key(channel);
        let rules = &self.messages;
        let r = match &self.backend {
            Backend::Memory(m) => {
                return rules.send_next(idx, &ch, payload, |w| m.publish(&ch, &w))
            }
            Backend::Redis(r) => r,
        };
        if let Some(p) = r.pipeline() {
            r.circuit().check()?;
            let (tx, rx) = tokio::sync::oneshot::channel();
            rules.send_next(idx, &ch, payload, |wire| {
                p.submit(
                    |b| encode(b, &[b"PUBLISH", ch.as_bytes(), wire.as_bytes()]),
                    Box::new(move |r| {
                        let _ = tx.send(r);
                    }),
                )
            })?;
            let reply = rx.await.unwrap_or(Err(CacheError::Closed));
            r.circuit().record(&reply);
            return decode::<u32>(reply?);
        }
        let wait = r.command_timeout();
        let _turn = tokio::time::timeout(wait, rules.order.lock())
            .await
            .map_err(|_| CacheError::Timeout(wait.as_millis() as u64))?;
        let wire = rules.send_next(idx, &ch, payload, |w| w)?;
        if let Some(c) = self.cluster() {
            let home = self.key(crate::rules::CHANNELS[0]);
            return c.publish(&home, &ch, &wire).await;
        }
        r.query::<u32>(cmd("PUBLISH").arg(&ch).arg(&wire)).await
    }

    /// UNLINK of exact (unprefixed) keys, in batches → how many existed.
    pub async fn unlink_keys(&self, keys: &[String]) -> CacheResult<u32> {
        let full: Vec<String> = keys.iter().map(|k| self.key(k)).collect();
        match &self.backend {
            Backend::Redis(r) => {
                let mut n = 0;
                for chunk in full.chunks(UNLINK_BATCH) {
                    n += r.query::<u32>(cmd("UNLINK").arg(chunk)).await?;
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
                            cmd("SCAN")
                                .arg(cursor)
                                .arg("MATCH")
                                .arg(&full)
                                .arg("COUNT")
                                .arg(SCAN_COUNT),
                        )
                        .await?;
                    for chunk in found.chunks(UNLINK_BATCH) {
                        removed += r.query::<u64>(cmd("UNLINK").arg(chunk)).await?;
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

    const CH: &str = "erp:cache:invalidate";

    fn rules(secrets: &[&str]) -> MessageRules {
        MessageRules::new(
            1024,
            secrets.iter().map(|s| s.as_bytes().to_vec()).collect(),
        )
    }

    fn open(r: &MessageRules, ch: &str, wire: &str) -> Result<String, Rejected> {
        r.open(ch, wire.as_bytes())
            .map(|o| String::from_utf8(o.into_owned()).unwrap())
    }

    // Hardening 14: signed messages round-trip to the exact bytes published.
    #[test]
    fn a_signed_message_opens_to_the_exact_object() {
        let r = rules(&["0123456789abcdef"]);
        for p in [
            r#"{"keys":["a"],"origin":"n","ts":1}"#,
            "{}",
            "{ }",
            r#"{"a":{"b":"}"}}"#,
        ] {
            let wire = r.seal(CH, p.into()).unwrap();
            assert!(wire.ends_with("\"}"));
            assert!(
                serde_json::from_str::<serde_json::Value>(&wire).is_ok(),
                "{wire}"
            );
            let back = open(&r, CH, &wire).unwrap();
            assert_eq!(back, if p == "{ }" { "{}" } else { p });
        }
        assert_eq!(
            r.seal(CH, "[1]".into()).unwrap_err().code(),
            "ERR_INVALID_ARG",
            "only objects are signed"
        );
    }

    #[test]
    fn unsigned_forged_altered_or_moved_messages_are_refused() {
        let r = rules(&["0123456789abcdef"]);
        let wire = r.seal(CH, r#"{"userId":1}"#.into()).unwrap();
        assert_eq!(open(&r, CH, r#"{"userId":1}"#), Err(Rejected::Unsigned));
        assert_eq!(open(&r, CH, "garbage"), Err(Rejected::Unsigned));
        assert_eq!(
            open(&r, CH, &wire.replace("\"userId\":1", "\"userId\":2")),
            Err(Rejected::BadSignature)
        );
        assert_eq!(
            open(&r, "erp:permissions:invalidate", &wire),
            Err(Rejected::BadSignature)
        );
        let other = rules(&["fedcba9876543210"]);
        assert_eq!(open(&other, CH, &wire), Err(Rejected::BadSignature));
        // without a secret: accepted, the signature field removed
        let plain = rules(&[]);
        assert_eq!(open(&plain, CH, &wire).unwrap(), r#"{"userId":1}"#);
        assert_eq!(open(&plain, CH, "x").unwrap(), "x");
    }

    // Issue 15 item 3: every message is numbered per channel, inside the signature.
    #[test]
    fn messages_are_numbered_per_channel_inside_the_signature() {
        let r = rules(&["0123456789abcdef"]);
        let sender = r.sender().to_string();
        assert_eq!(sender.len(), SENDER_HEX);
        assert_ne!(sender, rules(&[]).sender(), "a new id per instance");
        let next = |idx, p: &str| r.send_next(idx, CH, p, |w| w).unwrap();
        let seq_of = |w: &str| {
            let v: serde_json::Value = serde_json::from_str(&open(&r, CH, w).unwrap()).unwrap();
            assert_eq!(v["sender"], sender.as_str());
            v["seq"].as_u64().unwrap()
        };
        assert_eq!(seq_of(&next(0, r#"{"a":1}"#)), 1);
        assert_eq!(seq_of(&next(0, "{}")), 2);
        assert_eq!(seq_of(&next(2, r#"{"b":2}"#)), 1, "per channel");
        assert_eq!(seq_of(&next(0, r#"{"a":1}"#)), 3);
        // the number is signed: changing it breaks the signature
        let w = next(0, r#"{"a":1}"#);
        assert_eq!(
            open(&r, CH, &w.replace("\"seq\":4", "\"seq\":9")),
            Err(Rejected::BadSignature)
        );
        // refused messages take no number
        assert!(r.send_next(0, CH, "[1]", |w| w).is_err());
        let big = format!("{{\"p\":\"{}\"}}", "x".repeat(1000));
        assert!(r.send_next(0, CH, &big, |w| w).is_err());
        assert_eq!(seq_of(&next(0, "{}")), 5);
    }

    #[test]
    fn rotation_signs_with_the_first_secret_and_verifies_with_any() {
        let (old, new) = ("old-0123456789abcdef", "new-0123456789abcdef");
        let both = rules(&[new, old]);
        let wire_new = both.seal(CH, "{\"a\":1}".into()).unwrap();
        let wire_old = rules(&[old]).seal(CH, "{\"a\":1}".into()).unwrap();
        assert!(open(&both, CH, &wire_old).is_ok());
        assert!(open(&rules(&[old, new]), CH, &wire_new).is_ok());
        assert!(open(&rules(&[new]), CH, &wire_new).is_ok());
        assert_eq!(
            open(&rules(&[old]), CH, &wire_new),
            Err(Rejected::BadSignature)
        );
    }

    #[test]
    fn the_size_bound_holds_both_ways() {
        let r = rules(&["0123456789abcdef"]);
        let big = format!("{{\"p\":\"{}\"}}", "x".repeat(1000));
        assert_eq!(
            r.seal(CH, big.clone()).unwrap_err().code(),
            "ERR_VALUE_TOO_LARGE"
        );
        assert_eq!(
            open(&rules(&[]), CH, &"x".repeat(1025)),
            Err(Rejected::Oversize)
        );
        assert!(open(&rules(&[]), CH, &"x".repeat(1024)).is_ok());
    }
}
