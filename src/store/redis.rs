//! The Redis back end: every command bounded by `commandTimeoutMs`, no offline queue.
//!
//! Plain TCP (`redis://host:port`) goes through our own [`Pipeline`]: one connection on which
//! concurrent commands are pipelined with no per-command task, channel or timer. Other
//! addresses (TLS, Unix sockets) use one auto-reconnecting multiplexed redis-rs
//! `ConnectionManager`; it also loads scripts after a NOSCRIPT. While a connection is down,
//! commands fail fast (or at the latest at their timeout) instead of queueing: nothing is
//! replayed when Redis returns.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Cmd, ConnectionAddr, ErrorKind, FromRedisValue, RedisError, Script, ScriptInvocation};

use super::pipeline::{encode_arg, encode_header, Endpoint, Limits, Pipeline, Resp};
use super::topology::Topology;

use crate::config::{percent_decode, RedisTarget};
use crate::error::{redact, CacheError, CacheResult};
use crate::health::Circuit;

/// A manager whose connection failed for a reason it does not retry by itself (auth, TLS,
/// timeout of the handshake) is replaced, at most this often.
const MIN_RESET_INTERVAL: Duration = Duration::from_millis(500);

pub struct RedisStore {
    client: redis::Client,
    manager: Mutex<Option<ConnectionManager>>,
    last_reset: Mutex<Option<Instant>>,
    secrets: Vec<String>,
    command_timeout: Duration,
    connect_timeout: Duration,
    /// Last known state of the link: false after a connection failure or timeout, true after
    /// any answer from Redis.
    healthy: AtomicBool,
    closed: AtomicBool,
    /// The fast transport, for plain TCP addresses.
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

    /// As [`RedisStore::new`]; `tls_ca` (PEM) is the only root trusted for a `rediss://`
    /// server. A TLS URL never falls back to plaintext. `limits` bound the pipelined
    /// transport's buffers (`maxOutboxBytes`, `maxReplyBytes`).
    pub fn new_with_tls(
        target: &RedisTarget,
        command_timeout: Duration,
        connect_timeout: Duration,
        tls_ca: Option<&[u8]>,
        limits: Limits,
    ) -> CacheResult<RedisStore> {
        let secrets: Vec<String> = target
            .password
            .iter()
            .flat_map(|p| [p.clone(), percent_decode(p)])
            .filter(|s| !s.is_empty())
            .collect();
        if target.url.starts_with("rediss://") {
            install_tls_provider();
        }
        let client = match tls_ca {
            Some(ca) => redis::Client::build_with_tls(
                target.url.as_str(),
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(ca.to_vec()),
                },
            ),
            None => redis::Client::open(target.url.as_str()),
        }
        .map_err(|e| {
            CacheError::InvalidArg(format!(
                "invalid Redis URL (the URL is not shown): {}",
                scrub(&e.to_string(), &secrets)
            ))
        })?;
        let info = client.get_connection_info();
        let pipeline = match info.addr() {
            ConnectionAddr::Tcp(host, port) => {
                let settings = info.redis_settings();
                let secrets = secrets.clone();
                Some(Pipeline::new(
                    Endpoint {
                        host: host.clone(),
                        port: *port,
                        username: settings.username().map(str::to_string),
                        password: settings.password().map(str::to_string),
                        db: settings.db(),
                    },
                    command_timeout,
                    connect_timeout,
                    limits,
                    Box::new(move |text| scrub(&text, &secrets)),
                ))
            }
            _ => None,
        };
        Ok(RedisStore {
            pipeline,
            client,
            manager: Mutex::new(None),
            last_reset: Mutex::new(None),
            secrets,
            command_timeout,
            connect_timeout,
            healthy: AtomicBool::new(true),
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
        if let Some(t) = &self.topology {
            return t.is_healthy() && !self.closed.load(Ordering::Relaxed);
        }
        let link = match &self.pipeline {
            Some(p) => p.is_healthy(),
            None => self.healthy.load(Ordering::Relaxed),
        };
        link && !self.closed.load(Ordering::Relaxed)
    }

    /// The fast transport, when the address is plain TCP.
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
        self.manager.lock().take();
        if let Some(p) = &self.pipeline {
            p.close();
        }
        if let Some(t) = &self.topology {
            t.close();
        }
    }

    /// The shared connection, created lazily (this must run on the Tokio runtime).
    fn connection(&self) -> CacheResult<ConnectionManager> {
        if self.closed.load(Ordering::Relaxed) {
            return Err(CacheError::Closed);
        }
        let mut slot = self.manager.lock();
        if let Some(m) = slot.as_ref() {
            return Ok(m.clone());
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(Some(self.command_timeout))
            // One quick retry per reconnect; further attempts are driven by later commands,
            // so a dead Redis costs a refused connect, never a growing queue.
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        let m = ConnectionManager::new_lazy_with_config(self.client.clone(), config)
            .map_err(|e| self.map_err(e))?;
        *slot = Some(m.clone());
        Ok(m)
    }

    /// Drops a manager that cannot recover by itself, so the next command starts afresh.
    fn reset(&self) {
        let mut last = self.last_reset.lock();
        if last.is_some_and(|t| t.elapsed() < MIN_RESET_INTERVAL) {
            return;
        }
        *last = Some(Instant::now());
        self.manager.lock().take();
    }

    fn map_err(&self, e: RedisError) -> CacheError {
        if e.is_timeout() {
            // redis-rs' response timeout is set to commandTimeoutMs too and usually fires
            // before ours: it is the same timeout, and callers must see ETIMEDOUT for it.
            self.healthy.store(false, Ordering::Relaxed);
            return CacheError::Timeout(self.command_timeout.as_millis() as u64);
        }
        let text = scrub(&e.to_string(), &self.secrets);
        match e.kind() {
            ErrorKind::Server(_) | ErrorKind::Extension | ErrorKind::UnexpectedReturnType => {
                self.healthy.store(true, Ordering::Relaxed);
                CacheError::Redis(text)
            }
            ErrorKind::Io => {
                self.healthy.store(false, Ordering::Relaxed);
                CacheError::Unavailable(text)
            }
            _ => {
                // Authentication, TLS, protocol or client errors: the manager only retries
                // I/O errors by itself, so start a new one.
                self.healthy.store(false, Ordering::Relaxed);
                self.reset();
                CacheError::Unavailable(text)
            }
        }
    }

    async fn bounded<T>(
        &self,
        fut: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> CacheResult<T> {
        match tokio::time::timeout(self.command_timeout, fut).await {
            Err(_) => {
                self.healthy.store(false, Ordering::Relaxed);
                Err(CacheError::Timeout(self.command_timeout.as_millis() as u64))
            }
            Ok(Err(e)) => Err(self.map_err(e)),
            Ok(Ok(v)) => {
                self.healthy.store(true, Ordering::Relaxed);
                Ok(v)
            }
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

    /// [`RedisStore::subscriber`] on this one server (what a topology calls).
    pub async fn standalone_subscriber(
        &self,
        channels: &[String],
    ) -> CacheResult<redis::aio::PubSub> {
        if self.closed.load(Ordering::Relaxed) {
            return Err(CacheError::Closed);
        }
        let connect = async {
            let mut ps = self.client.get_async_pubsub().await?;
            ps.subscribe(channels).await?;
            Ok::<_, RedisError>(ps)
        };
        match tokio::time::timeout(self.connect_timeout, connect).await {
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
        if let Some(p) = &self.pipeline {
            let reply = p.request(|b| cmd.write_packed_command(b)).await?;
            return typed(reply);
        }
        let mut conn = self.connection()?;
        self.bounded(cmd.query_async(&mut conn)).await
    }

    /// Runs one script (EVALSHA, loading it on NOSCRIPT).
    pub async fn eval<T: FromRedisValue>(&self, inv: &ScriptInvocation<'_>) -> CacheResult<T> {
        let mut conn = self.connection()?;
        self.bounded(inv.invoke_async(&mut conn)).await
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

    /// [`RedisStore::script`] on this one server, past the breaker (what a topology calls).
    pub async fn standalone_script<T: FromRedisValue>(
        &self,
        script: &Script,
        keys: &[&str],
        args: &[&str],
    ) -> CacheResult<T> {
        // One call, one deadline: the script load after a NOSCRIPT does not get a second one.
        let deadline = Instant::now() + self.command_timeout;
        if let Some(p) = &self.pipeline {
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
                Err(CacheError::Redis(e)) if e.starts_with("NOSCRIPT") => {
                    // First use since Redis started: the managed connection loads the script
                    // (EVALSHA, then SCRIPT LOAD and EVALSHA on NOSCRIPT).
                }
                other => return typed(other?),
            }
        }
        let mut inv = script.prepare_invoke();
        for k in keys {
            inv.key(*k);
        }
        for a in args {
            inv.arg(*a);
        }
        match tokio::time::timeout_at(deadline.into(), self.eval(&inv)).await {
            Ok(r) => r,
            Err(_) => {
                self.healthy.store(false, Ordering::Relaxed);
                Err(CacheError::Timeout(self.command_timeout.as_millis() as u64))
            }
        }
    }
}

/// Installs rustls' ring crypto provider for the process, once (redis-rs enables rustls with
/// no provider, and rustls would panic on the first TLS handshake). A provider the host
/// process installed first is kept.
fn install_tls_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A pipeline reply as the caller's type.
fn typed<T: FromRedisValue>(reply: Resp) -> CacheResult<T> {
    T::from_redis_value(reply.into_value())
        .map_err(|e| CacheError::Redis(format!("unexpected reply: {e}")))
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
