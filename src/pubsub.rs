//! pubsub: the native half. One dedicated subscriber connection per instance, supervised.
//!
//! - Channels carry the key prefix (`{keyPrefix}permissions:invalidate`, …), so ERPs sharing
//!   one Redis under different prefixes never hear each other.
//! - A supervisor task connects, SUBSCRIBEs to the three channels, pings the link every
//!   second, and after any loss reconnects with capped exponential backoff (50 ms … 1 s, with
//!   jitter) and subscribes again. The near cache is trusted only between a confirmed
//!   SUBSCRIBE and the loss of that connection.
//! - Each message is applied to the near cache right here in Rust, then handed to JS through
//!   a *weak* threadsafe function (`call_async_catch`): it never keeps Node alive, and a JS
//!   exception comes back as an `Err` (reported on stderr) instead of killing the process.
//!   The JS dispatcher catches its handlers' errors itself, so that path is a last resort.
//! - `memory://`: subscribers register with the named in-process store; PUBLISH delivers to
//!   them synchronously (near cache first), then to JS through the same queue.

use std::future::poll_fn;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_core::Stream;
use napi::bindgen_prelude::{spawn, FnArgs, Function};
use napi::threadsafe_function::{ThreadsafeFunction, UnknownReturnValue};
use napi::{Env, Status};
use napi_derive::napi;
use parking_lot::Mutex;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::bridge::{NativeCache, Reply};
use crate::error::{js, CacheError, CacheResult};
use crate::keys::{self, JsId};
use crate::near_cache::{NearCache, CH_CACHE, CH_PERMISSIONS, CH_SESSIONS};
use crate::store::memory::{MemDeliver, MemoryStore};
use crate::store::pipeline::decode;
use crate::store::pubsub::{MessageRules, Rejected};
use crate::store::{Backend, Store};

pub const CHANNELS: [&str; 3] = [CH_PERMISSIONS, CH_SESSIONS, CH_CACHE];

/// Messages waiting for JS; beyond this they are dropped (pub/sub is at-most-once anyway,
/// and the near cache has already applied them).
const DELIVERY_QUEUE: usize = 10_000;
const MIN_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(1);
const PING_EVERY: Duration = Duration::from_secs(1);
/// Most keys one `invalidateKeys` call accepts.
pub const MAX_KEYS: usize = 10_000;

type MessageFn = ThreadsafeFunction<
    (String, String),
    UnknownReturnValue,
    FnArgs<(String, String)>,
    Status,
    false,
    true,
>;

/// The state of the subscriber link, shared with its tasks.
pub struct Link {
    connected: watch::Sender<bool>,
    /// Successful subscriptions after the first one.
    resubscribes: AtomicU64,
    subscriptions: AtomicU64,
    /// Messages dropped because JS did not keep up.
    dropped: AtomicU64,
    /// Bytes of messages waiting for JS (bounded by `MessageRules::queue_budget`).
    queued_bytes: AtomicUsize,
    /// Received messages dropped before the near cache or JS saw them, by reason.
    oversize: AtomicU64,
    unsigned: AtomicU64,
    bad_signature: AtomicU64,
}

impl Link {
    fn reject(&self, why: Rejected) {
        let counter = match why {
            Rejected::Oversize => &self.oversize,
            Rejected::Unsigned => &self.unsigned,
            Rejected::BadSignature => &self.bad_signature,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

struct Running {
    tasks: Vec<JoinHandle<()>>,
    memory: Option<(MemoryStore, u64)>,
}

/// Per instance: the near cache and the subscriber.
pub struct PubSubState {
    pub near: Arc<NearCache>,
    running: Mutex<Option<Running>>,
    link: Arc<Link>,
}

impl PubSubState {
    pub fn new(near: NearCache) -> PubSubState {
        PubSubState {
            near: Arc::new(near),
            running: Mutex::new(None),
            link: Arc::new(Link {
                connected: watch::channel(false).0,
                resubscribes: AtomicU64::new(0),
                subscriptions: AtomicU64::new(0),
                dropped: AtomicU64::new(0),
                queued_bytes: AtomicUsize::new(0),
                oversize: AtomicU64::new(0),
                unsigned: AtomicU64::new(0),
                bad_signature: AtomicU64::new(0),
            }),
        }
    }

    /// Stops the subscriber (its tasks are aborted, its connection dropped) and distrusts the
    /// near cache. Idempotent.
    pub fn close(&self) {
        if let Some(r) = self.running.lock().take() {
            for t in r.tasks {
                t.abort();
            }
            if let Some((m, id)) = r.memory {
                m.unsubscribe(id);
            }
        }
        self.near.set_trusted(false);
        self.link.connected.send_replace(false);
    }

    pub fn is_subscribed(&self) -> bool {
        self.running.lock().is_some()
    }

    pub fn is_connected(&self) -> bool {
        *self.link.connected.borrow()
    }
}

impl Drop for PubSubState {
    fn drop(&mut self) {
        self.close();
    }
}

/// A channel name as JS gives it → the canonical one.
fn channel_of(name: &str) -> CacheResult<&'static str> {
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
/// First segments a pattern may never name: locks and their fencing counters are no cache
/// entries, and deleting one hands its resource to a second owner (or rewinds its fence).
const NEVER_FAMILIES: [&str; 2] = ["lock", "lock-fence"];

/// Bytes that make a Redis MATCH pattern more than a literal (`\` escapes one).
fn is_glob(c: char) -> bool {
    matches!(c, '*' | '?' | '[' | ']' | '\\')
}

/// A pattern for `invalidatePattern` (keys under `keyPrefix`, Redis MATCH syntax). Refused:
/// - empty, longer than 512 bytes, or holding control characters;
/// - a first segment (up to the first `:`, or the whole pattern without one) that is empty
///   or holds a glob character or `\` (so `*`, `?*`, `*?`, `[^]*`, `*:*`, `:*`, `da*:x`);
/// - any pattern whose first segment is `lock` or `lock-fence`;
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
            "pattern must not name {first}: keys: locks are no cache entries (release them \
             with distributedLock.release)"
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

/// One received message (`channel` as received, prefix included): checked against
/// `maxMessageBytes` and, with `pubsubSecret`, its signature; then applied to the near cache
/// and queued for JS. A message that fails a check reaches neither, and is counted.
fn receive(
    near: &NearCache,
    tx: &mpsc::Sender<(String, String)>,
    link: &Link,
    rules: &MessageRules,
    prefix: &str,
    channel: &str,
    wire: &[u8],
) {
    let Some(ch) = channel
        .strip_prefix(prefix)
        .and_then(|c| channel_of(c).ok())
    else {
        return;
    };
    let payload = match rules.open(channel, wire) {
        Ok(object) => String::from_utf8_lossy(&object).into_owned(),
        Err(why) => {
            link.reject(why);
            return;
        }
    };
    near.apply_message(ch, &payload);
    let len = payload.len();
    let queued = link.queued_bytes.fetch_add(len, Ordering::AcqRel);
    if queued + len > rules.queue_budget() || tx.try_send((ch.to_string(), payload)).is_err() {
        link.queued_bytes.fetch_sub(len, Ordering::AcqRel);
        link.dropped.fetch_add(1, Ordering::Relaxed);
    }
}

/// Hands messages to JS, in order, one at a time.
async fn deliver(tsfn: MessageFn, mut rx: mpsc::Receiver<(String, String)>, link: Arc<Link>) {
    while let Some(m) = rx.recv().await {
        link.queued_bytes.fetch_sub(m.1.len(), Ordering::AcqRel);
        match tsfn.call_async_catch(m).await {
            Ok(_) => {}
            Err(e) if e.status == Status::Closing => break,
            // While Node tears the environment down, calls into JS fail with a pending
            // exception that carries no reason: nothing to report then. (The JS dispatcher
            // catches its handlers' errors itself; what reaches here is a last resort.)
            Err(e) if e.reason.is_empty() => {}
            Err(e) => eprintln!(
                "@bisman/cache: a pub/sub message handler threw: {}",
                e.reason
            ),
        }
    }
}

fn jittered(d: Duration) -> Duration {
    let mut b = [0u8; 2];
    let r = if getrandom::fill(&mut b).is_ok() {
        u16::from_le_bytes(b) as f64 / u16::MAX as f64
    } else {
        0.5
    };
    d.mul_f64(0.8 + 0.4 * r)
}

/// Keeps one subscriber connection alive until aborted.
async fn supervise(
    store: Arc<Store>,
    channels: Vec<String>,
    near: Arc<NearCache>,
    tx: mpsc::Sender<(String, String)>,
    link: Arc<Link>,
) {
    let mut delay = MIN_BACKOFF;
    loop {
        let Backend::Redis(r) = &store.backend else {
            return;
        };
        match r.subscriber(&channels).await {
            Ok(ps) => {
                delay = MIN_BACKOFF;
                near.set_trusted(true);
                if link.subscriptions.fetch_add(1, Ordering::AcqRel) > 0 {
                    link.resubscribes.fetch_add(1, Ordering::Relaxed);
                }
                link.connected.send_replace(true);
                tokio::select! {
                    _ = pump(ps, r.command_timeout(), &store, &near, &tx, &link) => {}
                    // Sentinel: the primary moved; resubscribe there
                    _ = r.primary_changed() => {}
                }
                // The link is gone: from this instant nothing answers from the near cache.
                near.set_trusted(false);
                link.connected.send_replace(false);
            }
            Err(CacheError::Closed) => return,
            Err(_) => {}
        }
        tokio::time::sleep(jittered(delay)).await;
        delay = (delay * 2).min(MAX_BACKOFF);
    }
}

/// Reads messages until the connection ends or stops answering PING.
async fn pump(
    ps: redis::aio::PubSub,
    ping_timeout: Duration,
    store: &Store,
    near: &NearCache,
    tx: &mpsc::Sender<(String, String)>,
    link: &Link,
) {
    let (mut sink, stream) = ps.split();
    let mut stream = Box::pin(stream);
    let mut tick = tokio::time::interval(PING_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            msg = poll_fn(|cx| stream.as_mut().poll_next(cx)) => {
                let Some(msg) = msg else { return };
                // redis-rs has read the whole message by now (it has no bound of its own):
                // what is over maxMessageBytes is dropped here, before any copy of it
                receive(near, tx, link, &store.messages, store.prefix(), msg.get_channel_name(), msg.get_payload_bytes());
            }
            _ = tick.tick() => {
                let ping = tokio::time::timeout(ping_timeout, sink.ping::<redis::Value>()).await;
                if !matches!(ping, Ok(Ok(_))) {
                    return;
                }
            }
        }
    }
}

#[napi]
impl NativeCache {
    /// Starts the subscriber (idempotent) → true once subscribed, false if not within
    /// connectTimeoutMs (it keeps trying in the background). `onMessage(channel, payload)`.
    #[napi]
    pub fn pubsub_subscribe(
        &self,
        id: u32,
        on_message: Function<'_, FnArgs<(String, String)>, UnknownReturnValue>,
    ) -> napi::Result<()> {
        let ps = &self.core.pubsub;
        let mut wait = Duration::from_secs(2);
        if let Some(store) = self.core.store.clone() {
            let mut running = ps.running.lock();
            if running.is_none() {
                let tsfn: MessageFn = on_message
                    .build_threadsafe_function::<(String, String)>()
                    .callee_handled::<false>()
                    .weak::<true>()
                    .build_callback(|ctx| Ok(FnArgs::from(ctx.value)))?;
                let (tx, rx) = mpsc::channel(DELIVERY_QUEUE);
                let mut tasks = vec![spawn(deliver(tsfn, rx, ps.link.clone()))];
                let channels: Vec<String> = CHANNELS.iter().map(|c| store.key(c)).collect();
                let memory = match &store.backend {
                    Backend::Memory(m) => {
                        let (near, link) = (ps.near.clone(), ps.link.clone());
                        let prefix = store.prefix().to_string();
                        let rules = store.messages.clone();
                        let on: MemDeliver = Arc::new(move |ch: &str, payload: &str| {
                            receive(&near, &tx, &link, &rules, &prefix, ch, payload.as_bytes())
                        });
                        let sid = m.subscribe(channels, on);
                        ps.near.set_trusted(true);
                        ps.link.subscriptions.fetch_add(1, Ordering::AcqRel);
                        ps.link.connected.send_replace(true);
                        Some((m.clone(), sid))
                    }
                    Backend::Redis(_) => {
                        tasks.push(spawn(supervise(
                            store.clone(),
                            channels,
                            ps.near.clone(),
                            tx,
                            ps.link.clone(),
                        )));
                        None
                    }
                };
                *running = Some(Running { tasks, memory });
            }
            if let Backend::Redis(r) = &store.backend {
                wait = r.connect_timeout();
            }
        }
        let mut rx = ps.link.connected.subscribe();
        self.run(id, move |_| async move {
            if *rx.borrow() {
                return Ok(Reply::Bool(true));
            }
            let up = tokio::time::timeout(wait, rx.wait_for(|c| *c)).await;
            Ok(Reply::Bool(matches!(up, Ok(Ok(_)))))
        });
        Ok(())
    }

    /// Stops the subscriber of this instance (the shared connection stays open).
    #[napi]
    pub fn pubsub_close(&self) {
        self.core.pubsub.close();
    }

    /// True while the subscriber holds a confirmed subscription.
    #[napi]
    pub fn pubsub_connected(&self) -> bool {
        self.core.pubsub.is_connected()
    }

    /// `{ subscribed, connected, resubscribes, dropped, rejected: { oversize, unsigned,
    /// badSignature }, signed, maxMessageBytes }` as JSON.
    #[napi]
    pub fn pubsub_status(&self) -> String {
        let ps = &self.core.pubsub;
        let rules = self.core.store.as_ref().map(|s| &s.messages);
        let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
        serde_json::json!({
            "subscribed": ps.is_subscribed(),
            "connected": ps.is_connected(),
            "resubscribes": n(&ps.link.resubscribes),
            "dropped": n(&ps.link.dropped),
            "rejected": {
                "oversize": n(&ps.link.oversize),
                "unsigned": n(&ps.link.unsigned),
                "badSignature": n(&ps.link.bad_signature),
            },
            "signed": rules.is_some_and(|r| r.signs()),
            "maxMessageBytes": rules.map(|r| r.max_bytes()),
        })
        .to_string()
    }

    /// Refuses (RangeError, before anything is written) a message over `maxMessageBytes`
    /// once signed.
    fn check_message(&self, payload: &str) -> CacheResult<()> {
        match &self.core.store {
            Some(s) => s.messages.check(payload),
            None => self.check_value("message", payload),
        }
    }

    /// PUBLISH `payload` (JSON made by the façade) on `channel` → receivers. The local near
    /// cache applies it at once.
    #[napi]
    pub fn pubsub_publish(
        &self,
        env: Env,
        id: u32,
        channel: String,
        payload: String,
    ) -> napi::Result<()> {
        let ch = js(&env, channel_of(&channel))?;
        js(&env, self.check_message(&payload))?;
        let direct = match self.direct_store() {
            Some(s) => {
                let full = s.key(ch);
                let wire = js(&env, s.messages.seal(&full, &payload))?;
                Some((full, wire))
            }
            None => None,
        };
        self.core.pubsub.near.apply_message(ch, &payload);
        if let Some((full, wire)) = direct {
            self.cmd_direct(id, &[b"PUBLISH", full.as_bytes(), wire.as_bytes()], |r| {
                decode::<u32>(r?).map(|n| Reply::Num(n as f64))
            });
            return Ok(());
        }
        self.run(id, move |s| async move {
            s.publish(ch, &payload).await.map(|n| Reply::Num(n as f64))
        });
        Ok(())
    }

    /// UNLINKs exact keys, then broadcasts `payload` on cache:invalidate → keys removed.
    #[napi]
    pub fn pubsub_invalidate_keys(
        &self,
        env: Env,
        id: u32,
        keys: Vec<String>,
        payload: String,
    ) -> napi::Result<()> {
        if keys.len() > MAX_KEYS {
            return Err(CacheError::TooLarge(format!(
                "invalidateKeys takes at most {MAX_KEYS} keys (got {})",
                keys.len()
            ))
            .throw(&env));
        }
        for k in &keys {
            js(&env, check_key(k))?;
        }
        js(&env, self.check_message(&payload))?;
        let near = self.core.pubsub.near.clone();
        near.apply_message(CH_CACHE, &payload);
        self.run(id, move |s| async move {
            if keys.is_empty() {
                return Ok(Reply::Num(0.0));
            }
            let n = s.unlink_keys(&keys).await?;
            near.apply_message(CH_CACHE, &payload);
            s.publish(CH_CACHE, &payload).await?;
            Ok(Reply::Num(n as f64))
        });
        Ok(())
    }

    /// SCAN + UNLINK of `pattern` (prefix applied), then broadcast → keys removed.
    #[napi]
    pub fn pubsub_invalidate_pattern(
        &self,
        env: Env,
        id: u32,
        pattern: String,
        payload: String,
    ) -> napi::Result<()> {
        js(&env, check_pattern(&pattern))?;
        js(&env, self.check_message(&payload))?;
        let near = self.core.pubsub.near.clone();
        near.invalidate_pattern(&pattern);
        self.run(id, move |s| async move {
            let n = s.delete_pattern(&pattern).await?;
            near.invalidate_pattern(&pattern);
            s.publish(CH_CACHE, &payload).await?;
            Ok(Reply::Num(n as f64))
        });
        Ok(())
    }

    /// Removes one session, then broadcasts on sessions:invalidate → true if it existed.
    #[napi]
    pub fn pubsub_invalidate_session(
        &self,
        env: Env,
        id: u32,
        token_hash: String,
        payload: String,
    ) -> napi::Result<()> {
        js(&env, keys::check_id("sessionId", &token_hash))?;
        js(&env, self.check_message(&payload))?;
        self.run(id, move |s| async move {
            let removed = s.session_remove(&token_hash).await?;
            s.publish(CH_SESSIONS, &payload).await?;
            Ok(Reply::Bool(removed))
        });
        Ok(())
    }

    /// Removes all sessions of a user, then broadcasts → how many existed.
    #[napi]
    pub fn pubsub_invalidate_user_sessions(
        &self,
        env: Env,
        id: u32,
        user_id: JsId,
        payload: String,
    ) -> napi::Result<()> {
        let user_id = js(&env, keys::id_string("userId", user_id))?;
        js(&env, self.check_message(&payload))?;
        self.run(id, move |s| async move {
            let n = s.session_remove_user(&user_id).await?;
            s.publish(CH_SESSIONS, &payload).await?;
            Ok(Reply::Num(n as f64))
        });
        Ok(())
    }
}

/// Diagnostics of the embedded store (tests, dev tools): SET `key` (as stored, prefix
/// included) to `value` with a TTL in `memory://{name}`.
#[napi]
pub fn memory_store_set(name: String, key: String, value: String, ttl_ms: f64) {
    let ttl = Duration::from_millis(ttl_ms.clamp(1.0, 86_400_000.0) as u64);
    MemoryStore::named(&name).with(|d| d.set_str(&key, value, Some(ttl)));
}

/// Diagnostics of the embedded store (tests): PUBLISH `payload` as is (unsigned, unchecked:
/// what any client of a shared Redis could send) on `channel` (as published, prefix
/// included) of `memory://{name}` → receivers.
#[napi]
pub fn memory_store_publish(name: String, channel: String, payload: String) -> u32 {
    MemoryStore::named(&name).publish(&channel, &payload)
}

#[cfg(test)]
mod tests {
    use super::*;

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
