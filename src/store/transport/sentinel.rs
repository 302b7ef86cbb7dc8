//! The Sentinel back end: a standalone primary found through Redis Sentinel (redis-rs
//! `sentinel`), reached as one [`Server`] (our pipelined transport).
//!
//! The primary's address is re-resolved through the sentinels
//! - every [`WATCH_EVERY`] in the background, so a failover is followed even when nothing fails
//!   (a demoted primary keeps answering reads as a replica);
//! - at once after a connection failure, a timeout or a `READONLY` error.
//!
//! When the address changes, the store for the new primary replaces the old one, which is
//! closed after one command timeout (its in-flight commands end first). A command that failed
//! with `READONLY` was not applied, so it is retried once on the new primary; any other failed
//! command is not replayed (the house rule: no offline queue, nothing replayed).
//!
//! The primary has its own circuit breaker, made with it: a new primary after a failover
//! starts closed instead of inheriting the failures of the old one. Commands are admitted by
//! it before they reach the primary's pipeline and their outcome is recorded on it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use napi::bindgen_prelude::spawn;
use parking_lot::Mutex;
use redis::sentinel::{Sentinel, SentinelNodeConnectionInfo};
use redis::{
    Cmd, ConnectionAddr, ConnectionInfo, FromRedisValue, IntoConnectionInfo, RedisConnectionInfo,
};
use tokio::sync::Notify;

use super::attempt::SharedAttempt;
use super::node::{address, timed_ping, NodePing, NodeStatus};
use super::server::Server;
use crate::config::{ConnOptions, Limits, RedisTarget};
use crate::error::{CacheError, CacheResult};
use crate::store::circuit::{Circuit, CircuitConfig, CircuitState};
use crate::store::script::Script;

/// How often the background watcher asks the sentinels for the primary.
pub const WATCH_EVERY: Duration = Duration::from_millis(500);

struct Current {
    host: String,
    port: u16,
    store: Arc<Server>,
    /// This primary's breaker (dropped with it when the primary changes).
    circuit: Arc<Circuit>,
}

pub struct Inner {
    sentinel: tokio::sync::Mutex<Sentinel>,
    master_name: String,
    command_timeout: Duration,
    connect_timeout: Duration,
    limits: Limits,
    /// How the primary's breaker is made.
    breaker: CircuitConfig,
    /// The data nodes' credentials, database and client name (the options).
    conn: ConnOptions,
    /// The same credentials for redis-rs' check of the primary's role when it resolves it.
    node_info: SentinelNodeConnectionInfo,
    current: Mutex<Option<Current>>,
    closed: AtomicBool,
    watching: AtomicBool,
    wake: Notify,
    /// The resolution in progress, shared by every caller that needs it meanwhile.
    resolving: SharedAttempt<CacheResult<Arc<Server>>>,
    /// Bumped at every switch to a new primary (the pub/sub supervisor reconnects on it).
    generation: tokio::sync::watch::Sender<u64>,
}

pub struct SentinelStore {
    inner: Arc<Inner>,
}

fn unavailable(e: impl std::fmt::Display) -> CacheError {
    CacheError::Unavailable(format!("Sentinel: {e}"))
}

/// A failure after which the primary may have moved.
fn moved(e: &CacheError) -> bool {
    match e {
        CacheError::Unavailable(_) | CacheError::Timeout(_) => true,
        CacheError::Redis(text) => text.contains("READONLY"),
        _ => false,
    }
}

impl SentinelStore {
    pub fn new(
        master_name: &str,
        nodes: &[RedisTarget],
        command_timeout: Duration,
        connect_timeout: Duration,
        limits: Limits,
        conn: &ConnOptions,
        sentinel_auth: &ConnOptions,
    ) -> CacheResult<SentinelStore> {
        let invalid =
            || CacheError::InvalidArg("invalid sentinel node URL (the URL is not shown)".into());
        let infos = nodes
            .iter()
            .map(|n| {
                let info = n
                    .url
                    .as_str()
                    .into_connection_info()
                    .map_err(|_| invalid())?;
                let mut auth = info.redis_settings().clone();
                if let Some(u) = &sentinel_auth.username {
                    auth = auth.set_username(u);
                }
                if let Some(p) = &sentinel_auth.password {
                    auth = auth.set_password(p);
                }
                Ok(info.set_redis_settings(auth))
            })
            .collect::<CacheResult<Vec<ConnectionInfo>>>()?;
        let sentinel = Sentinel::build(infos).map_err(|_| invalid())?;
        Ok(SentinelStore {
            inner: Arc::new(Inner {
                sentinel: tokio::sync::Mutex::new(sentinel),
                master_name: master_name.to_string(),
                command_timeout,
                connect_timeout,
                limits,
                breaker: CircuitConfig::default(),
                conn: conn.clone(),
                node_info: node_info(conn),
                current: Mutex::new(None),
                closed: AtomicBool::new(false),
                watching: AtomicBool::new(false),
                wake: Notify::new(),
                resolving: SharedAttempt::default(),
                generation: tokio::sync::watch::Sender::new(0),
            }),
        })
    }

    /// Makes each primary's breaker with `breaker` (before the store is used).
    pub fn with_breaker(mut self, breaker: CircuitConfig) -> SentinelStore {
        Arc::get_mut(&mut self.inner)
            .expect("the breaker is set before the sentinel store is shared")
            .breaker = breaker;
        self
    }

    pub fn is_healthy(&self) -> bool {
        self.inner
            .current
            .lock()
            .as_ref()
            .is_none_or(|c| c.store.is_healthy())
    }

    pub fn close(&self) {
        self.inner.closed.store(true, Ordering::SeqCst);
        self.inner.wake.notify_one();
        if let Some(c) = self.inner.current.lock().take() {
            c.store.close();
        }
    }

    /// The primary's store (resolved through the sentinels when none is known yet).
    async fn store(&self) -> CacheResult<Arc<Server>> {
        if self.inner.closed.load(Ordering::Relaxed) {
            return Err(CacheError::Closed);
        }
        self.watch();
        if let Some(c) = self.inner.current.lock().as_ref() {
            return Ok(c.store.clone());
        }
        self.inner.resolve().await
    }

    /// Starts the background watcher once (it must start on the runtime).
    fn watch(&self) {
        if self.inner.watching.swap(true, Ordering::AcqRel) {
            return;
        }
        let weak = Arc::downgrade(&self.inner);
        spawn(watcher(weak));
    }

    /// The primary's store and its breaker, read together (resolved through the sentinels
    /// when none is known yet).
    async fn primary(&self) -> CacheResult<(Arc<Server>, Option<Arc<Circuit>>)> {
        let known = (self.inner.current.lock().as_ref())
            .map(|c| (c.store.clone(), Some(c.circuit.clone())));
        if let Some(known) = known.filter(|_| !self.inner.closed.load(Ordering::Relaxed)) {
            self.watch();
            return Ok(known);
        }
        let store = self.store().await?;
        let circuit = self.inner.breaker_of(&store);
        Ok((store, circuit))
    }

    /// Runs `op` on the primary; after a failure that may mean a failover, asks the watcher to
    /// re-resolve, and after `READONLY` (nothing was applied) retries once on the new primary.
    /// `gate`: the primary's breaker admits `op` first (false for health checks); the outcome
    /// is recorded on the breaker of the primary that answered (or failed to).
    async fn on_primary<T, F, Fut>(&self, gate: bool, op: F) -> CacheResult<T>
    where
        F: Fn(Arc<Server>) -> Fut,
        Fut: std::future::Future<Output = CacheResult<T>>,
    {
        let (store, circuit) = self.primary().await?;
        match on_node(&store, circuit.as_deref(), gate, &op).await {
            Err(e) if moved(&e) => {
                let readonly = matches!(&e, CacheError::Redis(_));
                if !readonly {
                    self.inner.wake.notify_one();
                    return Err(e);
                }
                match self.inner.resolve().await {
                    Ok(next) if !Arc::ptr_eq(&next, &store) => {
                        let circuit = self.inner.breaker_of(&next);
                        on_node(&next, circuit.as_deref(), gate, &op).await
                    }
                    _ => Err(e),
                }
            }
            other => other,
        }
    }

    pub async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> CacheResult<T> {
        self.on_primary(true, |s| async move { s.query(cmd).await })
            .await
    }

    /// PING on the primary, even while its breaker is open (a health check must see, and
    /// bring about, the recovery); its outcome feeds the breaker.
    pub async fn ping(&self) -> CacheResult<String> {
        let cmd = redis::cmd("PING");
        let cmd = &cmd;
        self.on_primary(false, |s| async move { s.query(cmd).await })
            .await
    }

    /// The primary's breaker state ("closed" before the first resolution).
    pub fn circuit_states(&self) -> Vec<CircuitState> {
        self.inner
            .current
            .lock()
            .as_ref()
            .map(|c| c.circuit.state())
            .into_iter()
            .collect()
    }

    pub async fn script<T: FromRedisValue>(
        &self,
        script: &'static Script,
        keys: &[&str],
        args: &[&str],
    ) -> CacheResult<T> {
        self.on_primary(true, |s| async move { s.script(script, keys, args).await })
            .await
    }

    /// The current primary (none before the first resolution), whether its connection is
    /// up and its breaker's state.
    pub fn node_states(&self) -> Vec<NodeStatus> {
        self.inner
            .current
            .lock()
            .as_ref()
            .map(|c| NodeStatus {
                address: address(&c.host, c.port),
                role: "primary",
                up: c.store.is_healthy(),
                circuit: c.circuit.state(),
            })
            .into_iter()
            .collect()
    }

    /// PING on the primary (resolved through the sentinels when none is known yet), past
    /// and feeding its breaker.
    pub async fn ping_primary(&self) -> CacheResult<NodePing> {
        let (store, circuit) = self.primary().await?;
        let cmd = redis::cmd("PING");
        let cmd = &cmd;
        let op = |s: Arc<Server>| async move { s.query::<String>(cmd).await };
        let ping = on_node(&store, circuit.as_deref(), false, &op);
        Ok(timed_ping(store.address(), "primary", ping).await)
    }

    /// Resolves when the primary changes after this call (a subscriber connected before must
    /// move: a demoted primary may not be told of its demotion for seconds, and meanwhile it
    /// hears nothing published on the new one).
    pub async fn primary_changed(&self) {
        let mut rx = self.inner.generation.subscribe();
        rx.borrow_and_update();
        if rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// A pub/sub connection to the current primary (resolved afresh: the supervisor calls
    /// this after its link dropped, which is what a failover does to it).
    pub async fn subscriber(&self, channels: &[String]) -> CacheResult<redis::aio::PubSub> {
        if self.inner.closed.load(Ordering::Relaxed) {
            return Err(CacheError::Closed);
        }
        self.watch();
        let store = match self.inner.resolve().await {
            Ok(s) => s,
            Err(_) => self.store().await?,
        };
        store.subscriber(channels).await
    }
}

/// `op` on `store`, admitted first by `circuit` when `gate`, its outcome recorded on it.
async fn on_node<T, F, Fut>(
    store: &Arc<Server>,
    circuit: Option<&Circuit>,
    gate: bool,
    op: &F,
) -> CacheResult<T>
where
    F: Fn(Arc<Server>) -> Fut,
    Fut: std::future::Future<Output = CacheResult<T>>,
{
    if let (Some(c), true) = (circuit, gate) {
        c.check()?;
    }
    let r = op(store.clone()).await;
    if let Some(c) = circuit {
        c.record(&r);
    }
    r
}

impl Inner {
    /// The breaker of `store` while it is the current primary (none once it was replaced:
    /// its breaker went with it).
    fn breaker_of(&self, store: &Arc<Server>) -> Option<Arc<Circuit>> {
        self.current
            .lock()
            .as_ref()
            .filter(|c| Arc::ptr_eq(&c.store, store))
            .map(|c| c.circuit.clone())
    }

    /// Asks the sentinels for the primary and switches to it if it moved → the current
    /// primary's store. Concurrent callers share one resolution, and each waits for it at
    /// most connectTimeoutMs (they used to queue behind a lock for one resolution each).
    async fn resolve(self: &Arc<Self>) -> CacheResult<Arc<Server>> {
        let inner = self.clone();
        self.resolving
            .join(
                move || async move { inner.resolve_once().await },
                self.connect_timeout,
            )
            .await
            .unwrap_or(Err(CacheError::Timeout(
                self.connect_timeout.as_millis() as u64
            )))
    }

    /// One resolution (bounded by connectTimeoutMs).
    async fn resolve_once(&self) -> CacheResult<Arc<Server>> {
        let client = {
            let mut sentinel = self.sentinel.lock().await;
            let ask = sentinel.async_master_for(&self.master_name, Some(&self.node_info));
            match tokio::time::timeout(self.connect_timeout, ask).await {
                Err(_) => return Err(CacheError::Timeout(self.connect_timeout.as_millis() as u64)),
                Ok(Err(e)) => return Err(unavailable(e)),
                Ok(Ok(c)) => c,
            }
        };
        let (host, port) = match client.get_connection_info().addr() {
            ConnectionAddr::Tcp(h, p) => (h.clone(), *p),
            _ => return Err(unavailable("the primary's address is not plain TCP")),
        };
        if self.closed.load(Ordering::Relaxed) {
            return Err(CacheError::Closed);
        }
        let mut cur = self.current.lock();
        if let Some(c) = cur.as_ref() {
            if c.host == host && c.port == port {
                return Ok(c.store.clone());
            }
        }
        let target = RedisTarget {
            url: format!("redis://{}:{port}", bracket(&host)),
            password: None,
        };
        let store = Arc::new(Server::new(
            &target,
            self.command_timeout,
            self.connect_timeout,
            None,
            self.limits,
            &self.conn,
        )?);
        let old = cur.replace(Current {
            host,
            port,
            store: store.clone(),
            circuit: Arc::new(self.breaker.circuit()),
        });
        drop(cur);
        self.generation.send_modify(|g| *g += 1);
        if let Some(old) = old {
            // Commands in flight on the old primary end (or time out) first.
            let grace = self.command_timeout;
            spawn(async move {
                tokio::time::sleep(grace).await;
                old.store.close();
            });
        }
        Ok(store)
    }
}

/// The credentials and database of the data nodes, for redis-rs' own short connection to the
/// primary it names (it checks the node's role before answering).
fn node_info(conn: &ConnOptions) -> SentinelNodeConnectionInfo {
    let mut info = RedisConnectionInfo::default();
    if let Some(u) = &conn.username {
        info = info.set_username(u);
    }
    if let Some(p) = &conn.password {
        info = info.set_password(p);
    }
    if let Some(db) = conn.db {
        info = info.set_db(db);
    }
    SentinelNodeConnectionInfo::default().set_redis_connection_info(info)
}

/// IPv6 hosts go in brackets in a URL.
fn bracket(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

async fn watcher(weak: Weak<Inner>) {
    loop {
        let Some(inner) = weak.upgrade() else { return };
        if inner.closed.load(Ordering::Relaxed) {
            return;
        }
        let _ = inner.resolve().await;
        let _ = tokio::time::timeout(WATCH_EVERY, inner.wake.notified()).await;
    }
}
