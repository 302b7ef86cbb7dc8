//! One data node of a cluster or behind sentinels, as the per-node health reports it.

use crate::error::CacheResult;
use crate::store::circuit::CircuitState;

/// The most data nodes reported by the per-node health (a bound on the labels of the node
/// gauge).
pub const MAX_NODES: usize = 64;

/// A data node known now (no I/O), as the per-node health and metrics report it.
pub struct NodeStatus {
    /// `host:port` (IPv6 in brackets).
    pub address: String,
    pub role: &'static str,
    /// Its connection is not known to be down.
    pub up: bool,
    /// Its own circuit breaker's state.
    pub circuit: CircuitState,
}

/// One data node's answer to PING.
pub struct NodePing {
    /// `host:port` (IPv6 in brackets).
    pub address: String,
    pub role: &'static str,
    pub result: CacheResult<String>,
    /// Milliseconds from sending to the answer (or the failure).
    pub ms: f64,
}

/// Runs `ping` (a PING on one node), timed.
pub async fn timed_ping<F>(address: String, role: &'static str, ping: F) -> NodePing
where
    F: std::future::Future<Output = CacheResult<String>>,
{
    let t0 = std::time::Instant::now();
    let result = ping.await;
    NodePing {
        address,
        role,
        result,
        ms: (t0.elapsed().as_secs_f64() * 100_000.0).round() / 100.0,
    }
}

/// `host:port`, the host in brackets when it is an IPv6 address.
pub fn address(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}
