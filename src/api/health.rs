//! The `#[napi]` surface of an instance's health: ping, the known link state, the circuit
//! breaker's state, shutdown.

use std::sync::atomic::Ordering;

use napi_derive::napi;

use crate::bridge::{NativeCache, Reply};
use crate::store::circuit::CircuitState;

/// A data node and whether its connection is up.
#[napi(object)]
pub struct NodeState {
    /// `host:port`.
    pub address: String,
    /// "primary".
    pub role: String,
    pub up: bool,
}

#[napi]
impl NativeCache {
    /// PING → "PONG". It always goes to Redis, even while the circuit is open, and its
    /// outcome feeds the breaker: a health check sees (and brings about) the recovery.
    #[napi]
    pub fn ping(&self, id: u32) {
        self.run(id, |s| async move { s.ping().await.map(Reply::Str) });
    }

    /// PING on every data node of a cluster (each primary serving slots) or behind sentinels
    /// (the primary) → JSON `[{ address, role, pong, ms, error? }]` (`[]` on one server and
    /// memory://). It does not feed the breaker; a node that fails has `pong: null` and the
    /// error's text.
    #[napi]
    pub fn ping_nodes(&self, id: u32) {
        self.run(id, |s| async move {
            let nodes = s.ping_nodes().await?;
            let list: Vec<serde_json::Value> = nodes
                .into_iter()
                .map(|n| {
                    let mut v = serde_json::json!({
                        "address": n.address,
                        "role": n.role,
                        "ms": n.ms,
                    });
                    match n.result {
                        Ok(pong) => v["pong"] = pong.into(),
                        Err(e) => {
                            v["pong"] = serde_json::Value::Null;
                            v["error"] = e.to_string().into();
                        }
                    }
                    v
                })
                .collect();
            Ok(Reply::Str(serde_json::Value::Array(list).to_string()))
        });
    }

    /// The data nodes of a cluster or behind sentinels known now, without I/O: whether each
    /// one's connection is up (not known to be down). Empty on one server and memory://.
    #[napi]
    pub fn node_states(&self) -> Vec<NodeState> {
        self.core
            .store
            .as_ref()
            .map(|s| s.node_states())
            .unwrap_or_default()
            .into_iter()
            .map(|(address, role, up)| NodeState {
                address,
                role: role.to_string(),
                up,
            })
            .collect()
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
