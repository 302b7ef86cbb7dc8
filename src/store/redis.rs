//! The Redis back end: every command bounded by `commandTimeoutMs`, no offline queue.
//!
//! Every address (`redis://`, `rediss://`, `unix://` / `redis+unix://`) goes through our own
//! [`Pipeline`]: one connection on which concurrent commands are pipelined with no
//! per-command task, channel or timer; a script unknown to Redis (NOSCRIPT) is loaded on
//! it too. While the connection is down, commands fail fast (or at the latest at their
//! timeout) instead of queueing: nothing is replayed when Redis returns.
//!
//! redis-rs still runs the pub/sub subscriber (`redis::aio::PubSub`, on a stream this
//! module opens with the pipeline's own TCP/TLS/Unix connect), and parses the URL and
//! builds commands (`Cmd`, `Script`, `Value`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::{Cmd, ConnectionAddr, FromRedisValue, RedisConnectionInfo, RedisError, Script, Value};

use super::codec::{decode, encode_arg, encode_header};
use super::pipeline::{open_stream, Endpoint, Pipeline, Transport};
use super::topology::Topology;

use super::circuit::Circuit;
use crate::config::{percent_decode, Limits, RedisTarget};
use crate::error::{redact, CacheError, CacheResult};
use crate::tls::{Tls, TlsSettings};

pub struct RedisStore {
    /// Where the pipeline and the subscribers connect.
    endpoint: Endpoint,
    /// The handshake of a subscriber connection (AUTH, SELECT), made by redis-rs.
    settings: RedisConnectionInfo,
    secrets: Arc<Vec<String>>,
    command_timeout: Duration,
    connect_timeout: Duration,
    closed: AtomicBool,
    /// The connection of a standalone server (absent on a topology store).
    pipeline: Option<Pipeline>,
    /// Redis Cluster or Sentinel: every command goes there instead.
    topology: Option<Box<Topology>>,
    /// Skips Redis for a cool-down after repeated link failures (see [`Circuit`]).
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
        )
    }

    /// As [`RedisStore::new`]; `tls` (the `tls` options) applies to a `rediss://` server,
    /// which without it trusts the web PKI roots. A TLS URL never falls back to plaintext.
    /// `limits` bound the pipelined transport's buffers (`maxOutboxBytes`, `maxReplyBytes`).
    pub fn new_with_tls(
        target: &RedisTarget,
        command_timeout: Duration,
        connect_timeout: Duration,
        tls: Option<Arc<Tls>>,
        limits: Limits,
    ) -> CacheResult<RedisStore> {
        let mut secrets: Vec<String> = target
            .password
            .iter()
            .flat_map(|p| [p.clone(), percent_decode(p)])
            .filter(|s| !s.is_empty())
            .collect();
        let invalid = |e: RedisError, secrets: &[String]| {
            CacheError::InvalidArg(format!(
                "invalid Redis URL (the URL is not shown): {}",
                scrub(&e.to_string(), secrets)
            ))
        };
        let client = redis::Client::open(target.url.as_str()).map_err(|e| invalid(e, &secrets))?;
        let info = client.get_connection_info();
        let settings = info.redis_settings().clone();
        if let Some(p) = settings.password() {
            if !p.is_empty() && !secrets.iter().any(|s| s == p) {
                secrets.push(p.to_string());
            }
        }
        let (host, port, transport) = match info.addr() {
            ConnectionAddr::Tcp(host, port) => (host.clone(), *port, Transport::Tcp),
            ConnectionAddr::TcpTls {
                host,
                port,
                insecure,
                ..
            } => {
                if *insecure {
                    return Err(CacheError::InvalidArg(
                        "a rediss:// URL with #insecure is refused: use tls.rejectUnauthorized: false (tests only)".into(),
                    ));
                }
                let tls = match tls {
                    Some(t) => t,
                    None => Arc::new(Tls::new(&TlsSettings {
                        reject_unauthorized: true,
                        ..Default::default()
                    })?),
                };
                (host.clone(), *port, Transport::Tls(tls))
            }
            ConnectionAddr::Unix(path) => (String::new(), 0, Transport::Unix(path.clone())),
            _ => {
                return Err(CacheError::InvalidArg(
                    "unsupported Redis address (the URL is not shown)".into(),
                ))
            }
        };
        let endpoint = Endpoint {
            host,
            port,
            username: settings.username().map(str::to_string),
            password: settings.password().map(str::to_string),
            db: settings.db(),
            transport,
        };
        let secrets = Arc::new(secrets);
        let scrub_with = secrets.clone();
        let pipeline = Pipeline::new(
            endpoint.clone(),
            command_timeout,
            connect_timeout,
            limits,
            Box::new(move |text| scrub(&text, &scrub_with)),
        );
        Ok(RedisStore {
            endpoint,
            settings,
            pipeline: Some(pipeline),
            secrets,
            command_timeout,
            connect_timeout,
            closed: AtomicBool::new(false),
            topology: None,
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
        if let Some(p) = s.pipeline.take() {
            p.close();
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
    pub fn cluster(&self) -> Option<&super::cluster::ClusterStore> {
        match self.topology.as_deref() {
            Some(Topology::Cluster(c)) => Some(c.as_ref()),
            _ => None,
        }
    }

    /// Replaces the default circuit breaker.
    pub fn with_circuit(mut self, circuit: Circuit) -> RedisStore {
        self.circuit = circuit;
        self
    }

    pub fn circuit(&self) -> &Circuit {
        &self.circuit
    }

    /// PING, past the breaker (health checks must see the recovery); its outcome feeds it.
    pub async fn ping(&self) -> CacheResult<String> {
        let r = self.dispatch_query(&::redis::cmd("PING")).await;
        self.circuit.record(&r);
        r
    }

    pub fn is_healthy(&self) -> bool {
        if self.closed.load(Ordering::Relaxed) {
            return false;
        }
        match (&self.topology, &self.pipeline) {
            (Some(t), _) => t.is_healthy(),
            (None, Some(p)) => p.is_healthy(),
            (None, None) => false,
        }
    }

    /// The fast transport of a standalone server (any address: TCP, TLS, Unix socket).
    pub fn pipeline(&self) -> Option<&Pipeline> {
        self.pipeline.as_ref()
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
        if let Some(p) = &self.pipeline {
            p.close();
        }
        if let Some(t) = &self.topology {
            t.close();
        }
    }

    /// The pipeline, or why there is none to use.
    fn link(&self) -> CacheResult<&Pipeline> {
        match &self.pipeline {
            Some(p) if !self.closed.load(Ordering::Relaxed) => Ok(p),
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
        self.standalone_subscriber(channels).await
    }

    /// [`RedisStore::subscriber`] on this one server (what a topology calls): the same
    /// transport as the pipeline's (TLS settings, Unix socket), redis-rs' handshake.
    pub async fn standalone_subscriber(
        &self,
        channels: &[String],
    ) -> CacheResult<redis::aio::PubSub> {
        if self.closed.load(Ordering::Relaxed) {
            return Err(CacheError::Closed);
        }
        let deadline = Instant::now() + self.connect_timeout;
        let secrets = self.secrets.clone();
        let stream = open_stream(&self.endpoint, self.connect_timeout, &move |t| {
            scrub(&t, &secrets)
        })
        .await?;
        let subscribe = async {
            let mut ps = redis::aio::PubSub::new(&self.settings, stream).await?;
            ps.subscribe(channels).await?;
            Ok::<_, RedisError>(ps)
        };
        match tokio::time::timeout_at(deadline.into(), subscribe).await {
            Err(_) => Err(CacheError::Timeout(self.connect_timeout.as_millis() as u64)),
            Ok(Err(e)) => Err(CacheError::Unavailable(scrub(
                &e.to_string(),
                &self.secrets,
            ))),
            Ok(Ok(ps)) => Ok(ps),
        }
    }

    /// Runs one command (refused at once while the circuit is open).
    pub async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> CacheResult<T> {
        self.circuit.check()?;
        let r = self.dispatch_query(cmd).await;
        self.circuit.record(&r);
        r
    }

    /// One command to the topology, or to this one server; the breaker is the caller's.
    async fn dispatch_query<T: FromRedisValue>(&self, cmd: &Cmd) -> CacheResult<T> {
        match &self.topology {
            Some(t) => t.query(cmd).await,
            None => self.standalone_query(cmd).await,
        }
    }

    /// [`RedisStore::query`] on this one server, past the breaker (what a topology calls).
    pub async fn standalone_query<T: FromRedisValue>(&self, cmd: &Cmd) -> CacheResult<T> {
        let reply = self
            .link()?
            .request(|b| cmd.write_packed_command(b))
            .await?;
        decode(reply)
    }

    /// Convenience for scripts: keys and string arguments (refused at once while the circuit
    /// is open).
    pub async fn script<T: FromRedisValue>(
        &self,
        script: &Script,
        keys: &[&str],
        args: &[&str],
    ) -> CacheResult<T> {
        self.circuit.check()?;
        let r = match &self.topology {
            Some(t) => t.script(script, keys, args).await,
            None => self.standalone_script(script, keys, args).await,
        };
        self.circuit.record(&r);
        r
    }

    /// [`RedisStore::script`] on this one server, past the breaker (what a topology calls):
    /// EVALSHA; on NOSCRIPT (first use since Redis started) SCRIPT LOAD and EVALSHA again,
    /// all within the one call's deadline.
    pub async fn standalone_script<T: FromRedisValue>(
        &self,
        script: &Script,
        keys: &[&str],
        args: &[&str],
    ) -> CacheResult<T> {
        let deadline = Instant::now() + self.command_timeout;
        let p = self.link()?;
        let write = |b: &mut Vec<u8>| {
            encode_header(b, 3 + keys.len() + args.len());
            encode_arg(b, b"EVALSHA");
            encode_arg(b, script.get_hash().as_bytes());
            encode_arg(b, keys.len().to_string().as_bytes());
            for k in keys {
                encode_arg(b, k.as_bytes());
            }
            for a in args {
                encode_arg(b, a.as_bytes());
            }
        };
        match p.request_until(write, deadline).await {
            Err(CacheError::Redis(e)) if e.starts_with("NOSCRIPT") => {}
            other => return decode(other?),
        }
        let mut conn = PipelineConn {
            pipeline: p,
            deadline,
            db: self.endpoint.db,
            failure: None,
        };
        let loaded = script.prepare_invoke().load_async(&mut conn).await;
        if let Some(e) = conn.failure.take() {
            return Err(e);
        }
        loaded.map_err(|e| CacheError::Redis(scrub(&e.to_string(), &self.secrets)))?;
        decode(p.request_until(write, deadline).await?)
    }
}

/// The pipeline as a redis-rs async connection, for the redis-rs helpers that drive one
/// (`Script::load_async`); every command keeps the caller's deadline. The pipeline's own
/// error is kept in `failure` (redis-rs gets a stand-in).
struct PipelineConn<'p> {
    pipeline: &'p Pipeline,
    deadline: Instant,
    db: i64,
    failure: Option<CacheError>,
}

impl redis::aio::ConnectionLike for PipelineConn<'_> {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> redis::RedisFuture<'a, Value> {
        Box::pin(async move {
            match self
                .pipeline
                .request_until(|b| cmd.write_packed_command(b), self.deadline)
                .await
            {
                Ok(reply) => Ok(reply.into_value()),
                Err(e) => {
                    self.failure = Some(e);
                    Err(RedisError::from((
                        redis::ErrorKind::Io,
                        "the pipelined command failed",
                    )))
                }
            }
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        _pipeline: &'a redis::Pipeline,
        _offset: usize,
        _count: usize,
    ) -> redis::RedisFuture<'a, Vec<Value>> {
        Box::pin(async {
            Err(RedisError::from((
                redis::ErrorKind::Client,
                "redis-rs pipelines are not sent on this connection",
            )))
        })
    }

    fn get_db(&self) -> i64 {
        self.db
    }
}

fn scrub(text: &str, secrets: &[String]) -> String {
    secrets
        .iter()
        .fold(text.to_string(), |t, s| redact(&t, Some(s)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_url_error_hides_the_password() {
        let target = RedisTarget {
            url: "redis://:hunter2@[::bad".into(),
            password: Some("hunter2".into()),
        };
        match RedisStore::new(&target, Duration::from_secs(1), Duration::from_secs(1)) {
            Err(e) => assert!(!e.to_string().contains("hunter2"), "{e}"),
            Ok(_) => panic!("a malformed URL must be refused"),
        }
    }
}
