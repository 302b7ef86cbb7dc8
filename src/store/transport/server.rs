//! One Redis server: the pipelined connection every command goes on (TCP, TLS or a Unix
//! socket, from a `redis://`, `rediss://` or `unix://` URL), scripts on it (EVAL after a
//! NOSCRIPT), and dedicated pub/sub connections made with the same transport. Every command is
//! bounded by `commandTimeoutMs`; while the connection is down commands fail fast instead of
//! queueing, so nothing is replayed when Redis returns.
//!
//! redis-rs parses the URL, runs the pub/sub subscriber (`redis::aio::PubSub`, on a stream
//! opened here) and builds commands (`Cmd`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::{Cmd, ConnectionAddr, FromRedisValue, RedisConnectionInfo, RedisError};

use super::bounded::BoundedResp;
use super::node::address;
use super::pipeline::{open_stream, Endpoint, Pipeline, Transport};
use crate::config::{percent_decode, ConnOptions, Limits, RedisTarget};
use crate::error::{redact, CacheError, CacheResult};
use crate::store::codec::decode;
use crate::store::script::{is_noscript, Script};
use crate::tls::{Tls, TlsSettings};

/// Appended to `connectionName` on a pub/sub connection (`CLIENT LIST` tells them apart).
pub const SUBSCRIBER_SUFFIX: &str = ":sub";

pub struct Server {
    /// Where the pipeline and the subscribers connect.
    endpoint: Endpoint,
    /// What redis-rs' pub/sub client is told of a subscriber connection (its RESP version;
    /// the handshake is ours, see [`open_stream`]).
    settings: RedisConnectionInfo,
    secrets: Arc<Vec<String>>,
    command_timeout: Duration,
    connect_timeout: Duration,
    /// `maxReplyBytes`, for the subscribers (the pipeline has its own copy).
    max_reply: usize,
    closed: AtomicBool,
    pipeline: Pipeline,
}

impl Server {
    /// `tls` (the `tls` options) applies to a `rediss://` server, which without it trusts the
    /// web PKI roots. A TLS URL never falls back to plaintext. `limits` bound the pipelined
    /// transport's buffers (`maxOutboxBytes`, `maxReplyBytes`); `conn` replaces the URL's
    /// credentials, database and client name.
    pub fn new(
        target: &RedisTarget,
        command_timeout: Duration,
        connect_timeout: Duration,
        tls: Option<Arc<Tls>>,
        limits: Limits,
        conn: &ConnOptions,
    ) -> CacheResult<Server> {
        let mut secrets: Vec<String> = target
            .password
            .iter()
            .flat_map(|p| [p.clone(), percent_decode(p)])
            .chain(conn.secrets())
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
        let settings = info.redis_settings();
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
            client_name: None,
            transport,
        }
        .with_options(conn);
        let settings = RedisConnectionInfo::default().set_protocol(settings.protocol());
        let secrets = Arc::new(secrets);
        let scrub_with = secrets.clone();
        let pipeline = Pipeline::new(
            endpoint.clone(),
            command_timeout,
            connect_timeout,
            limits,
            Box::new(move |text| scrub(&text, &scrub_with)),
        );
        Ok(Server {
            endpoint,
            settings,
            pipeline,
            secrets,
            connect_timeout,
            command_timeout,
            max_reply: limits.max_reply,
            closed: AtomicBool::new(false),
        })
    }

    pub fn is_healthy(&self) -> bool {
        !self.closed.load(Ordering::Relaxed) && self.pipeline.is_healthy()
    }

    /// The pipelined connection.
    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// Closes the connection; every later command fails with `ECLOSED`.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.pipeline.close();
    }

    /// The pipeline, or why it cannot be used.
    fn link(&self) -> CacheResult<&Pipeline> {
        if self.closed.load(Ordering::Relaxed) {
            return Err(CacheError::Closed);
        }
        Ok(&self.pipeline)
    }

    /// A new dedicated pub/sub connection (RESP2) to this server, subscribed to `channels`
    /// (already prefixed), within `connectTimeoutMs`: the same transport as the pipeline's
    /// (TLS settings, Unix socket) and handshake (see [`subscribe_on`]). It does not touch the
    /// health of the shared connection: the subscriber supervises its own link.
    pub async fn subscriber(&self, channels: &[String]) -> CacheResult<redis::aio::PubSub> {
        if self.closed.load(Ordering::Relaxed) {
            return Err(CacheError::Closed);
        }
        subscribe_on(
            &self.endpoint,
            &self.settings,
            channels,
            self.connect_timeout,
            self.max_reply,
            &self.secrets,
        )
        .await
    }

    /// `host:port` of this server (the socket path of a Unix socket).
    pub fn address(&self) -> String {
        match &self.endpoint.transport {
            Transport::Unix(path) => path.display().to_string(),
            _ => address(&self.endpoint.host, self.endpoint.port),
        }
    }

    /// Runs one command on this server.
    pub async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> CacheResult<T> {
        let reply = self
            .link()?
            .request(|b| cmd.write_packed_command(b))
            .await?;
        decode(reply)
    }

    /// Runs a script on this server: EVALSHA, and EVAL after a NOSCRIPT, both within the
    /// one call's deadline.
    pub async fn script<T: FromRedisValue>(
        &self,
        script: &'static Script,
        keys: &[&str],
        args: &[&str],
    ) -> CacheResult<T> {
        let deadline = Instant::now() + self.command_timeout;
        let p = self.link()?;
        let call = script.call(keys, args);
        match p.request_until(|b| call.write(b, false), deadline).await {
            Err(CacheError::Redis(e)) if is_noscript(&e) => {}
            other => return decode(other?),
        }
        decode(p.request_until(|b| call.write(b, true), deadline).await?)
    }
}

/// A pub/sub connection to `endpoint` subscribed to `channels`, within `timeout`: our handshake
/// (AUTH, SELECT, `CLIENT SETNAME <connectionName>:sub`), then redis-rs' pub/sub client told
/// `settings` (its RESP version), reading through a [`BoundedResp`] of `max_reply`
/// (`maxReplyBytes`): a reply announcing more drops the connection. Errors are scrubbed of
/// `secrets`.
pub async fn subscribe_on(
    endpoint: &Endpoint,
    settings: &RedisConnectionInfo,
    channels: &[String],
    timeout: Duration,
    max_reply: usize,
    secrets: &Arc<Vec<String>>,
) -> CacheResult<redis::aio::PubSub> {
    let deadline = Instant::now() + timeout;
    let endpoint = endpoint.named_with_suffix(SUBSCRIBER_SUFFIX);
    let scrub_with = secrets.clone();
    let stream = open_stream(&endpoint, timeout, &move |t| scrub(&t, &scrub_with)).await?;
    let stream = BoundedResp::new(stream, max_reply);
    let subscribe = async {
        let mut ps = redis::aio::PubSub::new(settings, stream).await?;
        ps.subscribe(channels).await?;
        Ok::<_, RedisError>(ps)
    };
    match tokio::time::timeout_at(deadline.into(), subscribe).await {
        Err(_) => Err(CacheError::Timeout(timeout.as_millis() as u64)),
        Ok(Err(e)) => Err(CacheError::Unavailable(scrub(&e.to_string(), secrets))),
        Ok(Ok(ps)) => Ok(ps),
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
        match Server::new(
            &target,
            Duration::from_secs(1),
            Duration::from_secs(1),
            None,
            Limits::default(),
            &ConnOptions::default(),
        ) {
            Err(e) => assert!(!e.to_string().contains("hunter2"), "{e}"),
            Ok(_) => panic!("a malformed URL must be refused"),
        }
    }
}
