//! The Redis subscriber connection of an instance, supervised: a task connects, SUBSCRIBEs,
//! pings the link every second, and after any loss reconnects with capped exponential backoff
//! (50 ms … 1 s, with jitter) and subscribes again. What it hears goes to a [`Listener`].

use std::future::poll_fn;
use std::sync::Arc;
use std::time::Duration;

use futures_core::Stream;

use super::{Backend, Store};
use crate::error::CacheError;

const MIN_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(1);
const PING_EVERY: Duration = Duration::from_secs(1);

/// Who hears a subscriber connection.
pub trait Listener: Send + Sync {
    /// A subscription was confirmed (`true`), or the connection that held it is gone (`false`).
    fn linked(&self, up: bool);
    /// One message as received: its channel (key prefix included) and its bytes.
    fn message(&self, channel: &str, wire: &[u8]);
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
pub async fn supervise(store: Arc<Store>, channels: Vec<String>, listener: Arc<dyn Listener>) {
    let mut delay = MIN_BACKOFF;
    loop {
        let Backend::Redis(r) = &store.backend else {
            return;
        };
        match r.subscriber(&channels).await {
            Ok(ps) => {
                delay = MIN_BACKOFF;
                listener.linked(true);
                tokio::select! {
                    _ = pump(ps, r.command_timeout(), &*listener) => {}
                    // Sentinel: the primary moved; resubscribe there
                    _ = r.primary_changed() => {}
                }
                // The link is gone: the listener hears it at once.
                listener.linked(false);
            }
            Err(CacheError::Closed) => return,
            Err(_) => {}
        }
        tokio::time::sleep(jittered(delay)).await;
        delay = (delay * 2).min(MAX_BACKOFF);
    }
}

/// Reads messages until the connection ends or stops answering PING.
async fn pump(ps: redis::aio::PubSub, ping_timeout: Duration, listener: &dyn Listener) {
    let (mut sink, stream) = ps.split();
    let mut stream = Box::pin(stream);
    let mut tick = tokio::time::interval(PING_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            msg = poll_fn(|cx| stream.as_mut().poll_next(cx)) => {
                let Some(msg) = msg else { return };
                // redis-rs has read the whole message by now (no longer than maxReplyBytes:
                // it reads through a BoundedResp): what is over maxMessageBytes is dropped
                // here, before any copy of it
                listener.message(msg.get_channel_name(), msg.get_payload_bytes());
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
