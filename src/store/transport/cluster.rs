//! The Redis Cluster back end, on our own pipelined connections: one [`Pipeline`] per primary
//! (made on first use, with the cache's timeouts and limits, the seed URL's credentials and,
//! when the seeds are `rediss://`, TLS),
//! a slot map read with CLUSTER SLOTS from any node, and every command routed by its first
//! key's slot. The direct paths of the bridge queue on these pipelines from the JS thread
//! exactly as on one server: no task per command.
//!
//! Redirections are handled above the pipelines, in the completion callback, on the I/O task
//! that received the reply:
//! - `MOVED slot host:port`: the slot is moved in the map (a full refresh is scheduled) and
//!   the command is sent to the named node;
//! - `ASK slot host:port`: `ASKING` and the command, back to back on the named node;
//! - `TRYAGAIN`, `CLUSTERDOWN`, and a primary that cannot be reached (the command was never
//!   sent): a refresh, then the command again after a short back-off;
//! - `NOSCRIPT`: the script again as EVAL (a [`ScriptCall`]) on that node.
//!
//! Each command has at most [`MAX_REDIRECTS`] redirections and [`MAX_RETRIES`] retries, and
//! one deadline (commandTimeoutMs from its first sending) for all its sendings together.
//! The map is refreshed on MOVED, when a primary cannot be reached or times out, and every
//! [`REFRESH_EVERY`] while commands are routed.
//!
//! Each primary of the map has its own circuit breaker ([`Circuit`]), kept beside its
//! pipeline in the map (no lookup per command): a command is admitted by the breaker of the
//! node it is routed to (after routing, before it is handed to the pipeline), and its outcome
//! is recorded on the node that answered it (after a redirection, the last one) or failed to
//! (timed out, could not be reached). One dead primary so fails fast only the keys of its own
//! slots. A node that leaves the map (its slots moved to a promoted replica) drops its
//! breaker; a node new to the map starts closed.
//!
//! What a single Redis does in one script but a cluster cannot (keys in different slots) is
//! split by the services' store ops (`cluster_ops.rs`); multi-key UNLINK/DEL/EXISTS are split
//! by slot here; SCAN runs on every primary ([`ClusterStore::primaries`] +
//! [`ClusterStore::query_on`]). The pub/sub connection stays on redis-rs (one dedicated
//! connection, see [`ClusterStore::subscriber`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use redis::{Cmd, FromRedisValue};

use super::attempt::SharedAttempt;
use super::node::{address, timed_ping, NodePing, NodeStatus, MAX_NODES};
use super::pipeline::Pipeline;
use super::pipeline::{Done, Endpoint, Transport};
use super::server::subscribe_on;
use crate::config::{ConnOptions, Limits, RedisTarget};
use crate::error::{redact, CacheError, CacheResult};
use crate::names::slot::key_slot;
use crate::store::circuit::{Admit, Circuit, CircuitConfig, CircuitState};
use crate::store::codec::{decode, encode, Resp};
use crate::store::script::{is_noscript, Script, ScriptCall};

/// Redirections (MOVED, ASK) one command may follow.
pub const MAX_REDIRECTS: u8 = 5;
/// Retries of one command after TRYAGAIN, CLUSTERDOWN or an unreachable primary.
pub const MAX_RETRIES: u8 = 8;
/// The slot map is read again when it is older than this and a command is routed.
pub const REFRESH_EVERY: Duration = Duration::from_secs(5);
/// Two refreshes start at least this far apart (MOVED storms, a dead primary).
const MIN_REFRESH_GAP: Duration = Duration::from_millis(100);
const SLOTS: usize = 16384;
/// No node serves the slot.
const NONE: u16 = u16::MAX;

type Addr = (String, u16);

/// Which node a command goes to.
#[derive(Clone)]
enum Route {
    /// The primary serving the slot, as the map says.
    Slot(u16),
    /// This node.
    Node(Addr),
    /// This node, after `ASKING`.
    Ask(Addr),
    /// Any primary (commands without a key).
    Any,
}

/// What is sent: its encoding is kept for resending.
enum Payload {
    Cmd(Vec<u8>),
    /// EVALSHA; EVAL with the source after a NOSCRIPT.
    Call(ScriptCall),
}

/// A primary of the map: its pipeline and its circuit breaker, side by side.
struct MapNode {
    addr: Addr,
    pipe: Arc<Pipeline>,
    circuit: Circuit,
}

struct SlotMap {
    /// Index into `nodes` per slot ([`NONE`]: not served).
    slots: Vec<u16>,
    nodes: Vec<Arc<MapNode>>,
    at: Instant,
}

impl SlotMap {
    fn empty() -> SlotMap {
        SlotMap {
            slots: Vec::new(),
            nodes: Vec::new(),
            at: Instant::now(),
        }
    }

    fn node(&self, slot: u16) -> Option<&Arc<MapNode>> {
        let i = *self.slots.get(slot as usize)?;
        self.nodes.get(i as usize)
    }

    fn find(&self, addr: &Addr) -> Option<&Arc<MapNode>> {
        self.nodes.iter().find(|n| n.addr == *addr)
    }

    /// The nodes serving at least one slot.
    fn serving(&self) -> impl Iterator<Item = &Arc<MapNode>> {
        self.nodes
            .iter()
            .enumerate()
            .filter(|(i, _)| self.slots.contains(&(*i as u16)))
            .map(|(_, n)| n)
    }
}

struct Inner {
    seeds: Vec<Addr>,
    /// The first seed URL's credentials, or the options' (`username`, `password`), and the
    /// client name (`connectionName`): every node's connections use them.
    username: Option<String>,
    password: Option<String>,
    client_name: Option<String>,
    /// TLS to every node (`rediss://` seeds), learnt ones included: each node's certificate
    /// is checked against the host it is reached by (as CLUSTER SLOTS, MOVED or ASK name it),
    /// or `tls.servername`.
    tls: Option<Arc<crate::tls::Tls>>,
    secrets: Arc<Vec<String>>,
    command_timeout: Duration,
    connect_timeout: Duration,
    limits: Limits,
    /// How each node's circuit breaker is made.
    breaker: CircuitConfig,
    map: RwLock<SlotMap>,
    /// Every node's pipeline made so far (kept across refreshes).
    pipes: Mutex<HashMap<Addr, Arc<Pipeline>>>,
    refreshing: SharedAttempt<CacheResult<()>>,
    last_refresh: Mutex<Option<Instant>>,
    healthy: AtomicBool,
    closed: AtomicBool,
    /// MOVED and ASK followed, retries, map reads made (see [`ClusterStore::counts`]).
    moved: AtomicU64,
    asked: AtomicU64,
    retried: AtomicU64,
    refreshes: AtomicU64,
}

#[derive(Clone)]
pub struct ClusterStore {
    inner: Arc<Inner>,
}

/// `host` and `port` of a `redis[s]://[user:pass@]host:port[/…]` URL (already validated).
fn host_port(url: &str) -> Option<(String, u16)> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let hp = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (h, p) = hp.rsplit_once(':')?;
    let h = h.trim_start_matches('[').trim_end_matches(']');
    Some((h.to_string(), p.parse().ok()?))
}

/// A failure of a command the pipeline never sent (connect refused, or the link in back-off):
/// it is safe to send it again, elsewhere.
fn never_sent(e: &CacheError) -> bool {
    matches!(e, CacheError::Unavailable(text)
        if !text.starts_with("connection lost") && !text.contains("outbox is full"))
}

/// `slot host:port` of a MOVED or ASK error's text after its word.
fn redirect_target(rest: &str) -> Option<(u16, Addr)> {
    let mut parts = rest.split_whitespace();
    let slot = parts.next()?.parse().ok()?;
    let (h, p) = parts.next()?.rsplit_once(':')?;
    let h = h.trim_start_matches('[').trim_end_matches(']');
    Some((slot, (h.to_string(), p.parse().ok()?)))
}

impl Inner {
    /// How to connect to the node at `addr`.
    fn endpoint(&self, addr: &Addr) -> Endpoint {
        Endpoint {
            client_name: self.client_name.clone(),
            transport: match &self.tls {
                Some(tls) => Transport::Tls(tls.clone()),
                None => Transport::Tcp,
            },
            ..Endpoint::tcp(
                addr.0.clone(),
                addr.1,
                self.username.clone(),
                self.password.clone(),
                0,
            )
        }
    }

    /// The pipeline to `addr`, made on first use.
    fn pipe(&self, addr: &Addr) -> Arc<Pipeline> {
        let mut pipes = self.pipes.lock();
        if let Some(p) = pipes.get(addr) {
            return p.clone();
        }
        let secrets = self.secrets.clone();
        let p = Arc::new(Pipeline::new(
            self.endpoint(addr),
            self.command_timeout,
            self.connect_timeout,
            self.limits,
            Box::new(move |text| secrets.iter().fold(text, |t, s| redact(&t, Some(s)))),
        ));
        if self.closed.load(Ordering::Relaxed) {
            p.close();
        }
        pipes.insert(addr.clone(), p.clone());
        p
    }

    /// The map's node at `addr`, or a new one with its own breaker when it is new to the map.
    fn map_node(&self, map: &SlotMap, addr: &Addr) -> Arc<MapNode> {
        match map.find(addr) {
            Some(n) => n.clone(),
            None => Arc::new(MapNode {
                addr: addr.clone(),
                pipe: self.pipe(addr),
                circuit: self.breaker.circuit(),
            }),
        }
    }

    /// The node a command on `route` goes to now; none when the map names no node for its
    /// slot (it must be read first). A node outside the map (a seed, an ASK target the map
    /// does not know yet) comes with a breaker of its own that nothing else shares.
    fn resolve(self: &Arc<Self>, route: &Route) -> Option<Arc<MapNode>> {
        match route {
            Route::Node(a) | Route::Ask(a) => Some(self.map_node(&self.map.read(), a)),
            Route::Slot(slot) => {
                let map = self.map.read();
                let p = map.node(*slot).cloned();
                if map.at.elapsed() > REFRESH_EVERY {
                    drop(map);
                    self.schedule_refresh();
                }
                p
            }
            Route::Any => {
                let map = self.map.read();
                let first = map.nodes.first().cloned();
                first.or_else(|| self.seeds.first().map(|a| self.map_node(&map, a)))
            }
        }
    }

    /// Starts a refresh of the map in the background, unless one started less than
    /// [`MIN_REFRESH_GAP`] ago.
    fn schedule_refresh(self: &Arc<Self>) {
        {
            let mut last = self.last_refresh.lock();
            if last.is_some_and(|t| t.elapsed() < MIN_REFRESH_GAP) {
                return;
            }
            *last = Some(Instant::now());
        }
        let inner = self.clone();
        napi::bindgen_prelude::spawn(async move {
            let _ = inner.refresh().await;
        });
    }

    /// Reads the map again (one read at a time, shared by every caller meanwhile), waiting
    /// for it at most connectTimeoutMs + commandTimeoutMs.
    async fn refresh(self: &Arc<Self>) -> CacheResult<()> {
        if self.closed.load(Ordering::Relaxed) {
            return Err(CacheError::Closed);
        }
        *self.last_refresh.lock() = Some(Instant::now());
        let inner = self.clone();
        let bound = self.connect_timeout + self.command_timeout;
        self.refreshing
            .join(move || async move { inner.load_map().await }, bound)
            .await
            .unwrap_or(Err(CacheError::Timeout(bound.as_millis() as u64)))
    }

    /// CLUSTER SLOTS from the first node that answers (the nodes of the map, those whose
    /// link is up first, then the seeds), into the map.
    async fn load_map(self: &Arc<Self>) -> CacheResult<()> {
        self.refreshes.fetch_add(1, Ordering::Relaxed);
        let mut candidates: Vec<(Addr, Arc<Pipeline>)> = self
            .map
            .read()
            .nodes
            .iter()
            .map(|n| (n.addr.clone(), n.pipe.clone()))
            .collect();
        candidates.sort_by_key(|(_, p)| !p.is_healthy());
        for s in &self.seeds {
            if !candidates.iter().any(|(a, _)| a == s) {
                candidates.push((s.clone(), self.pipe(s)));
            }
        }
        let mut last = CacheError::Unavailable("Redis Cluster: no node answered".into());
        for (addr, pipe) in candidates {
            if self.closed.load(Ordering::Relaxed) {
                return Err(CacheError::Closed);
            }
            let deadline = Instant::now() + self.command_timeout;
            let reply = pipe
                .request_until(|b| encode(b, &[b"CLUSTER", b"SLOTS"]), deadline)
                .await;
            match reply.and_then(|r| self.parse_slots(r, &addr)) {
                Ok(map) => {
                    *self.map.write() = map;
                    return Ok(());
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// A CLUSTER SLOTS reply (from `from`) as a map. A node of the current map keeps its
    /// breaker; the others get a new one (closed).
    fn parse_slots(&self, reply: Resp, from: &Addr) -> CacheResult<SlotMap> {
        let Resp::Array(ranges) = reply else {
            return Err(CacheError::Redis(
                "unexpected reply to CLUSTER SLOTS".into(),
            ));
        };
        let mut map = SlotMap {
            slots: vec![NONE; SLOTS],
            nodes: Vec::new(),
            at: Instant::now(),
        };
        for range in ranges {
            let Resp::Array(parts) = range else { continue };
            let (Some(Resp::Int(lo)), Some(Resp::Int(hi)), Some(Resp::Array(master))) =
                (parts.first(), parts.get(1), parts.get(2))
            else {
                continue;
            };
            let host = match master.first() {
                Some(Resp::Bulk(h)) if !h.is_empty() => String::from_utf8_lossy(h).into_owned(),
                // an empty or unknown host: the node that answered
                _ => from.0.clone(),
            };
            let Some(Resp::Int(port)) = master.get(1) else {
                continue;
            };
            let Ok(port) = u16::try_from(*port) else {
                continue;
            };
            let addr = (host, port);
            let i = match map.nodes.iter().position(|n| n.addr == addr) {
                Some(i) => i,
                None => {
                    let node = self.map_node(&self.map.read(), &addr);
                    map.nodes.push(node);
                    map.nodes.len() - 1
                }
            };
            let (lo, hi) = (
                (*lo).clamp(0, SLOTS as i64 - 1),
                (*hi).clamp(0, SLOTS as i64 - 1),
            );
            for s in lo..=hi {
                map.slots[s as usize] = i as u16;
            }
        }
        if map.nodes.is_empty() {
            return Err(CacheError::Unavailable(
                "Redis Cluster: no primary serves slots".into(),
            ));
        }
        Ok(map)
    }

    /// MOVED: `slot` is served by `addr` from now on.
    fn moved(self: &Arc<Self>, slot: u16, addr: &Addr) {
        {
            let mut map = self.map.write();
            if !map.slots.is_empty() {
                let i = match map.nodes.iter().position(|n| n.addr == *addr) {
                    Some(i) => i,
                    None => {
                        let node = self.map_node(&map, addr);
                        map.nodes.push(node);
                        map.nodes.len() - 1
                    }
                };
                map.slots[slot as usize] = i as u16;
            }
        }
        self.schedule_refresh();
    }
}

/// One command on its way: sent, and sent again on a redirection or a retry.
struct Op {
    inner: Arc<Inner>,
    payload: Arc<Payload>,
    route: Route,
    /// The slot of its key, if it has one.
    slot: Option<u16>,
    deadline: Instant,
    redirects: u8,
    retries: u8,
    /// NOSCRIPT was answered: send the script's source.
    eval: bool,
    /// Wait for the façade's flush (only the first sending, from the JS thread).
    deferred: bool,
    /// Each sending is admitted by its node's breaker first (false for health checks, which
    /// go to Redis even while a breaker is open).
    gate: bool,
    /// The node of the last sending: its breaker records the outcome.
    node: Option<Arc<MapNode>>,
    /// The last sending was never sent (its node could not be reached) and is being retried:
    /// its failure is recorded when the command ends, or when a breaker refuses the retry.
    owed: bool,
    done: Done,
}

impl Op {
    fn send(mut self) {
        let inner = self.inner.clone();
        if inner.closed.load(Ordering::Relaxed) {
            (self.done)(Err(CacheError::Closed));
            return;
        }
        let Some(node) = inner.resolve(&self.route) else {
            // no map yet (or the slot is not served): read it, then route
            napi::bindgen_prelude::spawn(async move {
                let refreshed =
                    match tokio::time::timeout_at(self.deadline.into(), self.inner.refresh()).await
                    {
                        Ok(r) => r,
                        Err(_) => Err(CacheError::Timeout(
                            self.inner.command_timeout.as_millis() as u64
                        )),
                    };
                let served = matches!(&self.route, Route::Slot(s) if self.inner.map.read().node(*s).is_some());
                match refreshed {
                    Ok(()) if served => {
                        self.deferred = false;
                        self.send();
                    }
                    Ok(()) => {
                        self.inner.healthy.store(false, Ordering::Relaxed);
                        (self.done)(Err(CacheError::Unavailable(
                            "Redis Cluster: no primary serves the slot".into(),
                        )))
                    }
                    Err(e) => {
                        self.inner.healthy.store(false, Ordering::Relaxed);
                        (self.done)(Err(e))
                    }
                }
            });
            return;
        };
        if self.gate && node.circuit.admit() == Admit::Refuse {
            if self.owed {
                // the retry ends here: the node it could not reach is owed its failure
                if let Some(n) = &self.node {
                    n.circuit.failure();
                }
            }
            // The slot may have moved to a promoted replica meanwhile: read the map again
            // (at most one read per MIN_REFRESH_GAP), so a failover is followed while the dead
            // node's breaker refuses its keys.
            if let Route::Slot(_) = self.route {
                inner.schedule_refresh();
            }
            return (self.done)(Err(CacheError::CircuitOpen));
        }
        let pipe = node.pipe.clone();
        self.node = Some(node);
        let (deadline, deferred) = (self.deadline, self.deferred);
        if matches!(self.route, Route::Ask(_)) {
            pipe.submit_until(
                |b| encode(b, &[b"ASKING"]),
                Box::new(|_| {}),
                deadline,
                deferred,
            );
        }
        let payload = self.payload.clone();
        let eval = self.eval;
        pipe.submit_until(
            |b| match payload.as_ref() {
                Payload::Cmd(bytes) => b.extend_from_slice(bytes),
                Payload::Call(call) => call.write(b, eval),
            },
            Box::new(move |r| self.on_reply(r)),
            deadline,
            deferred,
        );
    }

    /// Feeds `r` to the breaker of the node of the last sending.
    fn record<T>(&self, r: &CacheResult<T>) {
        if let Some(n) = &self.node {
            n.circuit.record(r);
        }
    }

    /// On the I/O task of the node that answered.
    fn on_reply(mut self, r: CacheResult<Resp>) {
        self.deferred = false;
        // The node's outcome: any answer (a redirection, an error reply) shows its link
        // works. A command that was never sent is retried, and recorded when it ends.
        self.owed = matches!(&r, Err(e) if never_sent(e));
        if !self.owed {
            self.record(&r);
        }
        let inner = self.inner.clone();
        let e = match r {
            Ok(v) => {
                inner.healthy.store(true, Ordering::Relaxed);
                return (self.done)(Ok(v));
            }
            Err(e) => e,
        };
        match &e {
            CacheError::Redis(text) => {
                inner.healthy.store(true, Ordering::Relaxed);
                let redirect = text
                    .strip_prefix("MOVED ")
                    .map(|t| (false, t))
                    .or_else(|| text.strip_prefix("ASK ").map(|t| (true, t)))
                    .and_then(|(ask, t)| redirect_target(t).map(|x| (ask, x)));
                if let Some((ask, (slot, addr))) = redirect {
                    if self.redirects >= MAX_REDIRECTS {
                        return (self.done)(Err(e));
                    }
                    self.redirects += 1;
                    if ask {
                        inner.asked.fetch_add(1, Ordering::Relaxed);
                        self.route = Route::Ask(addr);
                    } else {
                        inner.moved.fetch_add(1, Ordering::Relaxed);
                        inner.moved(slot, &addr);
                        self.route = Route::Node(addr);
                    }
                    return self.send();
                }
                if is_noscript(text) && !self.eval {
                    if let Payload::Cmd(_) = self.payload.as_ref() {
                        return (self.done)(Err(e));
                    }
                    self.eval = true;
                    return self.send();
                }
                if text.starts_with("TRYAGAIN") || text.starts_with("CLUSTERDOWN") {
                    return self.retry(e, false);
                }
                (self.done)(Err(e))
            }
            // never sent (connect refused or in back-off): safe to send again elsewhere
            CacheError::Unavailable(_) if never_sent(&e) => {
                inner.healthy.store(false, Ordering::Relaxed);
                self.retry(e, true)
            }
            CacheError::Unavailable(_) | CacheError::Timeout(_) => {
                inner.healthy.store(false, Ordering::Relaxed);
                if !matches!(self.route, Route::Any) {
                    inner.schedule_refresh();
                }
                (self.done)(Err(e))
            }
            _ => (self.done)(Err(e)),
        }
    }

    /// Sends the command again after a short back-off (and a map refresh when `refresh`),
    /// while its deadline allows; else answers `e`.
    fn retry(mut self, e: CacheError, refresh: bool) {
        let backoff = Duration::from_millis((20u64 << self.retries.min(3)).min(200));
        if self.retries >= MAX_RETRIES || Instant::now() + backoff >= self.deadline {
            let r = Err(e);
            self.record(&r);
            return (self.done)(r);
        }
        self.retries += 1;
        self.inner.retried.fetch_add(1, Ordering::Relaxed);
        if refresh {
            self.inner.schedule_refresh();
            // back to the map's node for the slot (it may have changed)
            if let Route::Node(_) | Route::Ask(_) = self.route {
                if let Some(slot) = self.slot {
                    self.route = Route::Slot(slot);
                }
            }
        }
        napi::bindgen_prelude::spawn(async move {
            tokio::time::sleep(backoff).await;
            self.send();
        });
    }
}

impl ClusterStore {
    pub fn new(
        nodes: &[RedisTarget],
        command_timeout: Duration,
        connect_timeout: Duration,
        limits: Limits,
        conn: &ConnOptions,
        breaker: CircuitConfig,
    ) -> CacheResult<ClusterStore> {
        let secrets: Vec<String> = nodes
            .iter()
            .filter_map(|n| n.password.clone())
            .flat_map(|p| [crate::config::percent_decode(&p), p])
            .chain(conn.secrets())
            .filter(|s| !s.is_empty())
            .collect();
        let invalid =
            || CacheError::InvalidArg("invalid cluster node URL (the URL is not shown)".into());
        let first = nodes.first().ok_or_else(invalid)?;
        let info = redis::Client::open(first.url.as_str())
            .map_err(|_| invalid())?
            .get_connection_info()
            .clone();
        let settings = info.redis_settings();
        let seeds: Vec<Addr> = nodes.iter().filter_map(|n| host_port(&n.url)).collect();
        if seeds.len() != nodes.len() {
            return Err(invalid());
        }
        Ok(ClusterStore {
            inner: Arc::new(Inner {
                seeds,
                username: conn
                    .username
                    .clone()
                    .or_else(|| settings.username().map(str::to_string)),
                password: conn
                    .password
                    .clone()
                    .or_else(|| settings.password().map(str::to_string)),
                client_name: conn.name.clone(),
                tls: conn.tls.clone(),
                secrets: Arc::new(secrets),
                command_timeout,
                connect_timeout,
                limits,
                breaker,
                map: RwLock::new(SlotMap::empty()),
                pipes: Mutex::new(HashMap::new()),
                refreshing: SharedAttempt::default(),
                last_refresh: Mutex::new(None),
                healthy: AtomicBool::new(true),
                closed: AtomicBool::new(false),
                moved: AtomicU64::new(0),
                asked: AtomicU64::new(0),
                retried: AtomicU64::new(0),
                refreshes: AtomicU64::new(0),
            }),
        })
    }

    pub fn is_healthy(&self) -> bool {
        self.inner.healthy.load(Ordering::Relaxed)
    }

    pub fn close(&self) {
        self.inner.closed.store(true, Ordering::SeqCst);
        let pipes: Vec<Arc<Pipeline>> = self.inner.pipes.lock().values().cloned().collect();
        for p in pipes {
            p.close();
        }
    }

    /// A command not yet sent (`.send()` starts it), answered within commandTimeoutMs from
    /// now; `gate`: each sending is admitted by its node's breaker first.
    fn op(
        &self,
        payload: Payload,
        route: Route,
        slot: Option<u16>,
        deferred: bool,
        gate: bool,
        done: Done,
    ) -> Op {
        Op {
            inner: self.inner.clone(),
            payload: Arc::new(payload),
            route,
            slot,
            deadline: self.deadline(),
            redirects: 0,
            retries: 0,
            eval: false,
            deferred,
            gate,
            node: None,
            owed: false,
            done,
        }
    }

    /// When a command started now must be answered: commandTimeoutMs from now.
    pub fn deadline(&self) -> Instant {
        Instant::now() + self.inner.command_timeout
    }

    /// Queues `args` (a command, keys already prefixed) on the primary of `route_key`'s slot,
    /// sent by the next [`flush`](Self::flush); `done` gets the final reply (after any
    /// redirection). Never blocks.
    pub fn submit_deferred(&self, route_key: &[u8], args: &[&[u8]], done: Done) {
        let mut bytes = Vec::with_capacity(args.iter().map(|a| a.len() + 16).sum());
        encode(&mut bytes, args);
        let slot = key_slot(route_key);
        self.op(
            Payload::Cmd(bytes),
            Route::Slot(slot),
            Some(slot),
            true,
            true,
            done,
        )
        .send();
    }

    /// Queues a script call on the primary of its first key's slot, sent by the next
    /// [`flush`](Self::flush) (EVAL after a NOSCRIPT).
    pub fn submit_script_deferred(&self, call: ScriptCall, done: Done) {
        let slot = call.first_key().map(key_slot);
        let route = slot.map_or(Route::Any, Route::Slot);
        self.op(Payload::Call(call), route, slot, true, true, done)
            .send();
    }

    /// [`submit_script_deferred`](Self::submit_script_deferred), sent at once and answered by
    /// `deadline` at the latest: the second step of one call keeps the call's deadline (see
    /// [`Self::deadline`]).
    pub fn submit_script_until(&self, call: ScriptCall, done: Done, deadline: Instant) {
        let slot = call.first_key().map(key_slot);
        let route = slot.map_or(Route::Any, Route::Slot);
        let mut op = self.op(Payload::Call(call), route, slot, false, true, done);
        op.deadline = deadline;
        op.send();
    }

    /// Sends what the deferred submits queued, on every node's pipeline (not only the map's
    /// primaries: a command routed just before a refresh may wait on a node it no longer has).
    pub fn flush(&self) {
        for p in self.inner.pipes.lock().values() {
            p.flush();
        }
    }

    /// (writes, commands, refused) summed over every node's pipeline.
    pub fn transport_counts(&self) -> (u64, u64, u64) {
        self.inner
            .pipes
            .lock()
            .values()
            .fold((0, 0, 0), |(w, c, r), p| {
                let (pw, pc) = p.transport_counts();
                (w + pw, c + pc, r + p.refused_count())
            })
    }

    /// One script call (EVAL after a NOSCRIPT), routed by its first key.
    pub async fn call(&self, call: ScriptCall) -> CacheResult<Resp> {
        let slot = call.first_key().map(key_slot);
        let route = slot.map_or(Route::Any, Route::Slot);
        self.request(Payload::Call(call), route, slot, true).await
    }

    /// (MOVED followed, ASK followed, retries, reads of the slot map) so far.
    pub fn counts(&self) -> [u64; 4] {
        let i = &self.inner;
        [&i.moved, &i.asked, &i.retried, &i.refreshes].map(|c| c.load(Ordering::Relaxed))
    }

    /// One command, answered after any redirection; `gate` as in [`ClusterStore::op`].
    async fn request(
        &self,
        payload: Payload,
        route: Route,
        slot: Option<u16>,
        gate: bool,
    ) -> CacheResult<Resp> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.op(
            payload,
            route,
            slot,
            false,
            gate,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        )
        .send();
        rx.await.unwrap_or(Err(CacheError::Closed))
    }

    pub async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> CacheResult<T> {
        let args: Vec<&[u8]> = cmd
            .args_iter()
            .map(|a| match a {
                redis::Arg::Simple(b) => b,
                _ => &b"0"[..],
            })
            .collect();
        let name = args
            .first()
            .map(|n| n.to_ascii_uppercase())
            .unwrap_or_default();
        let keyless = matches!(name.as_slice(), b"PING" | b"CLUSTER" | b"INFO" | b"SCRIPT");
        let multi = matches!(name.as_slice(), b"UNLINK" | b"DEL" | b"EXISTS" | b"TOUCH");
        if multi && args.len() > 2 {
            // keys of different slots: one command per slot, the counts summed
            let mut by_slot: Vec<(u16, Vec<&[u8]>)> = Vec::new();
            for k in &args[1..] {
                let s = key_slot(k);
                match by_slot.iter_mut().find(|(x, _)| *x == s) {
                    Some((_, ks)) => ks.push(k),
                    None => by_slot.push((s, vec![args[0], k])),
                }
            }
            if by_slot.len() > 1 {
                let mut n: i64 = 0;
                for (slot, part) in by_slot {
                    let mut bytes = Vec::new();
                    encode(&mut bytes, &part);
                    let r = self
                        .request(Payload::Cmd(bytes), Route::Slot(slot), Some(slot), true)
                        .await?;
                    n += decode::<i64>(r)?;
                }
                return decode(Resp::Int(n));
            }
        }
        let bytes = cmd.get_packed_command();
        let (route, slot) = match args.get(1) {
            Some(k) if !keyless => {
                let s = key_slot(k);
                (Route::Slot(s), Some(s))
            }
            _ => (Route::Any, None),
        };
        decode(self.request(Payload::Cmd(bytes), route, slot, true).await?)
    }

    /// A script routed by its first key (EVAL after a NOSCRIPT).
    pub async fn script<T: FromRedisValue>(
        &self,
        script: &'static Script,
        keys: &[&str],
        args: &[&str],
    ) -> CacheResult<T> {
        decode(self.call(script.call(keys, args)).await?)
    }

    /// The primaries serving slots now (the map read again first).
    pub async fn primaries(&self) -> CacheResult<Vec<(String, u16)>> {
        let refreshed = self.inner.refresh().await;
        let nodes: Vec<Addr> = self
            .inner
            .map
            .read()
            .serving()
            .map(|n| n.addr.clone())
            .collect();
        if nodes.is_empty() {
            refreshed?;
            return Err(CacheError::Unavailable(
                "Redis Cluster: no primary serves slots".into(),
            ));
        }
        Ok(nodes)
    }

    /// The primaries serving slots in the map now, each with whether its connection is up
    /// and its breaker's state.
    pub fn node_states(&self) -> Vec<NodeStatus> {
        self.inner
            .map
            .read()
            .serving()
            .take(MAX_NODES)
            .map(|n| NodeStatus {
                address: address(&n.addr.0, n.addr.1),
                role: "primary",
                up: n.pipe.is_healthy(),
                circuit: n.circuit.state(),
            })
            .collect()
    }

    /// The breakers' states of the primaries serving slots in the map now (none before the
    /// map was first read).
    pub fn circuit_states(&self) -> Vec<CircuitState> {
        self.inner
            .map
            .read()
            .serving()
            .map(|n| n.circuit.state())
            .collect()
    }

    /// PING on any primary, even while its breaker is open (a health check must see, and
    /// bring about, the recovery); its outcome feeds that node's breaker.
    pub async fn ping(&self) -> CacheResult<String> {
        let mut bytes = Vec::new();
        encode(&mut bytes, &[b"PING"]);
        decode(
            self.request(Payload::Cmd(bytes), Route::Any, None, false)
                .await?,
        )
    }

    /// PING on `node`, even while its breaker is open; its outcome feeds that breaker.
    async fn ping_on(&self, node: &Addr) -> CacheResult<String> {
        let mut bytes = Vec::new();
        encode(&mut bytes, &[b"PING"]);
        let route = Route::Node(node.clone());
        decode(
            self.request(Payload::Cmd(bytes), route, None, false)
                .await?,
        )
    }

    /// PING on every primary serving slots (the map read again first), concurrently, each
    /// past and feeding its node's breaker.
    pub async fn ping_primaries(&self) -> CacheResult<Vec<NodePing>> {
        let mut nodes = self.primaries().await?;
        nodes.truncate(MAX_NODES);
        let pings: Vec<_> = nodes
            .into_iter()
            .map(|node| {
                let this = self.clone();
                let (tx, rx) = tokio::sync::oneshot::channel();
                napi::bindgen_prelude::spawn(async move {
                    let ping = this.ping_on(&node);
                    let _ = tx.send(timed_ping(address(&node.0, node.1), "primary", ping).await);
                });
                rx
            })
            .collect();
        let mut out = Vec::with_capacity(pings.len());
        for p in pings {
            if let Ok(p) = p.await {
                out.push(p);
            }
        }
        Ok(out)
    }

    /// One command on one node.
    pub async fn query_on<T: FromRedisValue>(
        &self,
        node: &(String, u16),
        cmd: &Cmd,
    ) -> CacheResult<T> {
        let bytes = cmd.get_packed_command();
        decode(
            self.request(Payload::Cmd(bytes), Route::Node(node.clone()), None, true)
                .await?,
        )
    }

    /// PUBLISH on the "home" primary: the one serving the slot of `home_key` (the first
    /// channel, prefixed), where every instance's subscriber also connects. Classic PUBLISH
    /// reaches every node over the cluster bus anyway; publishing and subscribing on one node
    /// keeps a publisher's messages in order and makes the receiver count (which a node gives
    /// for its own subscribers only) exact.
    pub async fn publish(&self, home_key: &str, channel: &str, payload: &str) -> CacheResult<u32> {
        let mut bytes = Vec::new();
        encode(
            &mut bytes,
            &[b"PUBLISH", channel.as_bytes(), payload.as_bytes()],
        );
        let slot = key_slot(home_key);
        decode(
            self.request(Payload::Cmd(bytes), Route::Slot(slot), Some(slot), true)
                .await?,
        )
    }

    /// The primary serving `key`'s slot now (the map read again first).
    async fn primary_of(&self, key: &str) -> CacheResult<(String, u16)> {
        let _ = self.inner.refresh().await;
        let map = self.inner.map.read();
        let i = map
            .slots
            .get(key_slot(key) as usize)
            .copied()
            .unwrap_or(NONE);
        map.nodes
            .get(i as usize)
            .map(|n| n.addr.clone())
            .ok_or_else(|| {
                CacheError::Unavailable("Redis Cluster: no primary serves the slot".into())
            })
    }

    /// A pub/sub connection (redis-rs) to the home primary of `channels[0]` (see
    /// [`ClusterStore::publish`]), else to any other node (the primaries, then the seeds):
    /// any node delivers every message.
    pub async fn subscriber(&self, channels: &[String]) -> CacheResult<redis::aio::PubSub> {
        let inner = &self.inner;
        let mut nodes = Vec::new();
        if let Some(first) = channels.first() {
            if let Ok(home) = self.primary_of(first).await {
                nodes.push(home);
            }
        }
        for p in self.primaries().await.unwrap_or_default() {
            if !nodes.contains(&p) {
                nodes.push(p);
            }
        }
        for s in &inner.seeds {
            if !nodes.contains(s) {
                nodes.push(s.clone());
            }
        }
        let mut last = CacheError::Unavailable("Redis Cluster: no node to subscribe on".into());
        for (host, port) in nodes {
            if inner.closed.load(Ordering::Relaxed) {
                return Err(CacheError::Closed);
            }
            let endpoint = inner.endpoint(&(host, port));
            let settings = redis::RedisConnectionInfo::default();
            match subscribe_on(
                &endpoint,
                &settings,
                channels,
                inner.connect_timeout,
                inner.limits.max_reply,
                &inner.secrets,
            )
            .await
            {
                Ok(ps) => return Ok(ps),
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port_of_a_node_url() {
        assert_eq!(
            host_port("redis://127.0.0.1:7000"),
            Some(("127.0.0.1".into(), 7000))
        );
        assert_eq!(host_port("redis://:pw@h:7001/0"), Some(("h".into(), 7001)));
        assert_eq!(host_port("redis://h"), None);
    }

    #[test]
    fn redirections_name_their_slot_and_node() {
        assert_eq!(
            redirect_target("3999 127.0.0.1:6381"),
            Some((3999, ("127.0.0.1".into(), 6381)))
        );
        assert_eq!(
            redirect_target("12 [::1]:7000"),
            Some((12, ("::1".into(), 7000)))
        );
        assert_eq!(redirect_target("x 127.0.0.1:1"), None);
    }

    #[test]
    fn a_script_call_is_routed_by_its_first_key() {
        static LUA: std::sync::LazyLock<crate::store::script::Script> =
            std::sync::LazyLock::new(|| crate::store::script::Script::new("return 1"));
        let call = ScriptCall::new(&LUA, &["lock:{a}", "fence"], &["x"]);
        assert_eq!(call.first_key(), Some(b"lock:{a}".to_vec()));
        assert_eq!(key_slot(call.first_key().unwrap()), key_slot("a"));
        assert_eq!(ScriptCall::new(&LUA, &[], &["0", "x"]).first_key(), None);
    }
}
