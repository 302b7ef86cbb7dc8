//! THE seam: every service reaches its data through [`Store`], which has two back ends
//! (Redis and the in-process memory store) with the same semantics.
//!
//! Each service adds its operations in its own file (`session.rs`, …) as `impl Store` blocks:
//! a Lua script for Redis, one critical section for memory. Keys are given unprefixed; the
//! store applies `keyPrefix`.

pub mod cache;
pub mod circuit;
pub mod cluster_ops;
pub mod codec;
pub mod lock;
pub mod memory;
pub mod permissions;
pub mod pubsub;
pub mod rate_limit;
pub mod redis;
pub mod revision;
pub mod script;
pub mod session;
pub mod subscriber;
pub mod transport;

use std::time::Duration;

use crate::config::{Backend as BackendConfig, Config};
use crate::error::{CacheError, CacheResult};
use memory::MemoryStore;
use redis::RedisStore;

/// Refuses a value over `max` bytes.
pub fn check_value(max: usize, what: &str, value: &str) -> CacheResult<()> {
    if value.len() > max {
        return Err(CacheError::TooLarge(format!(
            "{what} is {} bytes; maxValueBytes is {max}",
            value.len()
        )));
    }
    Ok(())
}

/// Where the direct paths queue commands (see [`Store::direct`]).
pub enum Direct<'a> {
    One(&'a transport::pipeline::Pipeline),
    Cluster(&'a transport::cluster::ClusterStore),
}

impl Direct<'_> {
    /// Queues `args` (keys prefixed), sent by the next [`flush`](Self::flush); on a cluster
    /// it goes to the primary of `route_key`'s slot.
    pub fn submit_deferred(
        &self,
        route_key: &[u8],
        args: &[&[u8]],
        done: transport::pipeline::Done,
    ) {
        match self {
            Direct::One(p) => p.submit_deferred(|b| codec::encode(b, args), done),
            Direct::Cluster(c) => c.submit_deferred(route_key, args, done),
        }
    }

    /// Queues a script call (on a cluster, to the primary of its first key's slot), sent by
    /// the next [`flush`](Self::flush).
    pub fn submit_script_deferred(
        &self,
        call: script::ScriptCall,
        done: transport::pipeline::Done,
    ) {
        match self {
            Direct::One(p) => p.submit_script_deferred(call, done),
            Direct::Cluster(c) => c.submit_script_deferred(call, done),
        }
    }

    pub fn flush(&self) {
        match self {
            Direct::One(p) => p.flush(),
            Direct::Cluster(c) => c.flush(),
        }
    }

    /// (writes, commands, refused): see [`transport::pipeline::Pipeline::transport_counts`].
    pub fn transport_counts(&self) -> (u64, u64, u64) {
        match self {
            Direct::One(p) => {
                let (w, c) = p.transport_counts();
                (w, c, p.refused_count())
            }
            Direct::Cluster(c) => c.transport_counts(),
        }
    }
}

pub enum Backend {
    Redis(Box<RedisStore>),
    Memory(MemoryStore),
}

pub struct Store {
    pub backend: Backend,
    prefix: String,
    max_value_bytes: usize,
    /// `maxMessageBytes` and `pubsubSecret`: what every PUBLISH and every received message obeys.
    pub messages: std::sync::Arc<pubsub::MessageRules>,
}

impl Store {
    /// `None` when the configuration has no back end (the cache is disabled).
    pub fn from_config(cfg: &Config) -> CacheResult<Option<Store>> {
        let breaker = circuit::CircuitConfig {
            threshold: cfg.circuit_threshold,
            cooldown: cfg.circuit_cooldown,
        };
        let backend = match &cfg.backend {
            BackendConfig::Disabled => return Ok(None),
            BackendConfig::Memory(name) => Backend::Memory(MemoryStore::named(name)),
            BackendConfig::Redis(target) => Backend::Redis(Box::new(
                RedisStore::new_with_tls(
                    target,
                    cfg.command_timeout,
                    cfg.connect_timeout,
                    cfg.tls.clone(),
                    cfg.transport_limits(),
                    &cfg.conn,
                )?
                .with_circuit(breaker.circuit()),
            )),
            BackendConfig::Cluster(nodes) => {
                let c = transport::cluster::ClusterStore::new(
                    nodes,
                    cfg.command_timeout,
                    cfg.connect_timeout,
                    cfg.transport_limits(),
                    &cfg.conn,
                    breaker,
                )?;
                Backend::Redis(Box::new(RedisStore::with_topology(
                    transport::topology::Topology::Cluster(Box::new(c)),
                    &nodes[0],
                    cfg.command_timeout,
                    cfg.connect_timeout,
                )?))
            }
            BackendConfig::Sentinel { master_name, nodes } => {
                let s = transport::sentinel::SentinelStore::new(
                    master_name,
                    nodes,
                    cfg.command_timeout,
                    cfg.connect_timeout,
                    cfg.transport_limits(),
                    &cfg.conn,
                    &cfg.sentinel_auth,
                    breaker,
                )?;
                Backend::Redis(Box::new(RedisStore::with_topology(
                    transport::topology::Topology::Sentinel(s),
                    &nodes[0],
                    cfg.command_timeout,
                    cfg.connect_timeout,
                )?))
            }
        };
        Ok(Some(Store {
            backend,
            prefix: cfg.key_prefix.clone(),
            max_value_bytes: cfg.max_value_bytes,
            messages: std::sync::Arc::new(pubsub::MessageRules::new(
                cfg.max_message_bytes,
                cfg.pubsub_secrets.clone(),
            )),
        }))
    }

    /// The pipelined Redis connection, when the back end has one (plain TCP Redis).
    pub fn pipeline(&self) -> Option<&transport::pipeline::Pipeline> {
        match &self.backend {
            Backend::Redis(r) => r.pipeline(),
            Backend::Memory(_) => None,
        }
    }

    /// The pipelined transport the direct paths queue on: one server's pipeline, or the
    /// cluster's pipelines (one per primary).
    pub fn direct(&self) -> Option<Direct<'_>> {
        if let Some(p) = self.pipeline() {
            return Some(Direct::One(p));
        }
        self.cluster().map(Direct::Cluster)
    }

    pub fn is_memory(&self) -> bool {
        matches!(self.backend, Backend::Memory(_))
    }

    /// False while Redis is known to be down (the memory store is always up).
    pub fn is_healthy(&self) -> bool {
        match &self.backend {
            Backend::Redis(r) => r.is_healthy(),
            Backend::Memory(_) => true,
        }
    }

    /// The breaker of the one standalone server, which the direct paths on its pipeline
    /// check and feed themselves. None for memory:// and for Cluster and Sentinel, whose
    /// per-node breakers are checked after routing and fed by the routing itself.
    pub fn server_circuit(&self) -> Option<&circuit::Circuit> {
        match &self.backend {
            Backend::Redis(r) => r.server_circuit(),
            Backend::Memory(_) => None,
        }
    }

    /// The whole cache's breaker state: the one server's, or the aggregate of the data nodes'
    /// (see [`circuit::aggregate`]); "closed" for memory://.
    pub fn circuit_state(&self) -> circuit::CircuitState {
        match &self.backend {
            Backend::Redis(r) => r.circuit_state(),
            Backend::Memory(_) => circuit::CircuitState::Closed,
        }
    }

    pub fn close(&self) {
        if let Backend::Redis(r) = &self.backend {
            r.close();
        }
    }

    /// The key as stored: `keyPrefix` + `key`.
    pub fn key(&self, key: &str) -> String {
        let mut k = String::with_capacity(self.prefix.len() + key.len());
        k.push_str(&self.prefix);
        k.push_str(key);
        k
    }

    /// A key behind the prefix, written by `write` (which appends at most `len` bytes) into
    /// one allocation.
    pub fn key_with(&self, len: usize, write: impl FnOnce(&mut String)) -> String {
        let mut k = String::with_capacity(self.prefix.len() + len);
        k.push_str(&self.prefix);
        write(&mut k);
        k
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Refuses a value over `maxValueBytes` before anything is written.
    pub fn check_value(&self, what: &str, value: &str) -> CacheResult<()> {
        check_value(self.max_value_bytes, what, value)
    }

    pub async fn ping(&self) -> CacheResult<String> {
        match &self.backend {
            Backend::Redis(r) => r.ping().await,
            Backend::Memory(_) => Ok("PONG".to_string()),
        }
    }

    /// The data nodes of a cluster or behind sentinels, whether each is up and its breaker's
    /// state (none on one server or memory://).
    pub fn node_states(&self) -> Vec<transport::node::NodeStatus> {
        match &self.backend {
            Backend::Redis(r) => r.node_states(),
            Backend::Memory(_) => Vec::new(),
        }
    }

    /// PING on every data node of a cluster or behind sentinels (none on one server or
    /// memory://).
    pub async fn ping_nodes(&self) -> CacheResult<Vec<transport::node::NodePing>> {
        match &self.backend {
            Backend::Redis(r) => r.ping_nodes().await,
            Backend::Memory(_) => Ok(Vec::new()),
        }
    }

    /// GET of a string value (unprefixed key).
    pub async fn get(&self, key: &str) -> CacheResult<Option<String>> {
        let k = self.key(key);
        match &self.backend {
            Backend::Redis(r) => r.query(codec::cmd("GET").arg(&k)).await,
            Backend::Memory(m) => m.with(|d| d.get_str(&k)),
        }
    }

    /// SET with a TTL (unprefixed key). Every value we write carries a TTL.
    pub async fn set_px(&self, key: &str, value: &str, ttl: Duration) -> CacheResult<()> {
        self.check_value("value", value)?;
        let k = self.key(key);
        match &self.backend {
            Backend::Redis(r) => {
                r.query::<()>(
                    codec::cmd("SET")
                        .arg(&k)
                        .arg(value)
                        .arg("PX")
                        .arg(ttl.as_millis() as u64),
                )
                .await
            }
            Backend::Memory(m) => {
                m.with(|d| d.set_str(&k, value.to_string(), Some(ttl)));
                Ok(())
            }
        }
    }

    /// DEL of one key; true if it existed.
    pub async fn del(&self, key: &str) -> CacheResult<bool> {
        let k = self.key(key);
        match &self.backend {
            Backend::Redis(r) => r
                .query::<i64>(codec::cmd("DEL").arg(&k))
                .await
                .map(|n| n > 0),
            Backend::Memory(m) => Ok(m.with(|d| d.del(&k))),
        }
    }
}
