//! The Redis back end of the store: one server, a Redis Cluster or a primary found through
//! Sentinel (the transport below), each node behind its own circuit breaker: the one server's
//! is here; a cluster's primaries and the primary behind sentinels have theirs beside their
//! pipelines, checked after routing. Every command is bounded by `commandTimeoutMs`, with no
//! offline queue.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redis::{Cmd, FromRedisValue};

use super::script::Script;

use super::circuit::{Circuit, CircuitState};
use super::transport::cluster::ClusterStore;
use super::transport::node::{NodePing, NodeStatus};
use super::transport::pipeline::Pipeline;
use super::transport::server::Server;
use super::transport::topology::Topology;
use crate::config::{ConnOptions, Limits, RedisTarget};
use crate::error::{CacheError, CacheResult};
use crate::tls::Tls;

pub struct RedisStore {
    /// A standalone server (absent on a topology store).
    server: Option<Server>,
    /// Redis Cluster or Sentinel: every command goes there instead.
    topology: Option<Box<Topology>>,
    command_timeout: Duration,
    connect_timeout: Duration,
    closed: AtomicBool,
    /// The one server's breaker: skips it for a cool-down after repeated link failures (see
    /// [`Circuit`]). Unused on a topology store, whose nodes have their own.
    circuit: Circuit,
}

impl RedisStore {
    pub fn new(
        target: &RedisTarget,
        command_timeout: Duration,
        connect_timeout: Duration,
    ) -> CacheResult<RedisStore> {
        Self::new_with_tls(
            target,
            command_timeout,
            connect_timeout,
            None,
            Limits::default(),
            &ConnOptions::default(),
        )
    }

    /// A store on one server (see [`Server::new`] for `tls`, `limits` and `conn`).
    pub fn new_with_tls(
        target: &RedisTarget,
        command_timeout: Duration,
        connect_timeout: Duration,
        tls: Option<std::sync::Arc<Tls>>,
        limits: Limits,
        conn: &ConnOptions,
    ) -> CacheResult<RedisStore> {
        let server = Server::new(target, command_timeout, connect_timeout, tls, limits, conn)?;
        Ok(RedisStore {
            server: Some(server),
            topology: None,
            command_timeout,
            connect_timeout,
            closed: AtomicBool::new(false),
            circuit: Circuit::new(Circuit::DEFAULT_THRESHOLD, Circuit::DEFAULT_COOLDOWN),
        })
    }

    /// A store on a cluster or behind sentinels; `first` is one of its node URLs (only used
    /// to validate it).
    pub fn with_topology(
        topology: Topology,
        first: &RedisTarget,
        command_timeout: Duration,
        connect_timeout: Duration,
    ) -> CacheResult<RedisStore> {
        let mut s = RedisStore::new(first, command_timeout, connect_timeout)?;
        if let Some(server) = s.server.take() {
            server.close();
        }
        s.topology = Some(Box::new(topology));
        Ok(s)
    }

    /// Resolves when a pub/sub connection made before must move to another server (the
    /// primary behind the sentinels changed); never on other back ends.
    pub async fn primary_changed(&self) {
        match self.topology.as_deref() {
            Some(Topology::Sentinel(s)) => s.primary_changed().await,
            _ => std::future::pending().await,
        }
    }

    /// The cluster back end, when this store is on Redis Cluster.
    pub fn cluster(&self) -> Option<&ClusterStore> {
        match self.topology.as_deref() {
            Some(Topology::Cluster(c)) => Some(c.as_ref()),
            _ => None,
        }
    }

    /// Replaces the one server's default circuit breaker.
    pub fn with_circuit(mut self, circuit: Circuit) -> RedisStore {
        self.circuit = circuit;
        self
    }

    /// The one server's breaker (its pipeline's users check and feed it). Not used on a
    /// topology store: see [`RedisStore::server_circuit`].
    pub fn circuit(&self) -> &Circuit {
        &self.circuit
    }

    /// The one server's breaker; none on a topology store, whose nodes' breakers are checked
    /// and fed by the routing.
    pub fn server_circuit(&self) -> Option<&Circuit> {
        match self.topology {
            None => Some(&self.circuit),
            Some(_) => None,
        }
    }

    /// The whole store's breaker state: the one server's, or the aggregate of the data
    /// nodes' (see [`super::circuit::aggregate`]).
    pub fn circuit_state(&self) -> CircuitState {
        match self.topology.as_deref() {
            None => self.circuit.state(),
            Some(t) => t.circuit_state(),
        }
    }

    /// PING, past the breaker (health checks must see the recovery); its outcome feeds the
    /// breaker of the node that answered (or failed to).
    pub async fn ping(&self) -> CacheResult<String> {
        if let Some(t) = self.topology.as_deref() {
            if self.closed.load(Ordering::Relaxed) {
                return Err(CacheError::Closed);
            }
            return t.ping().await;
        }
        let r = self.server_query(&::redis::cmd("PING")).await;
        self.circuit.record(&r);
        r
    }

    /// The data nodes of a cluster or behind sentinels, whether each is up and its breaker's
    /// state (empty on one server: `is_healthy` and `circuit_state` tell).
    pub fn node_states(&self) -> Vec<NodeStatus> {
        self.topology
            .as_deref()
            .map(Topology::node_states)
            .unwrap_or_default()
    }

    /// PING on every data node of a cluster or behind sentinels (none on one server), each
    /// past and feeding its own node's breaker.
    pub async fn ping_nodes(&self) -> CacheResult<Vec<NodePing>> {
        if self.closed.load(Ordering::Relaxed) {
            return Err(CacheError::Closed);
        }
        match self.topology.as_deref() {
            Some(t) => t.ping_nodes().await,
            None => Ok(Vec::new()),
        }
    }

    pub fn is_healthy(&self) -> bool {
        if self.closed.load(Ordering::Relaxed) {
            return false;
        }
        match (&self.topology, &self.server) {
            (Some(t), _) => t.is_healthy(),
            (None, Some(s)) => s.is_healthy(),
            (None, None) => false,
        }
    }

    /// The fast transport of a standalone server (any address: TCP, TLS, Unix socket).
    pub fn pipeline(&self) -> Option<&Pipeline> {
        self.server.as_ref().map(Server::pipeline)
    }

    pub fn command_timeout(&self) -> Duration {
        self.command_timeout
    }

    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// Closes the connection; every later command fails with `ECLOSED`.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        if let Some(s) = &self.server {
            s.close();
        }
        if let Some(t) = &self.topology {
            t.close();
        }
    }

    /// The standalone server, or why there is none to use.
    fn server(&self) -> CacheResult<&Server> {
        match &self.server {
            Some(s) if !self.closed.load(Ordering::Relaxed) => Ok(s),
            _ => Err(CacheError::Closed),
        }
    }

    /// A new dedicated pub/sub connection (RESP2), subscribed to `channels` (already
    /// prefixed), within `connectTimeoutMs`. It does not touch the health of the shared
    /// connection: the subscriber supervises its own link.
    pub async fn subscriber(&self, channels: &[String]) -> CacheResult<redis::aio::PubSub> {
        if let Some(t) = &self.topology {
            if self.closed.load(Ordering::Relaxed) {
                return Err(CacheError::Closed);
            }
            return t.subscriber(channels).await;
        }
        self.server()?.subscriber(channels).await
    }

    /// Runs one command (refused at once while the breaker of its node is open).
    pub async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> CacheResult<T> {
        if let Some(t) = &self.topology {
            return t.query(cmd).await;
        }
        self.circuit.check()?;
        let r = self.server_query(cmd).await;
        self.circuit.record(&r);
        r
    }

    /// One command to the one server; its breaker is the caller's.
    async fn server_query<T: FromRedisValue>(&self, cmd: &Cmd) -> CacheResult<T> {
        self.server()?.query(cmd).await
    }

    /// Convenience for scripts: keys and string arguments (refused at once while the breaker
    /// of its node is open).
    pub async fn script<T: FromRedisValue>(
        &self,
        script: &'static Script,
        keys: &[&str],
        args: &[&str],
    ) -> CacheResult<T> {
        if let Some(t) = &self.topology {
            return t.script(script, keys, args).await;
        }
        self.circuit.check()?;
        let r = match self.server() {
            Ok(s) => s.script(script, keys, args).await,
            Err(e) => Err(e),
        };
        self.circuit.record(&r);
        r
    }
}
