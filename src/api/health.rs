//! The `#[napi]` surface of an instance's health: ping, the known link state, the circuit
//! breaker's state, shutdown.

use std::sync::atomic::Ordering;

use napi_derive::napi;

use crate::bridge::{NativeCache, Reply};
use crate::store::circuit::CircuitState;

#[napi]
impl NativeCache {
    /// PING → "PONG". It always goes to Redis, even while the circuit is open, and its
    /// outcome feeds the breaker: a health check sees (and brings about) the recovery.
    #[napi]
    pub fn ping(&self, id: u32) {
        self.run(id, |s| async move { s.ping().await.map(Reply::Str) });
    }

    /// False while disabled, shut down, while Redis is known to be down, or while the
    /// circuit is not closed.
    #[napi]
    pub fn is_enabled(&self) -> bool {
        self.core
            .store
            .as_ref()
            .is_some_and(|s| s.is_healthy() && s.circuit_state() == CircuitState::Closed)
    }

    /// The circuit breaker: "closed", "open" or "half-open" ("closed" for memory:// and when
    /// disabled).
    #[napi]
    pub fn circuit_state(&self) -> String {
        self.core
            .store
            .as_ref()
            .map_or(CircuitState::Closed, |s| s.circuit_state())
            .as_str()
            .to_string()
    }

    /// True when a back end is configured (even if it is down right now).
    #[napi]
    pub fn is_configured(&self) -> bool {
        self.core.store.is_some()
    }

    /// The configured key prefix.
    #[napi]
    pub fn key_prefix(&self) -> String {
        self.core
            .store
            .as_ref()
            .map_or(String::new(), |s| s.prefix().to_string())
    }

    /// Closes every connection of this instance; later operations fail with `ECLOSED`.
    #[napi]
    pub fn close(&self) {
        self.core.closed.store(true, Ordering::Release);
        self.core.pubsub.close();
        if let Some(s) = &self.core.store {
            s.close();
        }
    }
}
