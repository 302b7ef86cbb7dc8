//! The Redis Cluster back end (redis-rs `cluster-async`): commands and scripts are routed by
//! their first key (MOVED/ASK and topology refreshes are redis-rs' job), every one bounded by
//! commandTimeoutMs.
//!
//! What a single Redis does in one script but a cluster cannot (keys in different slots) is
//! split by the services' store ops; see the README's "Redis Cluster and Sentinel" section.
//! Here: SCAN on every primary ([`ClusterStore::primaries`] + [`ClusterStore::query_on`]), and
//! the pub/sub connection, which may be on any node (PUBLISH reaches every node of a cluster).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{Cmd, ErrorKind, FromRedisValue, RedisError, Script, Value};

use super::topology::SharedAttempt;
use crate::config::RedisTarget;
use crate::error::{redact, CacheError, CacheResult};

pub struct ClusterStore {
    client: ClusterClient,
    conn: parking_lot::Mutex<Option<ClusterConnection>>,
    /// The connect in progress, shared by every call that needs the connection meanwhile.
    connecting: SharedAttempt<CacheResult<ClusterConnection>>,
    seeds: Vec<(String, u16)>,
    /// `user:pass@` of the first seed URL (or empty), for direct connections to nodes.
    userinfo: String,
    secrets: Vec<String>,
    command_timeout: Duration,
    connect_timeout: Duration,
    healthy: AtomicBool,
    closed: AtomicBool,
}

/// A redis-rs error as ours, its text scrubbed of `secrets`.
fn classify(e: RedisError, secrets: &[String], command_timeout: Duration) -> CacheError {
    if e.is_timeout() {
        return CacheError::Timeout(command_timeout.as_millis() as u64);
    }
    let text = secrets
        .iter()
        .fold(e.to_string(), |t, s| redact(&t, Some(s)));
    match e.kind() {
        ErrorKind::Server(_) | ErrorKind::Extension | ErrorKind::UnexpectedReturnType => {
            CacheError::Redis(text)
        }
        _ => CacheError::Unavailable(text),
    }
}

/// `host` and `port` of a `redis://[user:pass@]host:port[/…]` URL (already validated).
fn host_port(url: &str) -> Option<(String, u16)> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let hp = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (h, p) = hp.rsplit_once(':')?;
    let h = h.trim_start_matches('[').trim_end_matches(']');
    Some((h.to_string(), p.parse().ok()?))
}

/// `user:pass@` of a URL, or empty.
fn userinfo(url: &str) -> String {
    let rest = url.split_once("://").map_or("", |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    authority
        .rsplit_once('@')
        .map(|(u, _)| format!("{u}@"))
        .unwrap_or_default()
}

impl ClusterStore {
    pub fn new(
        nodes: &[RedisTarget],
        command_timeout: Duration,
        connect_timeout: Duration,
    ) -> CacheResult<ClusterStore> {
        let secrets: Vec<String> = nodes
            .iter()
            .filter_map(|n| n.password.clone())
            .flat_map(|p| [crate::config::percent_decode(&p), p])
            .filter(|s| !s.is_empty())
            .collect();
        let client = ClusterClientBuilder::new(nodes.iter().map(|n| n.url.as_str()))
            .connection_timeout(connect_timeout)
            .response_timeout(command_timeout)
            // a few quick retries ride out MOVED/ASK and a replica's promotion; the whole
            // command stays bounded by commandTimeoutMs (see `bounded`)
            .retries(6)
            .min_retry_wait(20)
            .max_retry_wait(250)
            .build()
            .map_err(|_| {
                CacheError::InvalidArg("invalid cluster node URL (the URL is not shown)".into())
            })?;
        Ok(ClusterStore {
            client,
            conn: parking_lot::Mutex::new(None),
            connecting: SharedAttempt::default(),
            seeds: nodes.iter().filter_map(|n| host_port(&n.url)).collect(),
            userinfo: nodes.first().map(|n| userinfo(&n.url)).unwrap_or_default(),
            secrets,
            command_timeout,
            connect_timeout,
            healthy: AtomicBool::new(true),
            closed: AtomicBool::new(false),
        })
    }

    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.conn.lock().take();
    }

    fn scrub(&self, text: &str) -> String {
        self.secrets
            .iter()
            .fold(text.to_string(), |t, s| redact(&t, Some(s)))
    }

    fn map_err(&self, e: RedisError) -> CacheError {
        let e = classify(e, &self.secrets, self.command_timeout);
        self.healthy
            .store(matches!(e, CacheError::Redis(_)), Ordering::Relaxed);
        e
    }

    /// The cluster connection, created on first use. Concurrent first calls share one
    /// connect attempt, and each waits for it at most connectTimeoutMs.
    async fn connection(&self) -> CacheResult<ClusterConnection> {
        if self.closed.load(Ordering::Relaxed) {
            return Err(CacheError::Closed);
        }
        if let Some(c) = self.conn.lock().as_ref() {
            return Ok(c.clone());
        }
        let client = self.client.clone();
        let secrets = self.secrets.clone();
        let (connect_timeout, command_timeout) = (self.connect_timeout, self.command_timeout);
        let attempt = move || async move {
            match tokio::time::timeout(connect_timeout, client.get_async_connection()).await {
                Err(_) => Err(CacheError::Timeout(connect_timeout.as_millis() as u64)),
                Ok(Err(e)) => Err(classify(e, &secrets, command_timeout)),
                Ok(Ok(c)) => Ok(c),
            }
        };
        let result = self
            .connecting
            .join(attempt, self.connect_timeout)
            .await
            .unwrap_or(Err(CacheError::Timeout(
                self.connect_timeout.as_millis() as u64
            )));
        match result {
            Ok(c) => {
                if self.closed.load(Ordering::Relaxed) {
                    return Err(CacheError::Closed);
                }
                Ok(self.conn.lock().get_or_insert(c).clone())
            }
            Err(e) => {
                self.healthy
                    .store(matches!(e, CacheError::Redis(_)), Ordering::Relaxed);
                Err(e)
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

    pub async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> CacheResult<T> {
        let mut conn = self.connection().await?;
        self.bounded(cmd.query_async(&mut conn)).await
    }

    /// EVALSHA routed by the first key (SCRIPT LOAD on NOSCRIPT).
    pub async fn script<T: FromRedisValue>(
        &self,
        script: &Script,
        keys: &[&str],
        args: &[&str],
    ) -> CacheResult<T> {
        let mut inv = script.prepare_invoke();
        for k in keys {
            inv.key(*k);
        }
        for a in args {
            inv.arg(*a);
        }
        let mut conn = self.connection().await?;
        self.bounded(inv.invoke_async(&mut conn)).await
    }

    /// The primaries serving slots now, from CLUSTER SLOTS.
    pub async fn primaries(&self) -> CacheResult<Vec<(String, u16)>> {
        let slots: Vec<Value> = self.query(redis::cmd("CLUSTER").arg("SLOTS")).await?;
        let mut out: Vec<(String, u16)> = Vec::new();
        for range in slots {
            let Value::Array(parts) = range else { continue };
            let Some(Value::Array(master)) = parts.get(2) else {
                continue;
            };
            let host = match master.first() {
                Some(v) => String::from_redis_value(v.clone()).unwrap_or_default(),
                None => continue,
            };
            let port = match master.get(1) {
                Some(v) => u16::from_redis_value(v.clone()).unwrap_or(0),
                None => continue,
            };
            if !host.is_empty() && port != 0 && !out.iter().any(|(h, p)| *h == host && *p == port) {
                out.push((host, port));
            }
        }
        if out.is_empty() {
            return Err(CacheError::Unavailable(
                "Redis Cluster: no primary serves slots".into(),
            ));
        }
        Ok(out)
    }

    /// One command on one node.
    pub async fn query_on<T: FromRedisValue>(
        &self,
        node: &(String, u16),
        cmd: &Cmd,
    ) -> CacheResult<T> {
        let mut conn = self.connection().await?;
        let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
            host: node.0.clone(),
            port: node.1,
        });
        let v = self
            .bounded(conn.route_command(cmd.clone(), routing))
            .await?;
        T::from_redis_value(v).map_err(|e| CacheError::Redis(format!("unexpected reply: {e}")))
    }

    /// PUBLISH on the "home" primary: the one serving the slot of `home_key` (the first
    /// channel, prefixed), where every instance's subscriber also connects. Classic PUBLISH
    /// reaches every node over the cluster bus anyway; publishing and subscribing on one node
    /// keeps a publisher's messages in order and makes the receiver count (which a node gives
    /// for its own subscribers only) exact.
    pub async fn publish(&self, home_key: &str, channel: &str, payload: &str) -> CacheResult<u32> {
        let mut conn = self.connection().await?;
        let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(
            Route::with_key(home_key, SlotAddr::Master),
        ));
        let mut cmd = redis::cmd("PUBLISH");
        cmd.arg(channel).arg(payload);
        let v = self.bounded(conn.route_command(cmd, routing)).await?;
        u32::from_redis_value(v).map_err(|e| CacheError::Redis(format!("unexpected reply: {e}")))
    }

    /// The primary serving `key`'s slot now (CLUSTER KEYSLOT + CLUSTER SLOTS).
    async fn primary_of(&self, key: &str) -> CacheResult<(String, u16)> {
        let slot: i64 = self
            .query(redis::cmd("CLUSTER").arg("KEYSLOT").arg(key))
            .await?;
        let slots: Vec<Value> = self.query(redis::cmd("CLUSTER").arg("SLOTS")).await?;
        for range in slots {
            let Value::Array(parts) = range else { continue };
            let (Some(from), Some(to), Some(Value::Array(master))) =
                (parts.first(), parts.get(1), parts.get(2))
            else {
                continue;
            };
            let from = i64::from_redis_value(from.clone()).unwrap_or(-1);
            let to = i64::from_redis_value(to.clone()).unwrap_or(-1);
            if slot < from || slot > to {
                continue;
            }
            let host = master
                .first()
                .and_then(|v| String::from_redis_value(v.clone()).ok());
            let port = master
                .get(1)
                .and_then(|v| u16::from_redis_value(v.clone()).ok());
            if let (Some(h), Some(p)) = (host, port) {
                return Ok((h, p));
            }
        }
        Err(CacheError::Unavailable(
            "Redis Cluster: no primary serves the slot".into(),
        ))
    }

    /// A pub/sub connection to the home primary of `channels[0]` (see [`ClusterStore::publish`]),
    /// else to any other node (the primaries, then the seeds): any node delivers every message.
    pub async fn subscriber(&self, channels: &[String]) -> CacheResult<redis::aio::PubSub> {
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
        for s in &self.seeds {
            if !nodes.contains(s) {
                nodes.push(s.clone());
            }
        }
        let mut last = CacheError::Unavailable("Redis Cluster: no node to subscribe on".into());
        for (host, port) in nodes {
            if self.closed.load(Ordering::Relaxed) {
                return Err(CacheError::Closed);
            }
            let host = if host.contains(':') {
                format!("[{host}]")
            } else {
                host
            };
            let url = format!("redis://{}{host}:{port}", self.userinfo);
            let connect = async {
                let client = redis::Client::open(url.as_str())?;
                let mut ps = client.get_async_pubsub().await?;
                ps.subscribe(channels).await?;
                Ok::<_, RedisError>(ps)
            };
            match tokio::time::timeout(self.connect_timeout, connect).await {
                Err(_) => last = CacheError::Timeout(self.connect_timeout.as_millis() as u64),
                Ok(Err(e)) => last = CacheError::Unavailable(self.scrub(&e.to_string())),
                Ok(Ok(ps)) => return Ok(ps),
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
}
