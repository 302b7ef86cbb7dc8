//! The Sentinel back end: a standalone primary found through Redis Sentinel, reached as one
//! [`Server`] (our pipelined transport).
//!
//! Each sentinel is asked on its own pipelined connection (TLS with `rediss://` sentinel URLs,
//! its own credentials), `SENTINEL GET-MASTER-ADDR-BY-NAME`, all at once; their answers are
//! taken in the configured order, and the first address whose server says `ROLE` master wins
//! (a sentinel cut off from the others may still name a demoted primary).
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
use std::time::{Duration, Instant};

use napi::bindgen_prelude::spawn;
use parking_lot::Mutex;
use redis::{Cmd, ConnectionAddr, FromRedisValue};
use tokio::sync::Notify;

use super::attempt::SharedAttempt;
use super::node::{address, timed_ping, NodePing, NodeStatus};
use super::pipeline::{Endpoint, Pipeline, Transport};
use super::server::Server;
use crate::config::{percent_decode, ConnOptions, Limits, RedisTarget};
use crate::error::{redact, CacheError, CacheResult};
use crate::store::circuit::{Circuit, CircuitConfig, CircuitState};
use crate::store::codec::{encode, Resp};
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

/// One sentinel: its address (for errors) and its pipelined connection.
struct SentinelLink {
    address: String,
    pipe: Pipeline,
}

pub struct Inner {
    sentinels: Vec<SentinelLink>,
    master_name: String,
    command_timeout: Duration,
    connect_timeout: Duration,
    limits: Limits,
    /// How the primary's breaker is made.
    breaker: CircuitConfig,
    /// The data nodes' credentials, database, client name and TLS (the options).
    conn: ConnOptions,
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
    /// `nodes` are the sentinels' URLs (all `redis://` or all `rediss://`); `sentinel_auth`
    /// replaces their credentials and says whether they use TLS, `conn` the data nodes'.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        master_name: &str,
        nodes: &[RedisTarget],
        command_timeout: Duration,
        connect_timeout: Duration,
        limits: Limits,
        conn: &ConnOptions,
        sentinel_auth: &ConnOptions,
        breaker: CircuitConfig,
    ) -> CacheResult<SentinelStore> {
        let invalid =
            || CacheError::InvalidArg("invalid sentinel node URL (the URL is not shown)".into());
        // Every password either side knows: none appears in an error of a sentinel.
        let secrets: Arc<Vec<String>> = Arc::new(
            nodes
                .iter()
                .filter_map(|n| n.password.clone())
                .flat_map(|p| [percent_decode(&p), p])
                .chain(sentinel_auth.secrets())
                .chain(conn.secrets())
                .filter(|s| !s.is_empty())
                .collect(),
        );
        let sentinels = nodes
            .iter()
            .map(|n| {
                let info = redis::Client::open(n.url.as_str())
                    .map_err(|_| invalid())?
                    .get_connection_info()
                    .clone();
                let (host, port) = match info.addr() {
                    ConnectionAddr::Tcp(h, p)
                    | ConnectionAddr::TcpTls {
                        host: h, port: p, ..
                    } => (h.clone(), *p),
                    _ => return Err(invalid()),
                };
                let settings = info.redis_settings();
                let transport = match &sentinel_auth.tls {
                    Some(tls) => Transport::Tls(tls.clone()),
                    None => Transport::Tcp,
                };
                let endpoint = Endpoint {
                    transport,
                    ..Endpoint::tcp(
                        host.clone(),
                        port,
                        sentinel_auth
                            .username
                            .clone()
                            .or_else(|| settings.username().map(str::to_string)),
                        sentinel_auth
                            .password
                            .clone()
                            .or_else(|| settings.password().map(str::to_string)),
                        0,
                    )
                };
                let scrub_with = secrets.clone();
                Ok(SentinelLink {
                    address: address(&host, port),
                    pipe: Pipeline::new(
                        endpoint,
                        command_timeout,
                        connect_timeout,
                        limits,
                        Box::new(move |t| scrub_with.iter().fold(t, |t, s| redact(&t, Some(s)))),
                    ),
                })
            })
            .collect::<CacheResult<Vec<_>>>()?;
        if sentinels.is_empty() {
            return Err(invalid());
        }
        Ok(SentinelStore {
            inner: Arc::new(Inner {
                sentinels,
                master_name: master_name.to_string(),
                command_timeout,
                connect_timeout,
                limits,
                breaker,
                conn: conn.clone(),
                current: Mutex::new(None),
                closed: AtomicBool::new(false),
                watching: AtomicBool::new(false),
                wake: Notify::new(),
                resolving: SharedAttempt::default(),
                generation: tokio::sync::watch::Sender::new(0),
            }),
        })
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
        for s in &self.inner.sentinels {
            s.pipe.close();
        }
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

    /// One resolution: every sentinel asked at once (each answer within connectTimeoutMs),
    /// their answers taken in the configured order, the first primary confirmed by `ROLE`
    /// kept.
    async fn resolve_once(&self) -> CacheResult<Arc<Server>> {
        let deadline = Instant::now() + self.connect_timeout;
        let asks: Vec<_> = self
            .sentinels
            .iter()
            .map(|s| {
                let (tx, rx) = tokio::sync::oneshot::channel();
                s.pipe.submit_until(
                    |b| {
                        encode(
                            b,
                            &[
                                b"SENTINEL",
                                b"GET-MASTER-ADDR-BY-NAME",
                                self.master_name.as_bytes(),
                            ],
                        )
                    },
                    Box::new(move |r| {
                        let _ = tx.send(r);
                    }),
                    deadline,
                    false,
                );
                rx
            })
            .collect();
        let mut last = None;
        for (s, rx) in self.sentinels.iter().zip(asks) {
            let reply = rx.await.unwrap_or(Err(CacheError::Closed));
            if self.closed.load(Ordering::Relaxed) {
                return Err(CacheError::Closed);
            }
            let (host, port) = match reply.map(primary_address) {
                Ok(Some(a)) => a,
                Ok(None) => {
                    last = Some(format!(
                        "sentinel {} does not know a primary of that name",
                        s.address
                    ));
                    continue;
                }
                Err(e) => {
                    last = Some(format!("sentinel {}: {}", s.address, reason(&e)));
                    continue;
                }
            };
            match self.switch_to(host, port).await {
                Ok(store) => return Ok(store),
                Err(CacheError::Closed) => return Err(CacheError::Closed),
                Err(e) => last = Some(reason(&e)),
            }
        }
        Err(unavailable(last.unwrap_or_default()))
    }

    /// The store of the primary the sentinels name at `host:port` once its `ROLE` says
    /// master: the current one if it is there, else a new one that replaces it.
    async fn switch_to(&self, host: String, port: u16) -> CacheResult<Arc<Server>> {
        let known = self
            .current
            .lock()
            .as_ref()
            .filter(|c| c.host == host && c.port == port)
            .map(|c| c.store.clone());
        let fresh = known.is_none();
        let store = match known {
            Some(s) => s,
            None => Arc::new(Server::new(
                &RedisTarget {
                    url: format!(
                        "{}://{}:{port}",
                        if self.conn.tls.is_some() {
                            "rediss"
                        } else {
                            "redis"
                        },
                        bracket(&host)
                    ),
                    password: None,
                },
                self.command_timeout,
                self.connect_timeout,
                self.conn.tls.clone(),
                self.limits,
                &self.conn,
            )?),
        };
        let role = store.query::<redis::Value>(&redis::cmd("ROLE")).await;
        let primary = match &role {
            Ok(redis::Value::Array(v)) => {
                matches!(v.first(), Some(redis::Value::BulkString(b)) if b == b"master")
            }
            // A user without ROLE (least privilege) takes the sentinels' word for it.
            Err(CacheError::Redis(text)) => text.starts_with("NOPERM"),
            _ => false,
        };
        if !primary {
            if fresh {
                store.close();
            }
            return Err(match role {
                Err(e) => e,
                Ok(_) => unavailable(format!(
                    "the sentinels name {} as the primary, but it is not one (yet)",
                    address(&host, port)
                )),
            });
        }
        if !fresh {
            return Ok(store);
        }
        if self.closed.load(Ordering::Relaxed) {
            store.close();
            return Err(CacheError::Closed);
        }
        let old = self.current.lock().replace(Current {
            host,
            port,
            store: store.clone(),
            circuit: Arc::new(self.breaker.circuit()),
        });
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

/// `host` and `port` of a `SENTINEL GET-MASTER-ADDR-BY-NAME` reply (none: the name is not
/// monitored).
fn primary_address(reply: Resp) -> Option<(String, u16)> {
    let Resp::Array(parts) = reply else {
        return None;
    };
    let text = |r: &Resp| match r {
        Resp::Bulk(b) => String::from_utf8(b.clone()).ok(),
        Resp::Simple(s) => Some(s.clone()),
        _ => None,
    };
    match parts.as_slice() {
        [h, p] => Some((text(h)?, text(p)?.parse().ok()?)),
        _ => None,
    }
}

/// The text of a failure, without the prefix of its kind (it is wrapped in another).
fn reason(e: &CacheError) -> String {
    match e {
        CacheError::Unavailable(t) | CacheError::Redis(t) => t.clone(),
        e => e.to_string(),
    }
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
