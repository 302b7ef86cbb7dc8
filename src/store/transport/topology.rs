//! Redis topologies other than one standalone server: [`Topology::Cluster`] and
//! [`Topology::Sentinel`]. `RedisStore` delegates to them, so every service's store ops (which
//! only call `query`/`script`) run unchanged.

use redis::{Cmd, FromRedisValue};

use crate::store::script::Script;

use super::cluster::ClusterStore;
use super::node::{NodePing, NodeStatus, MAX_NODES};
use super::sentinel::SentinelStore;
use crate::error::CacheResult;
use crate::store::circuit::{self, CircuitState};

pub enum Topology {
    Cluster(Box<ClusterStore>),
    Sentinel(SentinelStore),
}

impl Topology {
    pub fn is_healthy(&self) -> bool {
        match self {
            Topology::Cluster(c) => c.is_healthy(),
            Topology::Sentinel(s) => s.is_healthy(),
        }
    }

    /// The data nodes known now, whether their connection is up (not known to be down) and
    /// their breaker's state:
    /// every primary serving slots on a cluster, the current primary behind sentinels (none
    /// before it was first resolved). At most [`MAX_NODES`]; no I/O.
    pub fn node_states(&self) -> Vec<NodeStatus> {
        let mut v = match self {
            Topology::Cluster(c) => c.node_states(),
            Topology::Sentinel(s) => s.node_states(),
        };
        v.truncate(MAX_NODES);
        v
    }

    /// PING on every data node of [`Topology::node_states`] (the cluster's slot map read
    /// again first, the primary behind sentinels resolved if none is known), concurrently;
    /// each bounded by commandTimeoutMs.
    pub async fn ping_nodes(&self) -> CacheResult<Vec<NodePing>> {
        match self {
            Topology::Cluster(c) => c.ping_primaries().await,
            Topology::Sentinel(s) => s.ping_primary().await.map(|p| vec![p]),
        }
    }

    /// The whole topology's breaker state from its data nodes' (see [`circuit::aggregate`]).
    pub fn circuit_state(&self) -> CircuitState {
        circuit::aggregate(match self {
            Topology::Cluster(c) => c.circuit_states(),
            Topology::Sentinel(s) => s.circuit_states(),
        })
    }

    /// PING past the breakers (a primary of the cluster, the primary behind sentinels); its
    /// outcome feeds that node's breaker.
    pub async fn ping(&self) -> CacheResult<String> {
        match self {
            Topology::Cluster(c) => c.ping().await,
            Topology::Sentinel(s) => s.ping().await,
        }
    }

    pub fn close(&self) {
        match self {
            Topology::Cluster(c) => c.close(),
            Topology::Sentinel(s) => s.close(),
        }
    }

    /// One command, admitted by and recorded on the breaker of the node it is routed to.
    pub async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> CacheResult<T> {
        match self {
            Topology::Cluster(c) => c.query(cmd).await,
            Topology::Sentinel(s) => s.query(cmd).await,
        }
    }

    pub async fn script<T: FromRedisValue>(
        &self,
        script: &'static Script,
        keys: &[&str],
        args: &[&str],
    ) -> CacheResult<T> {
        match self {
            Topology::Cluster(c) => c.script(script, keys, args).await,
            Topology::Sentinel(s) => s.script(script, keys, args).await,
        }
    }

    pub async fn subscriber(&self, channels: &[String]) -> CacheResult<redis::aio::PubSub> {
        match self {
            Topology::Cluster(c) => c.subscriber(channels).await,
            Topology::Sentinel(s) => s.subscriber(channels).await,
        }
    }
}
