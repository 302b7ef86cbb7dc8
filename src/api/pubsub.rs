//! The `#[napi]` surface of pub/sub: subscribe, status, publish and the invalidations.

use std::time::Duration;

use napi::bindgen_prelude::{FnArgs, Function};
use napi::threadsafe_function::UnknownReturnValue;
use napi::Env;
use napi_derive::napi;

use crate::bridge::{NativeCache, Reply};
use crate::error::{js, CacheError, CacheResult};
use crate::names::channels::{channel_index, channel_of, check_key, check_pattern};
use crate::names::keys::{self, JsId};
use crate::rules::{CH_CACHE, CH_SESSIONS};
use crate::store::codec::decode;
use crate::store::Backend;

/// Most keys one `invalidateKeys` call accepts.
pub const MAX_KEYS: usize = 10_000;

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
            ps.start(&store, || {
                on_message
                    .build_threadsafe_function::<(String, String)>()
                    .callee_handled::<false>()
                    .weak::<true>()
                    .build_callback(|ctx| Ok(FnArgs::from(ctx.value)))
            })?;
            if let Backend::Redis(r) = &store.backend {
                wait = r.connect_timeout();
            }
        }
        let mut rx = ps.watch_connected();
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
    /// badSignature }, signed, maxMessageBytes, sender, numbered, unnumbered, gaps,
    /// outOfOrder, senderRestarts, lateJoins, forgottenSenders, nearDrops, senders }` (an
    /// object: it is read by status pages, not on a hot path, so its shape stays open).
    #[napi]
    pub fn pubsub_status(&self) -> serde_json::Value {
        let rules = self.core.store.as_ref().map(|s| &*s.messages);
        self.core.pubsub.status(rules)
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
        let idx = js(&env, channel_index(ch))?;
        if let Some(s) = self.direct_store() {
            let full = s.key(ch);
            self.core.pubsub.near.apply_message(ch, &payload);
            // numbered and queued on the pipeline under the sequence lock (see Store::publish)
            js(
                &env,
                s.messages.send_next(idx, &full, &payload, |wire| {
                    self.cmd_direct(id, &[b"PUBLISH", full.as_bytes(), wire.as_bytes()], |r| {
                        decode::<u32>(r?).map(|n| Reply::Num(n as f64))
                    })
                }),
            )?;
            return Ok(());
        }
        self.core.pubsub.near.apply_message(ch, &payload);
        self.run(id, move |s| async move {
            s.publish(ch, &payload).await.map(|n| Reply::Num(n as f64))
        });
        Ok(())
    }

    /// Revokes and deletes exact keys (their revisions bumped in the same step, so a fill whose
    /// load began before is refused on every node), then broadcasts `payload` on
    /// cache:invalidate → keys removed.
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
            let n = s.cache_del(&keys).await?;
            near.apply_message(CH_CACHE, &payload);
            s.publish(CH_CACHE, &payload).await?;
            Ok(Reply::Num(n as f64))
        });
        Ok(())
    }

    /// Revokes and deletes every key matching `pattern` (prefix applied), and the keys whose
    /// loads are in flight (src/store/cache.rs), then broadcasts → keys removed.
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
            let n = s.cache_revoke_pattern(&pattern).await?;
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
