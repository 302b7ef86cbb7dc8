//! The `#[napi]` surface of an instance's health: ping, the known link state, the circuit
//! breakers' states (each node's and the whole cache's), shutdown.

use std::sync::atomic::Ordering;

use napi_derive::napi;

use super::replies;
use crate::bridge::{NativeCache, Reply};
use crate::store::circuit::CircuitState;

/// A data node, whether its connection is up and its own circuit breaker's state.
#[napi(object)]
pub struct NodeState {
    /// `host:port`.
    pub address: String,
    /// "primary".
    pub role: String,
    pub up: bool,
    /// "closed", "open" or "half-open".
    pub circuit: String,
}

#[napi]
impl NativeCache {
    /// PING → "PONG". It always goes to Redis, even while the circuit is open, and its
    /// outcome feeds the breaker of the node that answered (on a cluster, any primary): a
    /// health check sees (and brings about) the recovery.
    #[napi]
    pub fn ping(&self, id: u32) {
        self.run(id, |s| async move { s.ping().await.map(Reply::Str) });
    }

    /// PING on every data node of a cluster (each primary serving slots) or behind sentinels
    /// (the primary) → JSON `[{ address, role, pong, ms, circuit, error? }]` (`[]` on one
    /// server and memory://). Each PING goes to its node even while the node's breaker is
    /// open, and feeds it; `circuit` is that breaker's state after it. A node that fails has
    /// `pong: null` and the error's text.
    #[napi]
    pub fn ping_nodes(&self, id: u32) {
        self.run(id, |s| async move {
            let nodes = s.ping_nodes().await?;
            Ok(replies::ping_nodes(nodes, &s.node_states()))
        });
    }

    /// The data nodes of a cluster or behind sentinels known now, without I/O: whether each
    /// one's connection is up (not known to be down) and its breaker's state. Empty on one
    /// server and memory://.
    #[napi]
    pub fn node_states(&self) -> Vec<NodeState> {
        self.core
            .store
            .as_ref()
            .map(|s| s.node_states())
            .unwrap_or_default()
            .into_iter()
            .map(|n| NodeState {
                address: n.address,
                role: n.role.to_string(),
                up: n.up,
                circuit: n.circuit.as_str().to_string(),
            })
            .collect()
    }

    /// False while disabled, shut down, while Redis is known to be down, or while the
    /// circuit is neither closed nor degraded (a degraded cluster still answers the keys of
    /// its primaries whose breaker is closed; the others fall back on their own, at once).
    #[napi]
    pub fn is_enabled(&self) -> bool {
        self.core.store.as_ref().is_some_and(|s| {
            s.is_healthy()
                && matches!(
                    s.circuit_state(),
                    CircuitState::Closed | CircuitState::Degraded
                )
        })
    }

    /// The whole cache's circuit: "closed", "open" or "half-open" on one server (its
    /// breaker's state); on Cluster and Sentinel the aggregate of the data nodes' breakers:
    /// "closed" when all are closed, "open" only when all are open, "half-open" when none is
    /// closed but some let a probe through, "degraded" when some are closed and others not.
    /// "closed" for memory:// and when disabled.
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
