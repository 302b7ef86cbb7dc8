//! Options from JS, validated once. A Redis URL never appears in an error or `Debug` output.

use std::time::Duration;

use napi_derive::napi;

use crate::error::{CacheError, CacheResult};
use crate::names::keys;

/// What the JS façade passes to `new NativeCache(options, onBatch)`.
#[napi(object)]
#[derive(Default)]
pub struct NativeOptions {
    /// `redis://…`, `rediss://…`, `unix:///path` / `redis+unix:///path` (`?db=`, `?user=`,
    /// `?pass=`), `memory://[name]`; absent means disabled.
    pub url: Option<String>,
    pub key_prefix: Option<String>,
    pub command_timeout_ms: Option<f64>,
    pub connect_timeout_ms: Option<f64>,
    pub max_value_bytes: Option<f64>,
    /// Near cache of permission snapshots: TTL in ms (0 disables), and its size bound.
    pub near_cache_ttl_ms: Option<f64>,
    pub near_cache_max: Option<f64>,
    /// Roles that grant everything (default `['SUPER_ADMIN']`).
    pub super_roles: Option<Vec<String>>,
    /// Redis Cluster: seed node URLs (`redis://host:port`); exclusive with `url`/`sentinel`.
    pub cluster: Option<Vec<String>>,
    /// Redis Sentinel: the monitored primary's name and the sentinels' URLs.
    pub sentinel_master_name: Option<String>,
    pub sentinel_nodes: Option<Vec<String>>,
    /// Circuit breaker: consecutive link failures that open it (default 5; 0 disables it),
    /// and how long Redis is then skipped (default 1000 ms).
    pub circuit_threshold: Option<f64>,
    pub circuit_cooldown_ms: Option<f64>,
    /// PEM of the CA that signs the server's certificate (`rediss://` only; the façade reads
    /// a path into PEM). Without it the public web PKI roots are trusted.
    pub tls_ca: Option<String>,
    /// PEM of the client certificate chain and its private key (mTLS; both or neither).
    pub tls_cert: Option<String>,
    pub tls_key: Option<String>,
    /// The name sent (SNI) and checked in the server's certificate (default the URL host).
    pub tls_servername: Option<String>,
    /// False accepts any server certificate (tests only; default true).
    pub tls_reject_unauthorized: Option<bool>,
    /// The `tls` option was given, even as `{}`: behind Sentinel the data nodes then use TLS
    /// although the sentinels' URLs are `redis://`.
    pub tls_given: Option<bool>,
    /// `sentinelTls`: the sentinels' own TLS settings (same fields as `tls`; `rediss://`
    /// sentinel URLs only). Without it the sentinels use the `tls` settings.
    pub sentinel_tls_ca: Option<String>,
    pub sentinel_tls_cert: Option<String>,
    pub sentinel_tls_key: Option<String>,
    pub sentinel_tls_servername: Option<String>,
    pub sentinel_tls_reject_unauthorized: Option<bool>,
    /// `sentinelTls` was given, even as `{}` (then it replaces `tls` for the sentinels).
    pub sentinel_tls_given: Option<bool>,
    /// Largest pub/sub message sent or accepted, in bytes (default 64 KiB).
    pub max_message_bytes: Option<f64>,
    /// `pubsubSecret` as a list: the first signs, any verifies (at most two: rotation).
    pub pubsub_secrets: Option<Vec<String>>,
    /// Pipelined transport: bytes of unsent commands held while Redis does not read (default
    /// 32 MiB), and the longest reply accepted (default 512 MiB, Redis' proto-max-bulk-len).
    pub max_outbox_bytes: Option<f64>,
    pub max_reply_bytes: Option<f64>,
    /// The data connections' ACL user and password, database and client name: each given one
    /// replaces the URL's part (on Cluster every node's, behind Sentinel the data node's).
    pub username: Option<String>,
    pub password: Option<String>,
    pub db: Option<f64>,
    pub connection_name: Option<String>,
    /// The sentinels' own ACL user and password (replace a sentinel URL's).
    pub sentinel_username: Option<String>,
    pub sentinel_password: Option<String>,
}

/// Where the data lives.
pub enum Backend {
    Disabled,
    /// Instances naming the same memory store share its data, as nodes share one Redis.
    Memory(String),
    Redis(RedisTarget),
    /// Redis Cluster through its seed nodes.
    Cluster(Vec<RedisTarget>),
    /// A primary found through Redis Sentinel.
    Sentinel {
        master_name: String,
        nodes: Vec<RedisTarget>,
    },
}

/// A Redis URL with its password kept apart, so that every error can be scrubbed of it.
pub struct RedisTarget {
    pub url: String,
    pub password: Option<String>,
}

impl std::fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisTarget(<redacted>)")
    }
}

/// What the handshake of a connection sends besides the URL's parts: each given field
/// replaces the URL's (`AUTH`, `SELECT`), and `name` is set with `CLIENT SETNAME`.
#[derive(Clone, Default)]
pub struct ConnOptions {
    pub username: Option<String>,
    pub password: Option<String>,
    pub db: Option<i64>,
    pub name: Option<String>,
    /// On Cluster and behind Sentinel, whether these connections use TLS (`Some`) and with
    /// what settings: every node's, learnt ones included. A standalone server's TLS follows its
    /// URL's scheme instead ([`Config::tls`]).
    pub tls: Option<std::sync::Arc<crate::tls::Tls>>,
}

impl std::fmt::Debug for ConnOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConnOptions(<redacted>)")
    }
}

impl ConnOptions {
    /// The password and its percent-decoded form, for scrubbing error texts.
    pub fn secrets(&self) -> Vec<String> {
        self.password
            .iter()
            .flat_map(|p| [p.clone(), percent_decode(p)])
            .collect()
    }
}

/// The longest `connectionName` (Redis accepts any length; a name is for `CLIENT LIST`).
pub const MAX_CONNECTION_NAME: usize = 128;
/// The longest `username` and `password` accepted.
pub const MAX_USERNAME_BYTES: usize = 256;
pub const MAX_PASSWORD_BYTES: usize = 4096;
/// The largest `db` (Redis' own limit is its `databases` setting, 16 by default).
pub const MAX_DB: f64 = 2_147_483_647.0;

/// A user name or password option: absent or empty means not given (the URL's part, if any,
/// applies); otherwise at most `max` bytes, and a user name without whitespace or control
/// characters. The value never appears in an error.
fn credential(what: &str, v: &Option<String>, is_user: bool) -> CacheResult<Option<String>> {
    let max = if is_user {
        MAX_USERNAME_BYTES
    } else {
        MAX_PASSWORD_BYTES
    };
    match v.as_deref() {
        None | Some("") => Ok(None),
        Some(s) if s.len() > max => Err(CacheError::OutOfRange(format!(
            "{what} must be at most {max} bytes long (the value is not shown)"
        ))),
        Some(s)
            if what.ends_with("sername")
                && s.chars().any(|c| c.is_whitespace() || c.is_control()) =>
        {
            Err(CacheError::InvalidArg(format!(
                "{what} must not contain whitespace or control characters"
            )))
        }
        Some(s) => Ok(Some(s.to_string())),
    }
}

/// `connectionName`: 1 to 128 printable ASCII characters without spaces (what `CLIENT
/// SETNAME` accepts).
fn connection_name(v: &Option<String>) -> CacheResult<Option<String>> {
    let Some(name) = v else { return Ok(None) };
    if name.is_empty() || name.len() > MAX_CONNECTION_NAME {
        return Err(CacheError::OutOfRange(format!(
            "connectionName must be 1 to {MAX_CONNECTION_NAME} characters long (got {})",
            name.len()
        )));
    }
    if !name.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(CacheError::InvalidArg(
            "connectionName must be printable ASCII without spaces (CLIENT SETNAME refuses others)"
                .into(),
        ));
    }
    Ok(Some(name.clone()))
}

/// The connection options of `o`, checked against the back end: a user name needs a password
/// (from the option or the URL), and Redis Cluster has only database 0.
fn conn_options(o: &NativeOptions, backend: &Backend) -> CacheResult<(ConnOptions, ConnOptions)> {
    let db = match o.db {
        None => None,
        Some(d) if d.is_finite() && d.fract() == 0.0 && (0.0..=MAX_DB).contains(&d) => {
            Some(d as i64)
        }
        Some(d) => {
            return Err(CacheError::OutOfRange(format!(
                "db must be a whole number from 0 to {MAX_DB} (got {d})"
            )))
        }
    };
    let conn = ConnOptions {
        username: credential("username", &o.username, true)?,
        password: credential("password", &o.password, false)?,
        db,
        name: connection_name(&o.connection_name)?,
        tls: None,
    };
    let sentinels = ConnOptions {
        username: credential("sentinelUsername", &o.sentinel_username, true)?,
        password: credential("sentinelPassword", &o.sentinel_password, false)?,
        ..Default::default()
    };
    let url_password = match backend {
        Backend::Redis(t) => t.password.is_some(),
        Backend::Cluster(nodes) => nodes[0].password.is_some(),
        _ => false,
    };
    let applies = !matches!(backend, Backend::Memory(_) | Backend::Disabled);
    if applies && conn.username.is_some() && conn.password.is_none() && !url_password {
        return Err(CacheError::InvalidArg(
            "username needs a password (the password option or the URL's)".into(),
        ));
    }
    if sentinels.username.is_some() && sentinels.password.is_none() {
        return Err(CacheError::InvalidArg(
            "sentinelUsername needs sentinelPassword".into(),
        ));
    }
    if (sentinels.username.is_some() || sentinels.password.is_some())
        && !matches!(backend, Backend::Sentinel { .. })
    {
        return Err(CacheError::InvalidArg(
            "sentinelUsername and sentinelPassword need the sentinel option".into(),
        ));
    }
    if matches!(backend, Backend::Cluster(_)) && conn.db.is_some_and(|d| d != 0) {
        return Err(CacheError::OutOfRange(
            "db must be 0 on Redis Cluster (a cluster has database 0 only)".into(),
        ));
    }
    Ok((conn, sentinels))
}

/// Default bound of the outbox (`maxOutboxBytes`): 32 MiB. The outbox only fills while Redis
/// does not read (hung, or a link that stopped): 32 MiB is 64 values of the largest default
/// size (`maxValueBytes` 512 KiB) or some 300,000 small commands (far more than one tick of a
/// busy process starts), and a bounded amount of memory per instance when Redis hangs.
pub const DEFAULT_MAX_OUTBOX_BYTES: usize = 32 * 1024 * 1024;
/// Default bound of one reply (`maxReplyBytes`): Redis' own `proto-max-bulk-len`, 512 MiB.
pub const DEFAULT_MAX_REPLY_BYTES: usize = 512 * 1024 * 1024;

/// Byte bounds of one connection.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Unsent bytes the outbox may hold; a command that finds it full fails at once.
    pub max_outbox: usize,
    /// Longest bulk string accepted in a reply, and the bound of a partial reply held in the
    /// read buffer.
    pub max_reply: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_outbox: DEFAULT_MAX_OUTBOX_BYTES,
            max_reply: DEFAULT_MAX_REPLY_BYTES,
        }
    }
}

pub struct Config {
    pub backend: Backend,
    pub key_prefix: String,
    pub command_timeout: Duration,
    pub connect_timeout: Duration,
    pub max_value_bytes: usize,
    pub circuit_threshold: u32,
    pub circuit_cooldown: Duration,
    /// The TLS settings of a `rediss://` URL (the `tls` options), built once.
    pub tls: Option<std::sync::Arc<crate::tls::Tls>>,
    pub max_message_bytes: usize,
    /// Never shown in an error or `Debug` output (Config has no `Debug`).
    pub pubsub_secrets: Vec<Vec<u8>>,
    pub max_outbox_bytes: usize,
    pub max_reply_bytes: usize,
    /// `username`, `password`, `db`, `connectionName`: every data connection's handshake.
    pub conn: ConnOptions,
    /// `sentinelUsername`, `sentinelPassword`: the sentinels' handshake.
    pub sentinel_auth: ConnOptions,
}

impl Config {
    /// The byte bounds of the pipelined transport.
    pub fn transport_limits(&self) -> Limits {
        Limits {
            max_outbox: self.max_outbox_bytes,
            max_reply: self.max_reply_bytes,
        }
    }
}

/// A whole number of bytes in `min..=max` (default `default`).
fn bytes(what: &str, v: Option<f64>, default: usize, min: f64, max: f64) -> CacheResult<usize> {
    let n = v.unwrap_or(default as f64);
    if !n.is_finite() || n.fract() != 0.0 || !(min..=max).contains(&n) {
        return Err(CacheError::OutOfRange(format!(
            "{what} must be a whole number of bytes from {min} to {max} (got {n})"
        )));
    }
    Ok(n as usize)
}

pub const DEFAULT_COMMAND_TIMEOUT_MS: f64 = 1000.0;
pub const DEFAULT_CONNECT_TIMEOUT_MS: f64 = 2000.0;
pub const DEFAULT_MAX_VALUE_BYTES: f64 = 512.0 * 1024.0;
/// `maxMessageBytes` by default. Every message this library sends is under 1 KiB except
/// `invalidateKeys` (about 1,000 keys of 50 bytes fit) and what the app publishes itself; a
/// receiver holds up to `MessageRules::queue_budget` bytes of messages waiting for JS, so
/// the bound also caps what a flood of large messages can pin in every node's memory.
pub const DEFAULT_MAX_MESSAGE_BYTES: f64 = 64.0 * 1024.0;
/// The range of `maxMessageBytes`: from what the library's own messages need to 16 MiB.
pub const MIN_MAX_MESSAGE_BYTES: f64 = 1024.0;
pub const MAX_MAX_MESSAGE_BYTES: f64 = 16.0 * 1024.0 * 1024.0;
/// `pubsubSecret`: one or two secrets (the first signs, any verifies), 16 to 4096 bytes each
/// (a short secret could be guessed offline from any message a subscriber sees).
pub const MAX_SECRETS: usize = 2;
pub const MIN_SECRET_BYTES: usize = 16;
pub const MAX_SECRET_BYTES: usize = 4096;

fn millis(what: &str, v: Option<f64>, default: f64) -> CacheResult<Duration> {
    let ms = v.unwrap_or(default);
    if !ms.is_finite() || ms.fract() != 0.0 || !(1.0..=600_000.0).contains(&ms) {
        return Err(CacheError::OutOfRange(format!(
            "{what} must be a whole number of milliseconds from 1 to 600000 (got {ms})"
        )));
    }
    Ok(Duration::from_millis(ms as u64))
}

/// Splits the password out of `scheme://[user:]pass@host…`, or of the `pass=` query of a
/// Unix socket URL (percent-encoded and decoded forms).
fn password_of(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    if is_unix_url(url) {
        let query = rest.split_once('?')?.1.split('#').next()?;
        return query
            .split('&')
            .find_map(|kv| kv.strip_prefix("pass="))
            .filter(|p| !p.is_empty())
            .map(str::to_string);
    }
    let authority = rest.split(['/', '?', '#']).next()?;
    let userinfo = authority.rsplit_once('@')?.0;
    let pass = match userinfo.split_once(':') {
        Some((_, p)) => p,
        None => userinfo,
    };
    if pass.is_empty() {
        None
    } else {
        Some(pass.to_string())
    }
}

/// `unix:///path` or `redis+unix:///path`: a Redis server on a Unix socket.
fn is_unix_url(url: &str) -> bool {
    url.starts_with("unix://") || url.starts_with("redis+unix://")
}

/// Percent-decodes a URL component (for scrubbing: redis-rs may echo the decoded form).
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
            if let Ok(b) = u8::from_str_radix(hex, 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A list of node URLs (cluster seeds or sentinels): 1 to 64, all `redis://` or all
/// `rediss://` (TLS), no secrets echoed.
fn node_list(what: &str, urls: &[String]) -> CacheResult<Vec<RedisTarget>> {
    if urls.is_empty() || urls.len() > 64 {
        return Err(CacheError::InvalidArg(format!(
            "{what} must list 1 to 64 redis:// or rediss:// node URLs (got {})",
            urls.len()
        )));
    }
    let tls = urls[0].trim().starts_with("rediss://");
    urls.iter()
        .map(|u| {
            let u = u.trim();
            let rest = u
                .strip_prefix("redis://")
                .map(|r| (r, false))
                .or_else(|| u.strip_prefix("rediss://").map(|r| (r, true)));
            let Some((rest, node_tls)) = rest else {
                return Err(CacheError::InvalidArg(format!(
                    "every {what} URL must start with redis:// or rediss:// (the value is not shown)"
                )));
            };
            // One scheme for all: a node list half in TLS would send the credentials in
            // plaintext to the other half.
            if node_tls != tls {
                return Err(CacheError::InvalidArg(format!(
                    "{what} URLs must all be redis:// or all rediss:// (the values are not shown)"
                )));
            }
            let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            let port_ok = host
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
            if !port_ok {
                return Err(CacheError::InvalidArg(format!(
                    "every {what} URL must be redis[s]://host:port (the value is not shown)"
                )));
            }
            Ok(RedisTarget {
                url: u.to_string(),
                password: password_of(u),
            })
        })
        .collect()
}

/// The back end named by `cluster` or `sentinel`, if either is given (only one of `url`,
/// `cluster`, `sentinel` may be).
fn topology(o: &NativeOptions) -> CacheResult<Option<Backend>> {
    let url = o.url.as_deref().is_some_and(|u| !u.trim().is_empty());
    let sentinel = o.sentinel_master_name.is_some() || o.sentinel_nodes.is_some();
    if [url, o.cluster.is_some(), sentinel]
        .iter()
        .filter(|b| **b)
        .count()
        > 1
    {
        return Err(CacheError::InvalidArg(
            "give only one of url, cluster and sentinel".into(),
        ));
    }
    if let Some(nodes) = &o.cluster {
        return Ok(Some(Backend::Cluster(node_list("cluster", nodes)?)));
    }
    if sentinel {
        let master_name = o.sentinel_master_name.clone().unwrap_or_default();
        keys::check_id("sentinel.masterName", &master_name)?;
        let nodes = node_list("sentinel.nodes", o.sentinel_nodes.as_deref().unwrap_or(&[]))?;
        return Ok(Some(Backend::Sentinel { master_name, nodes }));
    }
    Ok(None)
}

/// `pubsubSecret`: absent, or 1 to 2 secrets of 16 to 4096 bytes (never echoed).
fn pubsub_secrets(secrets: Option<Vec<String>>) -> CacheResult<Vec<Vec<u8>>> {
    let Some(secrets) = secrets else {
        return Ok(Vec::new());
    };
    if secrets.is_empty() || secrets.len() > MAX_SECRETS {
        return Err(CacheError::OutOfRange(format!(
            "pubsubSecret must be one secret or an array of 1 to {} (got {})",
            MAX_SECRETS,
            secrets.len()
        )));
    }
    if secrets
        .iter()
        .any(|s| !(MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&s.len()))
    {
        return Err(CacheError::OutOfRange(format!(
            "every pubsubSecret must be {} to {} bytes long (the value is not shown)",
            MIN_SECRET_BYTES, MAX_SECRET_BYTES
        )));
    }
    Ok(secrets.into_iter().map(String::into_bytes).collect())
}

/// A PEM text of the `tls` options (`what` names it in the error).
fn pem<'a>(what: &str, v: &'a Option<String>, marker: &str) -> CacheResult<Option<&'a [u8]>> {
    match v {
        None => Ok(None),
        Some(p) if p.contains(marker) => Ok(Some(p.as_bytes())),
        Some(_) => Err(CacheError::InvalidArg(format!(
            "{what} must be PEM (or the path of a PEM file; the value is not shown)"
        ))),
    }
}

/// One set of TLS options as [`NativeOptions`] holds them: `tls` or `sentinelTls`.
struct TlsFields<'a> {
    /// The option's name in errors.
    name: &'static str,
    ca: &'a Option<String>,
    cert: &'a Option<String>,
    key: &'a Option<String>,
    servername: &'a Option<String>,
    reject_unauthorized: Option<bool>,
    /// Given as an object, even empty.
    object: bool,
}

impl TlsFields<'_> {
    fn given(&self) -> bool {
        self.object
            || self.ca.is_some()
            || self.cert.is_some()
            || self.key.is_some()
            || self.servername.is_some()
            || self.reject_unauthorized.is_some()
    }

    /// The validated settings: `cert` and `key` together, `servername` a DNS name or IP
    /// address, PEM that parses. No key material is echoed.
    fn build(&self) -> CacheResult<std::sync::Arc<crate::tls::Tls>> {
        use crate::tls::{Tls, TlsSettings};
        let name = self.name;
        // Tls::new names the fields `tls.…`: the errors name the option that was given.
        let rename = |e: CacheError| match e {
            CacheError::InvalidArg(m) if name != "tls" => {
                CacheError::InvalidArg(m.replacen("tls.", &format!("{name}."), 1))
            }
            e => e,
        };
        let ca = pem("ca", self.ca, "-----BEGIN CERTIFICATE-----").map_err(|_| {
            CacheError::InvalidArg(format!(
                "{name}.ca must be a PEM certificate (or the path of one)"
            ))
        })?;
        let cert = pem(
            &format!("{name}.cert"),
            self.cert,
            "-----BEGIN CERTIFICATE-----",
        )?;
        let key = pem(&format!("{name}.key"), self.key, "PRIVATE KEY-----")?;
        let client = match (cert, key) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            _ => {
                return Err(CacheError::InvalidArg(format!(
                    "{name}.cert and {name}.key go together (a client certificate and its key)"
                )))
            }
        };
        let servername = self.servername.as_deref();
        if servername.is_some_and(|n| n.is_empty() || n.len() > 253) {
            return Err(CacheError::InvalidArg(format!(
                "{name}.servername must be a DNS name or an IP address of 1 to 253 characters"
            )));
        }
        let tls = Tls::new(&TlsSettings {
            ca,
            client,
            server_name: servername,
            reject_unauthorized: self.reject_unauthorized.unwrap_or(true),
        })
        .map_err(rename)?;
        Ok(std::sync::Arc::new(tls))
    }

    /// [`build`](Self::build) when given, else TLS with no option: the web PKI roots, each
    /// node's certificate checked against the host it was reached by.
    fn build_or_default(&self) -> CacheResult<std::sync::Arc<crate::tls::Tls>> {
        if self.given() {
            return self.build();
        }
        let tls = crate::tls::Tls::new(&crate::tls::TlsSettings {
            reject_unauthorized: true,
            ..Default::default()
        })?;
        Ok(std::sync::Arc::new(tls))
    }
}

/// Where TLS applies, and with which settings.
#[derive(Default)]
struct TlsPlan {
    /// A standalone `rediss://` server's (`tls`; defaults when absent, see `Server::new`).
    standalone: Option<std::sync::Arc<crate::tls::Tls>>,
    /// Every cluster node's, or the data nodes' behind Sentinel.
    data: Option<std::sync::Arc<crate::tls::Tls>>,
    /// The sentinels'.
    sentinels: Option<std::sync::Arc<crate::tls::Tls>>,
}

/// The TLS rules:
/// - a standalone server: TLS with a `rediss://` URL; `tls` needs one;
/// - Cluster: TLS to every node (seeds and learnt ones) when the seeds are `rediss://`;
///   `tls` needs that;
/// - Sentinel: the sentinels use TLS when their URLs are `rediss://`, with `sentinelTls`, else
///   `tls`; `sentinelTls` needs `rediss://` sentinels. The data nodes use TLS when the
///   sentinels' URLs are `rediss://` or `tls` is given (even `{}`), with the `tls` settings.
fn tls_of(o: &NativeOptions, backend: &Backend) -> CacheResult<TlsPlan> {
    let data = TlsFields {
        name: "tls",
        ca: &o.tls_ca,
        cert: &o.tls_cert,
        key: &o.tls_key,
        servername: &o.tls_servername,
        reject_unauthorized: o.tls_reject_unauthorized,
        // `tls: {}` with a standalone redis:// URL has always been accepted: for the data
        // nodes `tls_given` is read where it matters (behind Sentinel, on Cluster).
        object: false,
    };
    let sentinel = TlsFields {
        name: "sentinelTls",
        ca: &o.sentinel_tls_ca,
        cert: &o.sentinel_tls_cert,
        key: &o.sentinel_tls_key,
        servername: &o.sentinel_tls_servername,
        reject_unauthorized: o.sentinel_tls_reject_unauthorized,
        object: o.sentinel_tls_given == Some(true),
    };
    let refused = |m: &str| Err(CacheError::InvalidArg(m.to_string()));
    let which = if o.tls_ca.is_some() { "tls.ca" } else { "tls" };
    if sentinel.given() && !matches!(backend, Backend::Sentinel { .. }) {
        return refused("sentinelTls needs the sentinel option (rediss:// sentinels)");
    }
    match backend {
        Backend::Sentinel { nodes, .. } => {
            let rediss = nodes[0].url.starts_with("rediss://");
            if sentinel.given() && !rediss {
                return refused(
                    "sentinelTls needs rediss:// sentinel URLs; with redis:// ones the sentinels are reached without TLS",
                );
            }
            let sentinels = if !rediss {
                None
            } else if sentinel.given() {
                Some(sentinel.build()?)
            } else {
                Some(data.build_or_default()?)
            };
            let data = if rediss || data.given() || o.tls_given == Some(true) {
                Some(data.build_or_default()?)
            } else {
                None
            };
            Ok(TlsPlan {
                sentinels,
                data,
                ..Default::default()
            })
        }
        Backend::Cluster(nodes) => {
            let rediss = nodes[0].url.starts_with("rediss://");
            if !rediss && (data.given() || o.tls_given == Some(true)) {
                return Err(CacheError::InvalidArg(format!(
                    "{which} needs rediss:// cluster node URLs (TLS); it is refused with redis:// ones"
                )));
            }
            Ok(TlsPlan {
                data: if rediss {
                    Some(data.build_or_default()?)
                } else {
                    None
                },
                ..Default::default()
            })
        }
        _ if !data.given() => Ok(TlsPlan::default()),
        Backend::Redis(t) if t.url.starts_with("rediss://") => Ok(TlsPlan {
            standalone: Some(data.build()?),
            ..Default::default()
        }),
        _ => Err(CacheError::InvalidArg(format!(
            "{which} needs a rediss:// URL (TLS); it is refused with any other"
        ))),
    }
}

impl Config {
    pub fn from_options(o: NativeOptions) -> CacheResult<Config> {
        let backend = match topology(&o)? {
            Some(b) => b,
            None => match o.url.as_deref().map(str::trim) {
                None | Some("") => Backend::Disabled,
                Some(u) if u.starts_with("memory://") => {
                    let name = &u["memory://".len()..];
                    let name = if name.is_empty() { "default" } else { name };
                    Backend::Memory(name.to_string())
                }
                Some(u)
                    if u.starts_with("redis://")
                        || u.starts_with("rediss://")
                        || is_unix_url(u) =>
                {
                    Backend::Redis(RedisTarget {
                        url: u.to_string(),
                        password: password_of(u),
                    })
                }
                Some(_) => return Err(CacheError::InvalidArg(
                    "url must start with redis://, rediss://, unix://, redis+unix:// or memory:// (the value is not shown)"
                        .into(),
                )),
            },
        };
        let tls = tls_of(&o, &backend)?;
        let (mut conn, mut sentinel_auth) = conn_options(&o, &backend)?;
        conn.tls = tls.data;
        sentinel_auth.tls = tls.sentinels;
        let key_prefix = o.key_prefix.unwrap_or_default();
        if !key_prefix.is_empty() {
            keys::check_id("keyPrefix", &key_prefix)?;
        }
        let max_value_bytes = o.max_value_bytes.unwrap_or(DEFAULT_MAX_VALUE_BYTES);
        if !max_value_bytes.is_finite()
            || max_value_bytes.fract() != 0.0
            || !(1.0..=536_870_912.0).contains(&max_value_bytes)
        {
            return Err(CacheError::OutOfRange(format!(
                "maxValueBytes must be a whole number from 1 to 536870912 (got {max_value_bytes})"
            )));
        }
        let circuit_threshold = o.circuit_threshold.unwrap_or(5.0);
        if !circuit_threshold.is_finite()
            || circuit_threshold.fract() != 0.0
            || !(0.0..=1_000_000.0).contains(&circuit_threshold)
        {
            return Err(CacheError::OutOfRange(format!(
                "circuitThreshold must be a whole number from 0 (off) to 1000000 (got {circuit_threshold})"
            )));
        }
        let max_outbox_bytes = bytes(
            "maxOutboxBytes",
            o.max_outbox_bytes,
            DEFAULT_MAX_OUTBOX_BYTES,
            65_536.0,
            1_073_741_824.0,
        )?;
        let max_reply_bytes = bytes(
            "maxReplyBytes",
            o.max_reply_bytes,
            DEFAULT_MAX_REPLY_BYTES,
            1024.0,
            536_870_912.0,
        )?;
        if max_reply_bytes < max_value_bytes as usize {
            return Err(CacheError::OutOfRange(format!(
                "maxReplyBytes ({max_reply_bytes}) must be at least maxValueBytes ({max_value_bytes}): a stored value must be readable"
            )));
        }
        let max_message_bytes = bytes(
            "maxMessageBytes",
            o.max_message_bytes,
            DEFAULT_MAX_MESSAGE_BYTES as usize,
            MIN_MAX_MESSAGE_BYTES,
            MAX_MAX_MESSAGE_BYTES,
        )?;
        if max_reply_bytes < max_message_bytes {
            return Err(CacheError::OutOfRange(format!(
                "maxReplyBytes ({max_reply_bytes}) must be at least maxMessageBytes ({max_message_bytes}): a message within bounds must be readable (a longer one drops the subscriber's link)"
            )));
        }
        let pubsub_secrets = pubsub_secrets(o.pubsub_secrets)?;
        Ok(Config {
            conn,
            sentinel_auth,
            max_message_bytes,
            pubsub_secrets,
            tls: tls.standalone,
            max_outbox_bytes,
            max_reply_bytes,
            circuit_threshold: circuit_threshold as u32,
            circuit_cooldown: millis("circuitCooldownMs", o.circuit_cooldown_ms, 1000.0)?,
            backend,
            key_prefix,
            command_timeout: millis(
                "commandTimeoutMs",
                o.command_timeout_ms,
                DEFAULT_COMMAND_TIMEOUT_MS,
            )?,
            connect_timeout: millis(
                "connectTimeoutMs",
                o.connect_timeout_ms,
                DEFAULT_CONNECT_TIMEOUT_MS,
            )?,
            max_value_bytes: max_value_bytes as usize,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The options of `url` changed by `f`.
    fn with(url: &str, f: fn(&mut NativeOptions)) -> CacheResult<Config> {
        let mut o = NativeOptions {
            url: Some(url.into()),
            ..Default::default()
        };
        f(&mut o);
        Config::from_options(o)
    }

    fn cfg(url: &str) -> CacheResult<Config> {
        Config::from_options(NativeOptions {
            url: Some(url.into()),
            ..Default::default()
        })
    }

    #[test]
    fn backends_by_scheme() {
        assert!(matches!(cfg("").unwrap().backend, Backend::Disabled));
        assert!(matches!(cfg("memory://").unwrap().backend, Backend::Memory(n) if n == "default"));
        assert!(matches!(cfg("memory://a").unwrap().backend, Backend::Memory(n) if n == "a"));
        assert!(matches!(
            cfg("redis://127.0.0.1:6379").unwrap().backend,
            Backend::Redis(_)
        ));
        assert!(matches!(
            cfg("rediss://h:1").unwrap().backend,
            Backend::Redis(_)
        ));
    }

    #[test]
    fn a_bad_url_is_refused_without_echoing_it() {
        let e = cfg("http://user:hunter2@host").err().unwrap();
        assert_eq!(e.code(), "ERR_INVALID_ARG");
        assert!(!e.to_string().contains("hunter2"));
    }

    #[test]
    fn the_password_is_found_for_scrubbing() {
        assert_eq!(password_of("redis://:pw@h:1/0").as_deref(), Some("pw"));
        assert_eq!(
            password_of("redis://u:p%40ss@h:1").as_deref(),
            Some("p%40ss")
        );
        assert_eq!(percent_decode("p%40ss"), "p@ss");
        assert_eq!(password_of("redis://h:1"), None);
        let t = RedisTarget {
            url: "redis://:pw@h".into(),
            password: Some("pw".into()),
        };
        assert!(!format!("{t:?}").contains("pw"));
    }

    #[test]
    fn cluster_and_sentinel_options_are_validated() {
        let c = Config::from_options(NativeOptions {
            cluster: Some(vec![
                "redis://127.0.0.1:7000".into(),
                "redis://h:7001".into(),
            ]),
            ..Default::default()
        })
        .unwrap();
        assert!(matches!(c.backend, Backend::Cluster(n) if n.len() == 2));
        let s = Config::from_options(NativeOptions {
            sentinel_master_name: Some("m".into()),
            sentinel_nodes: Some(vec!["redis://127.0.0.1:26379".into()]),
            ..Default::default()
        })
        .unwrap();
        assert!(
            matches!(s.backend, Backend::Sentinel { master_name, nodes } if master_name == "m" && nodes.len() == 1)
        );
        for bad in [
            NativeOptions {
                cluster: Some(vec![]),
                ..Default::default()
            },
            NativeOptions {
                cluster: Some(vec!["http://:pw@h:1".into()]),
                ..Default::default()
            },
            NativeOptions {
                cluster: Some(vec!["redis://:pw@h".into()]),
                ..Default::default()
            },
            NativeOptions {
                url: Some("redis://h:1".into()),
                cluster: Some(vec!["redis://h:1".into()]),
                ..Default::default()
            },
            NativeOptions {
                sentinel_master_name: Some("m".into()),
                ..Default::default()
            },
            NativeOptions {
                sentinel_master_name: Some("".into()),
                sentinel_nodes: Some(vec!["redis://h:1".into()]),
                ..Default::default()
            },
        ] {
            let e = Config::from_options(bad).err().unwrap();
            assert_eq!(e.code(), "ERR_INVALID_ARG");
            assert!(!e.to_string().contains("pw"));
        }
    }

    #[test]
    fn transport_bounds_are_range_checked() {
        let c = cfg("redis://h:1").unwrap();
        assert_eq!(c.max_outbox_bytes, 32 * 1024 * 1024);
        assert_eq!(c.max_reply_bytes, 512 * 1024 * 1024);
        for (outbox, reply) in [
            (Some(1.0), None),
            (Some(65_536.5), None),
            (Some(f64::NAN), None),
            (None, Some(2e9)),
            (None, Some(1024.0)), // below maxValueBytes (512 KiB)
        ] {
            let e = Config::from_options(NativeOptions {
                max_outbox_bytes: outbox,
                max_reply_bytes: reply,
                ..Default::default()
            })
            .err()
            .unwrap();
            assert_eq!(e.code(), "ERR_OUT_OF_RANGE");
        }
        // Pins: a message that maxMessageBytes admits must not break the subscriber's link.
        let e = Config::from_options(NativeOptions {
            max_value_bytes: Some(1024.0),
            max_reply_bytes: Some(1_048_576.0),
            max_message_bytes: Some(2_097_152.0),
            ..Default::default()
        })
        .err()
        .unwrap();
        assert_eq!(e.code(), "ERR_OUT_OF_RANGE");
        assert!(e.to_string().contains("maxMessageBytes"), "{e}");
        let c = Config::from_options(NativeOptions {
            max_outbox_bytes: Some(65_536.0),
            max_reply_bytes: Some(1_048_576.0),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.transport_limits().max_outbox, 65_536);
        assert_eq!(c.transport_limits().max_reply, 1_048_576);
    }

    #[test]
    fn unix_socket_urls_are_accepted_and_their_password_scrubbed() {
        for url in [
            "unix:///tmp/r.sock",
            "redis+unix:///tmp/r.sock?db=2&pass=pw",
        ] {
            assert!(
                matches!(cfg(url).unwrap().backend, Backend::Redis(_)),
                "{url}"
            );
        }
        assert_eq!(
            password_of("unix:///tmp/r.sock?db=2&pass=s3cret").as_deref(),
            Some("s3cret")
        );
        assert_eq!(password_of("redis+unix:///tmp/r.sock?db=2"), None);
    }

    #[test]
    fn tls_options_need_rediss_and_valid_values() {
        assert!(
            with("rediss://h:1", |o| o.tls_reject_unauthorized = Some(false))
                .unwrap()
                .tls
                .is_some()
        );
        assert!(cfg("rediss://h:1").unwrap().tls.is_none());
        for (url, f) in [
            (
                "redis://h:1",
                (|o| o.tls_servername = Some("h".into())) as fn(&mut NativeOptions),
            ),
            ("unix:///tmp/r.sock", |o| {
                o.tls_reject_unauthorized = Some(true)
            }),
            ("rediss://h:1", |o| o.tls_ca = Some("not pem".into())),
            ("rediss://h:1", |o| o.tls_cert = Some("x".into())),
            ("rediss://h:1", |o| o.tls_servername = Some(String::new())),
            ("rediss://h:1", |o| {
                o.tls_servername = Some("bad name!".into())
            }),
            ("rediss://h:1", |o| {
                o.tls_cert =
                    Some("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n".into());
                o.tls_key = Some(
                    "-----BEGIN PRIVATE KEY-----\nsecretkey\n-----END PRIVATE KEY-----\n".into(),
                );
            }),
        ] {
            let e = with(url, f).err().unwrap();
            assert_eq!(e.code(), "ERR_INVALID_ARG", "{url}: {e}");
            assert!(!e.to_string().contains("secretkey"), "{e}");
        }
    }

    fn topo(
        cluster: &[&str],
        sentinels: &[&str],
        f: fn(&mut NativeOptions),
    ) -> CacheResult<Config> {
        let list = |v: &[&str]| (!v.is_empty()).then(|| v.iter().map(|s| s.to_string()).collect());
        let mut o = NativeOptions {
            cluster: list(cluster),
            sentinel_nodes: list(sentinels),
            sentinel_master_name: (!sentinels.is_empty()).then(|| "m".to_string()),
            ..Default::default()
        };
        f(&mut o);
        Config::from_options(o)
    }

    /// The TLS rule of the topologies: rediss:// cluster seeds put every node on TLS;
    /// rediss:// sentinels put the sentinels (with sentinelTls, else tls) and the data nodes
    /// (with tls) on TLS; tls alone with redis:// sentinels puts only the data nodes on it.
    #[test]
    fn topologies_use_tls_by_the_rule() {
        let none = (|_| {}) as fn(&mut NativeOptions);
        let c = topo(&["rediss://h:1", "rediss://h:2"], &[], none).unwrap();
        assert!(c.conn.tls.is_some() && c.tls.is_none());
        assert!(topo(&["redis://h:1"], &[], none)
            .unwrap()
            .conn
            .tls
            .is_none());
        let s = topo(&[], &["rediss://h:1"], none).unwrap();
        assert!(s.sentinel_auth.tls.is_some() && s.conn.tls.is_some());
        let s = topo(&[], &["redis://h:1"], |o| o.tls_given = Some(true)).unwrap();
        assert!(s.sentinel_auth.tls.is_none() && s.conn.tls.is_some());
        let s = topo(&[], &["redis://h:1"], none).unwrap();
        assert!(s.sentinel_auth.tls.is_none() && s.conn.tls.is_none());
        let s = topo(&[], &["rediss://h:1"], |o| {
            o.sentinel_tls_reject_unauthorized = Some(false)
        })
        .unwrap();
        assert!(s.sentinel_auth.tls.is_some() && s.conn.tls.is_some());
    }

    #[test]
    fn contradictory_tls_options_are_refused() {
        for (cluster, sentinels, f, says) in [
            (
                &["redis://h:1", "rediss://h:2"][..],
                &[][..],
                (|_| {}) as fn(&mut NativeOptions),
                "or all rediss://",
            ),
            (
                &[],
                &["rediss://h:1", "redis://h:2"],
                |_| {},
                "or all rediss://",
            ),
            (
                &["redis://h:1"],
                &[],
                |o| o.tls_reject_unauthorized = Some(false),
                "tls needs rediss:// cluster",
            ),
            (
                &["redis://h:1"],
                &[],
                |o| o.tls_given = Some(true),
                "tls needs rediss:// cluster",
            ),
            (
                &[],
                &["redis://h:1"],
                |o| o.sentinel_tls_servername = Some("s".into()),
                "sentinelTls needs rediss:// sentinel",
            ),
            (
                &["rediss://h:1"],
                &[],
                |o| o.sentinel_tls_reject_unauthorized = Some(true),
                "sentinelTls needs the sentinel option",
            ),
            (
                &[],
                &["rediss://h:1"],
                |o| o.sentinel_tls_ca = Some("not pem".into()),
                "sentinelTls.ca must be",
            ),
            (
                &[],
                &["rediss://h:1"],
                |o| o.sentinel_tls_cert = Some("-----BEGIN CERTIFICATE-----".into()),
                "sentinelTls.cert and sentinelTls.key go together",
            ),
        ] {
            let e = topo(cluster, sentinels, f).err().unwrap();
            assert_eq!(e.code(), "ERR_INVALID_ARG", "{e}");
            assert!(e.to_string().contains(says), "{e}");
        }
    }

    #[test]
    fn connection_options_replace_the_urls_parts_and_are_checked() {
        let c = with("redis://h:1", |o| {
            o.username = Some("app".into());
            o.password = Some("s3cret".into());
            o.db = Some(3.0);
            o.connection_name = Some("erp-api".into());
        })
        .unwrap();
        assert_eq!(c.conn.username.as_deref(), Some("app"));
        assert_eq!(c.conn.db, Some(3));
        assert_eq!(c.conn.name.as_deref(), Some("erp-api"));
        assert!(!format!("{:?}", c.conn).contains("s3cret"));
        assert!(c.conn.secrets().iter().any(|s| s == "s3cret"));
        // empty credentials are not given; a user name with the URL's password is enough
        let c = with("redis://:pw@h:1", |o| {
            o.username = Some("app".into());
            o.password = Some(String::new());
        })
        .unwrap();
        assert_eq!(c.conn.password, None);
        // memory:// checks them and ignores them
        assert!(with("memory://x", |o| o.username = Some("app".into())).is_ok());
        for (url, f, code) in [
            (
                "redis://h:1",
                (|o| o.db = Some(-1.0)) as fn(&mut NativeOptions),
                "ERR_OUT_OF_RANGE",
            ),
            ("redis://h:1", |o| o.db = Some(0.5), "ERR_OUT_OF_RANGE"),
            (
                "redis://h:1",
                |o| o.db = Some(2_147_483_648.0),
                "ERR_OUT_OF_RANGE",
            ),
            (
                "redis://h:1",
                |o| o.connection_name = Some(String::new()),
                "ERR_OUT_OF_RANGE",
            ),
            (
                "redis://h:1",
                |o| o.connection_name = Some("a b".into()),
                "ERR_INVALID_ARG",
            ),
            (
                "redis://h:1",
                |o| o.password = Some("s3cret".repeat(1000)),
                "ERR_OUT_OF_RANGE",
            ),
            (
                "redis://h:1",
                |o| o.username = Some("app".into()),
                "ERR_INVALID_ARG",
            ),
            (
                "redis://h:1",
                |o| o.sentinel_password = Some("s3cret".into()),
                "ERR_INVALID_ARG",
            ),
            ("memory://x", |o| o.db = Some(-1.0), "ERR_OUT_OF_RANGE"),
        ] {
            let e = with(url, f).err().unwrap();
            assert_eq!(e.code(), code, "{e}");
            assert!(!e.to_string().contains("s3cret"), "{e}");
        }
        let e = Config::from_options(NativeOptions {
            cluster: Some(vec!["redis://h:7000".into()]),
            db: Some(1.0),
            ..Default::default()
        })
        .err()
        .unwrap();
        assert_eq!(e.code(), "ERR_OUT_OF_RANGE");
    }

    #[test]
    fn timeouts_are_range_checked() {
        let e = Config::from_options(NativeOptions {
            command_timeout_ms: Some(0.0),
            ..Default::default()
        })
        .err()
        .unwrap();
        assert_eq!(e.code(), "ERR_OUT_OF_RANGE");
    }
}
