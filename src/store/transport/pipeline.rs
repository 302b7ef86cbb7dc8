//! Our own pipelined connection to one Redis server over plain TCP, TLS (rustls, ring
//! provider) or a Unix socket: the fast transport.
//!
//! Every command is encoded straight into a shared outbox on the caller's thread (the JS
//! thread for hot operations) together with a completion callback; one I/O task writes the
//! whole outbox with one syscall, reads replies, parses RESP and completes callbacks in order.
//! No task, channel or timer per command: this is what lets a native call beat ioredis with
//! auto-pipelining (a redis-rs `ConnectionManager` costs a task hop, a channel and a timer per
//! command, which measured at parity with ioredis).
//!
//! Failure rules (DESIGN.md's outage lessons):
//! - no offline queue: while disconnected, commands fail at once (after one connect attempt
//!   per back-off period), so nothing stale is replayed when Redis returns;
//! - every command has a deadline (`commandTimeoutMs`); a late reply is discarded;
//! - a connection that answers nothing for two timeouts while commands wait is dropped and
//!   made anew (a black-holed socket never recovers by itself).

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use napi::bindgen_prelude::spawn;
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};
use tokio::sync::Notify;

use crate::config::{ConnOptions, Limits};
use crate::error::{CacheError, CacheResult};
use crate::store::codec::{encode, parse_max, Resp, MAX_STATUS_LINE};
use crate::store::script::{is_noscript, Batch, BatchCall, ScriptCall};
use crate::tls::Tls;

/// Called once with the reply (or the failure) of a command, on the I/O task.
pub type Done = Box<dyn FnOnce(CacheResult<Resp>) + Send>;

struct Pending {
    done: Option<Done>,
    deadline: Instant,
    /// Bytes of its encoding in the outbox (to drop it there if it expires before it is sent).
    len: usize,
}

/// Commands queued and not yet handed to the writer: their encodings from `buf[head..]` on,
/// one [`Pending`] per command in the same order, then the open batch if there is one.
#[derive(Default)]
struct Outbox {
    buf: Vec<u8>,
    /// Bytes before it were already taken (or dropped); compacted as it grows.
    head: usize,
    queue: VecDeque<Pending>,
    /// Calls of one batchable script queued since the last command (see
    /// [`Pipeline::submit_batch_deferred`]): the outbox's last command, still growing. It is
    /// closed (encoded, queued) by the next other command, by a flush and by the writer, so
    /// commands leave in the order they were queued.
    open: Option<OpenBatch>,
}

/// The open batch of an [`Outbox`].
struct OpenBatch {
    batch: Batch,
    /// One per call, in call order.
    dones: Vec<Done>,
    /// Its first call's: the batch is answered by then.
    deadline: Instant,
}

/// Where and how to connect. A plain TCP endpoint is
/// `Endpoint { host, port, username, password, db, client_name, transport: Transport::Tcp }`,
/// or [`Endpoint::tcp`].
#[derive(Clone)]
pub struct Endpoint {
    /// The server's host (for TLS also the name its certificate is checked against, unless
    /// [`Tls`] names another); unused for a Unix socket.
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<String>,
    pub db: i64,
    /// Set with `CLIENT SETNAME` in the handshake (`connectionName`).
    pub client_name: Option<String>,
    pub transport: Transport,
}

impl Endpoint {
    /// A plain TCP endpoint.
    pub fn tcp(
        host: String,
        port: u16,
        username: Option<String>,
        password: Option<String>,
        db: i64,
    ) -> Endpoint {
        Endpoint {
            host,
            port,
            username,
            password,
            db,
            client_name: None,
            transport: Transport::Tcp,
        }
    }

    /// This endpoint with the parts `o` gives replacing its own (the options over the URL).
    pub fn with_options(mut self, o: &ConnOptions) -> Endpoint {
        if o.username.is_some() {
            self.username.clone_from(&o.username);
        }
        if o.password.is_some() {
            self.password.clone_from(&o.password);
        }
        if let Some(db) = o.db {
            self.db = db;
        }
        if o.name.is_some() {
            self.client_name.clone_from(&o.name);
        }
        self
    }

    /// The same server under the client name `<name><suffix>` (e.g. `:sub` for a pub/sub
    /// connection), when it has a name.
    pub fn named_with_suffix(&self, suffix: &str) -> Endpoint {
        let mut ep = self.clone();
        if let Some(n) = &mut ep.client_name {
            n.push_str(suffix);
        }
        ep
    }
}

/// The link under the RESP stream.
#[derive(Clone)]
pub enum Transport {
    Tcp,
    /// TLS over TCP; never falls back to plaintext.
    Tls(Arc<Tls>),
    /// A Unix domain socket at this path.
    Unix(PathBuf),
}

/// A whole connection (for a consumer that does not split it, e.g. redis-rs' `PubSub`).
pub trait Duplex: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Duplex for T {}

/// The halves of a connection: the reader and the writer are independent select branches.
type Reader = Box<dyn AsyncRead + Send + Unpin>;
type Writer = Box<dyn AsyncWrite + Send + Unpin>;

/// A connected stream, before the RESP handshake.
enum Link {
    Tcp(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    Unix(UnixStream),
}

impl Link {
    /// TCP and Unix sockets split into owned halves (no lock between them); a TLS stream
    /// shares one session state, so its halves are `tokio::io::split`'s (their lock is never
    /// contended: one task polls both). → (reader, writer, whether the writer buffers: TLS
    /// holds records it could not send yet until a flush).
    fn into_halves(self) -> (Reader, Writer, bool) {
        match self {
            Link::Tcp(s) => {
                let (r, w) = s.into_split();
                (Box::new(r), Box::new(w), false)
            }
            Link::Tls(s) => {
                let (r, w) = tokio::io::split(s);
                (Box::new(r), Box::new(w), true)
            }
            Link::Unix(s) => {
                let (r, w) = s.into_split();
                (Box::new(r), Box::new(w), false)
            }
        }
    }

    fn into_duplex(self) -> Box<dyn Duplex> {
        match self {
            Link::Tcp(s) => Box::new(s),
            Link::Tls(s) => Box::new(s),
            Link::Unix(s) => Box::new(s),
        }
    }
}

/// Opens the transport of `ep` (TCP, TLS or Unix socket) with no RESP handshake: errors are
/// passed through `scrub`. A TLS failure is an error, never a plaintext connection.
async fn open_link(
    ep: &Endpoint,
    scrub: &(dyn Fn(String) -> String + Send + Sync),
) -> CacheResult<Link> {
    let unavailable = |e: String| CacheError::Unavailable(scrub(e));
    let tcp = || async {
        let stream = TcpStream::connect((ep.host.as_str(), ep.port))
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        let _ = stream.set_nodelay(true);
        // A connection given up on is reset, not closed: the commands it still holds in the
        // socket buffers are discarded by the kernels instead of being run by a hung Redis
        // when it wakes up (nothing stale is replayed). Dropping a socket never blocks in
        // Tokio.
        let _ = stream.set_zero_linger();
        Ok::<_, CacheError>(stream)
    };
    match &ep.transport {
        Transport::Tcp => Ok(Link::Tcp(tcp().await?)),
        Transport::Tls(tls) => {
            let name = tls.name_for(&ep.host)?;
            let stream = tcp().await?;
            let connector = tokio_rustls::TlsConnector::from(tls.client_config());
            let stream = connector
                .connect(name, stream)
                .await
                .map_err(|e| unavailable(format!("TLS handshake failed: {e}")))?;
            Ok(Link::Tls(Box::new(stream)))
        }
        Transport::Unix(path) => UnixStream::connect(path)
            .await
            .map(Link::Unix)
            .map_err(|e| unavailable(format!("Unix socket: {e}"))),
    }
}

/// A connection to `ep` after the handshake (AUTH, SELECT, CLIENT SETNAME), within
/// `timeout`: for connections that are not pipelined (a pub/sub subscriber, whose own RESP
/// client then needs no credentials).
pub async fn open_stream(
    ep: &Endpoint,
    timeout: Duration,
    scrub: &(dyn Fn(String) -> String + Send + Sync),
) -> CacheResult<Box<dyn Duplex>> {
    let open = async {
        let mut stream = open_link(ep, scrub).await?.into_duplex();
        {
            let (mut r, mut w) = tokio::io::split(&mut stream);
            handshake(&mut r, &mut w, ep, scrub).await?;
        }
        Ok::<_, CacheError>(stream)
    };
    match tokio::time::timeout(timeout, open).await {
        Ok(r) => r,
        Err(_) => Err(CacheError::Unavailable(format!(
            "connect timed out after {} ms",
            timeout.as_millis()
        ))),
    }
}

struct Shared {
    endpoint: Endpoint,
    out: Mutex<Outbox>,
    notify: Notify,
    command_timeout: Duration,
    connect_timeout: Duration,
    limits: Limits,
    healthy: AtomicBool,
    closed: AtomicBool,
    started: AtomicBool,
    /// Writes of the outbox to the socket, and the commands they carried.
    writes: AtomicU64,
    sent: AtomicU64,
    /// Commands refused because the outbox was full.
    refused: AtomicU64,
    scrub: Box<dyn Fn(String) -> String + Send + Sync>,
}

/// After a failed connect, commands fail at once for this long before the next attempt.
const RECONNECT_BACKOFF: Duration = Duration::from_millis(100);
const TICK: Duration = Duration::from_millis(10);
/// The writer takes at most this many bytes of whole commands from the outbox at a time
/// (at least one command): what it took is committed to the socket (each such command will
/// consume a reply), the rest can still expire unsent and be dropped.
const WRITE_CHUNK: usize = 1024 * 1024;
/// Longest handshake reply (AUTH, SELECT, CLIENT SETNAME) read before the connection is refused.
const MAX_HANDSHAKE_BYTES: usize = 64 * 1024;
/// A batch of calls (see [`Pipeline::submit_batch_deferred`]) holds at most this many calls and
/// bytes: a script call stays short in Redis (a rate-limit hit costs about 2 µs of it).
const MAX_BATCH_CALLS: usize = 64;
const MAX_BATCH_BYTES: usize = 64 * 1024;

pub struct Pipeline {
    shared: Arc<Shared>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Pipeline {
    pub fn new(
        endpoint: Endpoint,
        command_timeout: Duration,
        connect_timeout: Duration,
        limits: Limits,
        scrub: Box<dyn Fn(String) -> String + Send + Sync>,
    ) -> Pipeline {
        Pipeline {
            shared: Arc::new(Shared {
                endpoint,
                out: Mutex::new(Outbox::default()),
                notify: Notify::new(),
                command_timeout,
                connect_timeout,
                limits,
                healthy: AtomicBool::new(true),
                closed: AtomicBool::new(false),
                started: AtomicBool::new(false),
                writes: AtomicU64::new(0),
                sent: AtomicU64::new(0),
                refused: AtomicU64::new(0),
                scrub,
            }),
            task: Mutex::new(None),
        }
    }

    /// (writes of the outbox to the socket, commands they carried) so far.
    pub fn transport_counts(&self) -> (u64, u64) {
        let s = &self.shared;
        (
            s.writes.load(Ordering::Relaxed),
            s.sent.load(Ordering::Relaxed),
        )
    }

    /// Commands refused so far because the outbox was full.
    pub fn refused_count(&self) -> u64 {
        self.shared.refused.load(Ordering::Relaxed)
    }

    pub fn is_healthy(&self) -> bool {
        self.shared.healthy.load(Ordering::Relaxed)
    }

    /// Queues one command: `write` appends its encoding; `done` gets its reply. Never blocks.
    pub fn submit(&self, write: impl FnOnce(&mut Vec<u8>), done: Done) {
        self.submit_as(write, done, Wake::Now, Due::Fresh(self.deadline()));
    }

    /// [`submit`](Self::submit) from the JS thread: the command waits in the outbox for the
    /// [`flush`](Self::flush) that the façade makes once per tick of the event loop, so every
    /// command a tick starts leaves in one write and the I/O task is woken once per tick, not
    /// once per command (each wake is a thread switch on both sides).
    pub fn submit_deferred(&self, write: impl FnOnce(&mut Vec<u8>), done: Done) {
        self.submit_as(write, done, Wake::OnFlush, Due::Fresh(self.deadline()));
    }

    fn deadline(&self) -> Instant {
        Instant::now() + self.shared.command_timeout
    }

    /// [`submit`](Self::submit) (or, when `deferred`, [`submit_deferred`](Self::submit_deferred))
    /// answered by `deadline` at the latest: a command resent elsewhere (a cluster redirection)
    /// keeps the deadline of its first sending.
    pub fn submit_until(
        &self,
        write: impl FnOnce(&mut Vec<u8>),
        done: Done,
        deadline: Instant,
        deferred: bool,
    ) {
        let wake = if deferred { Wake::OnFlush } else { Wake::Now };
        self.submit_as(write, done, wake, Due::Kept(deadline));
    }

    fn submit_as(&self, write: impl FnOnce(&mut Vec<u8>), done: Done, wake: Wake, due: Due) {
        if let Some(done) = self.refuse_if_closed(done) {
            enqueue(&self.shared, write, done, wake, due);
        }
    }

    /// `done` back when the pipeline is open (its I/O task started on first use); otherwise it
    /// is answered `Closed` here.
    fn refuse_if_closed(&self, done: Done) -> Option<Done> {
        if self.shared.closed.load(Ordering::Relaxed) {
            done(Err(CacheError::Closed));
            return None;
        }
        if !self.shared.started.swap(true, Ordering::AcqRel) {
            let shared = self.shared.clone();
            *self.task.lock() = Some(spawn(io_loop(shared)));
        }
        Some(done)
    }

    /// Sends what [`submit_deferred`](Self::submit_deferred) queued: wakes the I/O task if
    /// the outbox holds anything.
    pub fn flush(&self) {
        let mut out = self.shared.out.lock();
        out.close_batch(&self.shared);
        if !out.queue.is_empty() {
            drop(out);
            self.shared.notify.notify_one();
        }
    }

    /// Queues one call of a batchable script (see [`BatchCall`]), sent by the next
    /// [`flush`](Self::flush) together with the calls of the same script queued right before
    /// and after it, up to [`MAX_BATCH_CALLS`]: one EVALSHA for all of them, whose reply the
    /// pipeline splits among their `done`s. A call queued after any other command starts a
    /// new batch, so the order of commands is the order they were queued. On NOSCRIPT the
    /// batch is sent once more as EVAL, with the deadline of its first call, which it is
    /// answered by (at most one tick before the others' own).
    pub fn submit_batch_deferred(&self, call: BatchCall, done: Done) {
        let Some(done) = self.refuse_if_closed(done) else {
            return;
        };
        let shared = &self.shared;
        let refused = {
            let mut out = shared.out.lock();
            let unsent =
                out.buf.len() - out.head + out.open.as_ref().map_or(0, |o| o.batch.bytes());
            if (!out.queue.is_empty() || out.open.is_some())
                && unsent + call.bytes() > shared.limits.max_outbox
            {
                Some(done)
            } else {
                match out.open.as_mut() {
                    Some(o)
                        if o.batch.takes(&call)
                            && o.batch.calls() < MAX_BATCH_CALLS
                            && o.batch.bytes() + call.bytes() <= MAX_BATCH_BYTES =>
                    {
                        o.batch.push(call);
                        o.dones.push(done);
                    }
                    _ => {
                        out.close_batch(shared);
                        out.open = Some(OpenBatch {
                            batch: Batch::new(call),
                            dones: vec![done],
                            deadline: self.deadline(),
                        });
                    }
                }
                None
            }
        };
        if let Some(done) = refused {
            refuse(shared, done);
        }
    }

    /// Queues one script call as EVALSHA. On NOSCRIPT (first use since Redis started, or
    /// after SCRIPT FLUSH) it is sent once more as EVAL with the script's source, which also
    /// caches the script in Redis for the EVALSHAs that follow. `done` gets the final reply.
    pub fn submit_script(&self, call: ScriptCall, done: Done) {
        self.submit_script_as(call, done, Wake::Now);
    }

    /// [`submit_script`](Self::submit_script), sent by the next [`flush`](Self::flush).
    pub fn submit_script_deferred(&self, call: ScriptCall, done: Done) {
        self.submit_script_as(call, done, Wake::OnFlush);
    }

    fn submit_script_as(&self, call: ScriptCall, done: Done, wake: Wake) {
        let call = Arc::new(call);
        let again = call.clone();
        let shared = self.shared.clone();
        // The EVAL after a NOSCRIPT keeps this deadline: one call, one commandTimeoutMs.
        let deadline = self.deadline();
        self.submit_as(
            |b| call.write(b, false),
            Box::new(move |r| match r {
                // On the I/O task: it sends the EVAL itself.
                Err(CacheError::Redis(e)) if is_noscript(&e) => {
                    if shared.closed.load(Ordering::Relaxed) {
                        done(Err(CacheError::Closed));
                    } else {
                        enqueue(
                            &shared,
                            |b| again.write(b, true),
                            done,
                            Wake::Now,
                            Due::Kept(deadline),
                        );
                    }
                }
                r => done(r),
            }),
            wake,
            Due::Fresh(deadline),
        );
    }

    /// Runs one command and waits for its reply.
    pub async fn request(&self, write: impl FnOnce(&mut Vec<u8>)) -> CacheResult<Resp> {
        self.request_until(write, self.deadline()).await
    }

    /// [`request`](Self::request) answered by `deadline` at the latest (a second command of
    /// one call keeps the call's deadline).
    pub async fn request_until(
        &self,
        write: impl FnOnce(&mut Vec<u8>),
        deadline: Instant,
    ) -> CacheResult<Resp> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.submit_as(
            write,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
            Wake::Now,
            Due::Kept(deadline),
        );
        rx.await.unwrap_or(Err(CacheError::Closed))
    }

    pub fn command_timeout(&self) -> Duration {
        self.shared.command_timeout
    }

    pub fn close(&self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        self.shared.notify.notify_one();
        if let Some(t) = self.task.lock().take() {
            t.abort();
        }
        fail_outbox(&self.shared, || CacheError::Closed);
    }
}

/// When the I/O task hears of a queued command.
#[derive(Clone, Copy, PartialEq)]
enum Wake {
    /// At once, if the outbox was empty (else a wake is already on its way).
    Now,
    /// At the next [`Pipeline::flush`].
    OnFlush,
}

/// When a command must be answered by.
#[derive(Clone, Copy)]
enum Due {
    /// `commandTimeoutMs` from the moment it was submitted: it cannot have passed yet (so
    /// the hot path reads the clock once per command).
    Fresh(Instant),
    /// A deadline kept from an earlier sending (a resend, a second command of one call): it
    /// may have passed.
    Kept(Instant),
}

/// Appends a command to the outbox (the I/O task is running) and wakes the I/O task as
/// `wake` says. A command that finds the outbox full (`maxOutboxBytes` of unsent commands:
/// Redis does not read) or its deadline already passed is answered at once instead.
fn enqueue(
    shared: &Arc<Shared>,
    write: impl FnOnce(&mut Vec<u8>),
    done: Done,
    wake: Wake,
    due: Due,
) {
    let deadline = match due {
        Due::Fresh(d) => d,
        Due::Kept(d) if d > Instant::now() => d,
        Due::Kept(_) => {
            done(Err(CacheError::Timeout(
                shared.command_timeout.as_millis() as u64
            )));
            return;
        }
    };
    let (was_empty, refused) = {
        let mut out = shared.out.lock();
        out.close_batch(shared);
        let was_empty = out.queue.is_empty();
        let start = out.buf.len();
        write(&mut out.buf);
        let len = out.buf.len() - start;
        // One command always fits in an empty outbox (its size is bounded by maxValueBytes).
        if !was_empty && start - out.head + len > shared.limits.max_outbox {
            out.buf.truncate(start);
            (was_empty, Some(done))
        } else {
            out.queue.push_back(Pending {
                done: Some(done),
                deadline,
                len,
            });
            (was_empty, None)
        }
    };
    if let Some(done) = refused {
        refuse(shared, done);
        return;
    }
    if was_empty && wake == Wake::Now {
        shared.notify.notify_one();
    }
}

/// Answers a command the full outbox refused.
fn refuse(shared: &Shared, done: Done) {
    shared.refused.fetch_add(1, Ordering::Relaxed);
    let max = shared.limits.max_outbox;
    done(Err(CacheError::Unavailable(format!(
        "the outbox is full ({max} bytes of commands Redis has not read: maxOutboxBytes)"
    ))));
}

/// The callback of a sent batch: on NOSCRIPT it sends the batch once more as EVAL (from the
/// I/O task, keeping the first call's deadline); otherwise it splits the reply among the calls.
fn batch_done(shared: Arc<Shared>, batch: Batch, dones: Vec<Done>, deadline: Instant) -> Done {
    Box::new(move |r| match r {
        Err(CacheError::Redis(e)) if is_noscript(&e) => {
            if shared.closed.load(Ordering::Relaxed) {
                dones.into_iter().for_each(|d| d(Err(CacheError::Closed)));
                return;
            }
            let again = shared.clone();
            enqueue(
                &shared,
                |b| batch.write(b, true),
                Box::new(move |r| split_batch_reply(&again, r, dones)),
                Wake::Now,
                Due::Kept(deadline),
            );
        }
        r => split_batch_reply(&shared, r, dones),
    })
}

/// Gives each call of a batch its reply: a batch of one call is answered as that call sent
/// alone; a batch of several gets an array with one reply per call, where a call that failed
/// holds its error. A failure of the whole (a timeout, a lost connection) answers them all.
fn split_batch_reply(shared: &Shared, r: CacheResult<Resp>, mut dones: Vec<Done>) {
    if dones.len() == 1 {
        if let Some(done) = dones.pop() {
            done(r);
        }
        return;
    }
    match r {
        Ok(Resp::Array(replies)) if replies.len() == dones.len() => {
            for (done, reply) in dones.into_iter().zip(replies) {
                done(match reply {
                    Resp::Error(e) => Err(CacheError::Redis((shared.scrub)(e))),
                    reply => Ok(reply),
                });
            }
        }
        Ok(_) => {
            let n = dones.len();
            for done in dones {
                done(Err(CacheError::Redis(format!(
                    "unexpected reply to a batch of {n} script calls"
                ))));
            }
        }
        Err(e) => dones.into_iter().for_each(|d| d(Err(e.clone()))),
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        self.close();
    }
}

fn fail_all(queue: &mut VecDeque<Pending>, err: impl Fn() -> CacheError) {
    for mut p in queue.drain(..) {
        if let Some(done) = p.done.take() {
            done(Err(err()));
        }
    }
}

/// Fails every queued command and drops its bytes with it: bytes left in the outbox without
/// their command would be sent after the next connect and shift every reply onto the wrong
/// caller. The callbacks run outside the outbox lock.
fn fail_outbox(shared: &Shared, err: impl Fn() -> CacheError) {
    let (mut queue, open) = {
        let mut out = shared.out.lock();
        out.buf.clear();
        out.head = 0;
        (std::mem::take(&mut out.queue), out.open.take())
    };
    fail_all(&mut queue, &err);
    for done in open.into_iter().flat_map(|o| o.dones) {
        done(Err(err()));
    }
}

impl Outbox {
    /// Queues the open batch (if any) as the command it becomes.
    fn close_batch(&mut self, shared: &Arc<Shared>) {
        let Some(OpenBatch {
            batch,
            dones,
            deadline,
        }) = self.open.take()
        else {
            return;
        };
        let start = self.buf.len();
        batch.write(&mut self.buf, false);
        let len = self.buf.len() - start;
        self.queue.push_back(Pending {
            done: Some(batch_done(shared.clone(), batch, dones, deadline)),
            deadline,
            len,
        });
    }

    /// Hands the writer the next commands: whole commands from the front, up to
    /// [`WRITE_CHUNK`] bytes (at least one), appended to `wbuf` (which is empty) and their
    /// [`Pending`]s to `inflight`. Commands answered (timed out) before they could be sent
    /// are dropped here: a command whose caller has given up is never sent. → commands
    /// taken.
    fn take(&mut self, wbuf: &mut Vec<u8>, inflight: &mut VecDeque<Pending>) -> usize {
        let unsent = self.buf.len() - self.head;
        if self.head == 0 && unsent <= WRITE_CHUNK && self.queue.iter().all(|p| p.done.is_some()) {
            // The usual case: all of it, without a copy.
            std::mem::swap(&mut self.buf, wbuf);
            let n = self.queue.len();
            inflight.extend(self.queue.drain(..));
            return n;
        }
        let mut taken = 0;
        while let Some(p) = self.queue.front() {
            if p.done.is_some() && !wbuf.is_empty() && wbuf.len() + p.len > WRITE_CHUNK {
                break;
            }
            let Some(p) = self.queue.pop_front() else {
                break;
            };
            let bytes = &self.buf[self.head..self.head + p.len];
            self.head += p.len;
            if p.done.is_some() {
                wbuf.extend_from_slice(bytes);
                inflight.push_back(p);
                taken += 1;
            }
        }
        self.compact();
        taken
    }

    /// Frees the bytes before `head` once they are most of the buffer (amortized O(1) per
    /// byte), or all of them once nothing is queued.
    fn compact(&mut self) {
        if self.queue.is_empty() {
            self.buf.clear();
            self.head = 0;
        } else if self.head > self.buf.len() / 2 {
            self.buf.drain(..self.head);
            self.head = 0;
        }
    }

    /// Takes the commands whose deadline has passed before they were sent (their callbacks
    /// are returned, to run outside the lock): those at the front leave with their bytes,
    /// any other is marked answered and dropped by the next [`take`](Self::take).
    fn expire(&mut self, now: Instant) -> Vec<Done> {
        let mut expired = Vec::new();
        if self.open.as_ref().is_some_and(|o| o.deadline <= now) {
            expired.extend(self.open.take().into_iter().flat_map(|o| o.dones));
        }
        while self.queue.front().is_some_and(|p| p.deadline <= now) {
            if let Some(mut p) = self.queue.pop_front() {
                self.head += p.len;
                expired.extend(p.done.take());
            }
        }
        for p in self.queue.iter_mut() {
            if p.deadline <= now {
                expired.extend(p.done.take());
            }
        }
        if !expired.is_empty() {
            self.compact();
        }
        expired
    }
}

/// Answers every command of the outbox whose deadline passed before it was sent.
fn expire_outbox(shared: &Shared, now: Instant) -> bool {
    let expired = shared.out.lock().expire(now);
    let any = !expired.is_empty();
    let ms = shared.command_timeout.as_millis() as u64;
    for done in expired {
        done(Err(CacheError::Timeout(ms)));
    }
    any
}

/// Answers every command whose deadline has passed; true if any was answered.
fn expire(queue: &mut VecDeque<Pending>, now: Instant, timeout: Duration) -> bool {
    let mut any = false;
    for p in queue.iter_mut() {
        if p.deadline <= now {
            if let Some(done) = p.done.take() {
                done(Err(CacheError::Timeout(timeout.as_millis() as u64)));
                any = true;
            }
        }
    }
    any
}

async fn connect(shared: &Shared) -> CacheResult<(Reader, Writer, bool)> {
    let ep = &shared.endpoint;
    let (mut reader, mut writer, buffered) = open_link(ep, &*shared.scrub).await?.into_halves();
    handshake(&mut reader, &mut writer, ep, &*shared.scrub).await?;
    Ok((reader, writer, buffered))
}

/// The commands that open a connection to `ep`: AUTH (with the user name, if any), SELECT
/// (unless database 0), CLIENT SETNAME; sent at once, their replies read (at most
/// [`MAX_HANDSHAKE_BYTES`]); the first error reply fails the connection.
async fn handshake<R, W>(
    reader: &mut R,
    writer: &mut W,
    ep: &Endpoint,
    scrub: &(dyn Fn(String) -> String + Send + Sync),
) -> CacheResult<()>
where
    R: AsyncRead + Unpin + ?Sized,
    W: AsyncWrite + Unpin + ?Sized,
{
    let unavailable = |e: String| CacheError::Unavailable(scrub(e));
    let mut hello = Vec::new();
    let mut expected = 0;
    if let Some(pass) = &ep.password {
        match &ep.username {
            Some(user) => encode(&mut hello, &[b"AUTH", user.as_bytes(), pass.as_bytes()]),
            None => encode(&mut hello, &[b"AUTH", pass.as_bytes()]),
        }
        expected += 1;
    }
    if ep.db != 0 {
        encode(&mut hello, &[b"SELECT", ep.db.to_string().as_bytes()]);
        expected += 1;
    }
    if let Some(name) = &ep.client_name {
        encode(&mut hello, &[b"CLIENT", b"SETNAME", name.as_bytes()]);
        expected += 1;
    }
    if expected == 0 {
        return Ok(());
    }
    writer
        .write_all(&hello)
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    writer
        .flush()
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    let mut buf = Vec::new();
    let mut pos = 0;
    while expected > 0 {
        match parse_max(&buf[pos..], MAX_HANDSHAKE_BYTES).map_err(unavailable)? {
            Some((Resp::Error(e), _)) => return Err(unavailable(e)),
            Some((_, used)) => {
                pos += used;
                expected -= 1;
            }
            None => {
                if buf.len() > MAX_HANDSHAKE_BYTES {
                    return Err(unavailable("handshake reply too long".into()));
                }
                let n = reader
                    .read_buf(&mut buf)
                    .await
                    .map_err(|e| unavailable(e.to_string()))?;
                if n == 0 {
                    return Err(unavailable("connection closed during handshake".into()));
                }
            }
        }
    }
    Ok(())
}

/// Capacity the read buffer goes back to once a large reply has been handled.
const READ_BUFFER: usize = 64 * 1024;

async fn io_loop(shared: Arc<Shared>) {
    let mut conn: Option<(Reader, Writer)> = None;
    // The writer holds bytes until flushed (TLS).
    let mut buffered = false;
    let mut inflight: VecDeque<Pending> = VecDeque::new();
    let mut rbuf: Vec<u8> = Vec::with_capacity(READ_BUFFER);
    // What the writer took from the outbox, and how much of it is written.
    let mut wbuf: Vec<u8> = Vec::with_capacity(READ_BUFFER);
    let mut wpos = 0usize;
    // Everything taken is written, but a flush is still due.
    let mut unflushed = false;
    let mut last_failure: Option<Instant> = None;
    let mut last_reply = Instant::now();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let max_reply = shared.limits.max_reply;

    loop {
        if shared.closed.load(Ordering::Relaxed) {
            fail_all(&mut inflight, || CacheError::Closed);
            fail_outbox(&shared, || CacheError::Closed);
            return;
        }
        let Some((reader, writer)) = conn.as_mut() else {
            // Disconnected: wait for work, then make one attempt (or fail fast in back-off).
            if shared.out.lock().queue.is_empty() {
                shared.notify.notified().await;
                continue;
            }
            if last_failure.is_some_and(|t| t.elapsed() < RECONNECT_BACKOFF) {
                fail_outbox(&shared, || {
                    CacheError::Unavailable("Redis is not reachable (retrying shortly)".into())
                });
                continue;
            }
            let attempt = tokio::time::timeout(shared.connect_timeout, connect(&shared));
            tokio::pin!(attempt);
            let result = loop {
                tokio::select! {
                    r = &mut attempt => break r,
                    _ = tick.tick() => {
                        expire_outbox(&shared, Instant::now());
                    }
                }
            };
            match result {
                Ok(Ok(s)) => {
                    shared.healthy.store(true, Ordering::Relaxed);
                    last_failure = None;
                    last_reply = Instant::now();
                    rbuf.clear();
                    wbuf.clear();
                    wpos = 0;
                    unflushed = false;
                    let (reader, writer, b) = s;
                    buffered = b;
                    conn = Some((reader, writer));
                    // The commands queued meanwhile were announced to the wait we left: send
                    // them now.
                    shared.notify.notify_one();
                }
                Ok(Err(e)) => {
                    shared.healthy.store(false, Ordering::Relaxed);
                    last_failure = Some(Instant::now());
                    fail_outbox(&shared, || e.clone());
                }
                Err(_) => {
                    shared.healthy.store(false, Ordering::Relaxed);
                    last_failure = Some(Instant::now());
                    let ms = shared.connect_timeout.as_millis();
                    fail_outbox(&shared, || {
                        CacheError::Unavailable(format!("connect timed out after {ms} ms"))
                    });
                }
            }
            continue;
        };

        // The writer, the reader and the deadline tick are branches of one select: a socket
        // that takes no more bytes (Redis hung, buffers full) blocks only the writer's
        // branch, never the tick that answers expired commands nor the liveness check.
        let writing = wpos < wbuf.len();
        let mut refill = false;
        let mut lost: Option<String> = None;
        tokio::select! {
            _ = shared.notify.notified(), if !writing => refill = true,
            // Writes what the writer took; once all of it is written, a TLS writer is
            // flushed (it holds the records the socket did not take yet).
            r = async {
                if writing {
                    writer.write(&wbuf[wpos..]).await.map(Some)
                } else {
                    writer.flush().await.map(|()| None)
                }
            }, if writing || unflushed => match r {
                Ok(Some(0)) => lost = Some("connection closed while writing".into()),
                Ok(Some(n)) => {
                    wpos += n;
                    if wpos == wbuf.len() {
                        wbuf.clear();
                        wpos = 0;
                        refill = true;
                        unflushed = buffered;
                    }
                }
                Ok(None) => unflushed = false,
                Err(e) => lost = Some(e.to_string()),
            },
            r = reader.read_buf(&mut rbuf) => match r {
                Ok(0) => lost = Some("connection closed by Redis".into()),
                Err(e) => lost = Some(e.to_string()),
                Ok(_) => {
                    let mut pos = 0;
                    loop {
                        match parse_max(&rbuf[pos..], max_reply) {
                            Ok(Some((reply, used))) => {
                                pos += used;
                                // Liveness is judged by whole replies, never by bytes: a
                                // link that trickles bytes is as dead as a silent one.
                                last_reply = Instant::now();
                                shared.healthy.store(true, Ordering::Relaxed);
                                let Some(mut p) = inflight.pop_front() else {
                                    lost = Some("reply without a request".into());
                                    break;
                                };
                                if let Some(done) = p.done.take() {
                                    done(match reply {
                                        Resp::Error(e) => Err(CacheError::Redis((shared.scrub)(e))),
                                        reply => Ok(reply),
                                    });
                                }
                            }
                            Ok(None) => break,
                            Err(e) => {
                                lost = Some(e);
                                break;
                            }
                        }
                    }
                    rbuf.drain(..pos);
                    if lost.is_none() && rbuf.len() > max_reply.saturating_add(MAX_STATUS_LINE) {
                        lost = Some(format!("reply longer than maxReplyBytes ({max_reply})"));
                    }
                    if rbuf.is_empty() && rbuf.capacity() > 16 * READ_BUFFER {
                        rbuf = Vec::with_capacity(READ_BUFFER);
                    }
                }
            },
            _ = tick.tick(), if !inflight.is_empty() => {
                let now = Instant::now();
                if expire(&mut inflight, now, shared.command_timeout) {
                    shared.healthy.store(false, Ordering::Relaxed);
                }
                // Commands still unsent behind a writer that cannot write expire too.
                if expire_outbox(&shared, now) {
                    shared.healthy.store(false, Ordering::Relaxed);
                }
                // Requests waiting and no reply for two timeouts: the link is dead.
                if now.duration_since(last_reply) > shared.command_timeout * 2 {
                    lost = Some("no reply within two command timeouts".into());
                }
            }
        }
        if refill && lost.is_none() {
            let mut out = shared.out.lock();
            out.close_batch(&shared);
            if !out.queue.is_empty() {
                if inflight.is_empty() {
                    // The silence that counts starts with the first request waiting.
                    last_reply = Instant::now();
                }
                let n = out.take(&mut wbuf, &mut inflight);
                drop(out);
                if !wbuf.is_empty() {
                    shared.writes.fetch_add(1, Ordering::Relaxed);
                    shared.sent.fetch_add(n as u64, Ordering::Relaxed);
                }
            }
        }
        if let Some(reason) = lost {
            shared.healthy.store(false, Ordering::Relaxed);
            conn = None;
            rbuf.clear();
            wbuf.clear();
            wpos = 0;
            unflushed = false;
            let text = (shared.scrub)(format!("connection lost: {reason}"));
            fail_all(&mut inflight, || CacheError::Unavailable(text.clone()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(out: &mut Outbox, bytes: &[u8], deadline: Instant) -> Arc<Mutex<Vec<String>>> {
        let log = Arc::new(Mutex::new(Vec::new()));
        let l = log.clone();
        out.buf.extend_from_slice(bytes);
        out.queue.push_back(Pending {
            done: Some(Box::new(move |r| l.lock().push(format!("{r:?}")))),
            deadline,
            len: bytes.len(),
        });
        log
    }

    #[test]
    fn the_writer_takes_whole_commands_in_bounded_chunks_and_expired_ones_are_never_sent() {
        // Hardening 1: what the writer takes is bounded; commands that expire while still in
        // the outbox leave it with their bytes.
        let now = Instant::now();
        let later = now + Duration::from_secs(60);
        let mut out = Outbox::default();
        let big = vec![b'a'; WRITE_CHUNK - 10];
        pending(&mut out, &big, later);
        let second = pending(&mut out, b"*1\r\n$4\r\nPING\r\n", later);
        let third = pending(&mut out, b"*1\r\n$4\r\nECHO\r\n", now);
        pending(&mut out, b"*1\r\n$4\r\nLAST\r\n", later);
        let mut wbuf = Vec::new();
        let mut inflight = VecDeque::new();
        assert_eq!(out.take(&mut wbuf, &mut inflight), 1, "the chunk is full");
        assert_eq!(wbuf.len(), WRITE_CHUNK - 10);
        // the third expires unsent: answered, and its bytes never leave
        let expired = out.expire(now);
        assert_eq!(expired.len(), 1);
        for d in expired {
            d(Err(CacheError::Timeout(1)));
        }
        assert!(third.lock()[0].contains("Timeout"));
        wbuf.clear();
        assert_eq!(out.take(&mut wbuf, &mut inflight), 2);
        assert_eq!(wbuf, b"*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nLAST\r\n");
        assert!(second.lock().is_empty());
        assert_eq!(inflight.len(), 3);
        assert!(out.queue.is_empty() && out.buf.is_empty() && out.head == 0);
    }

    /// A pipeline whose I/O task is never started: what it queues stays in its outbox.
    fn idle_pipeline(max_outbox: usize) -> Pipeline {
        let p = Pipeline::new(
            Endpoint::tcp("127.0.0.1".into(), 1, None, None, 0),
            Duration::from_secs(5),
            Duration::from_secs(5),
            Limits {
                max_outbox,
                ..Limits::default()
            },
            Box::new(|s| s),
        );
        p.shared.started.store(true, Ordering::SeqCst);
        p
    }

    fn logged(log: &Arc<Mutex<Vec<String>>>, name: &str) -> Done {
        let (log, name) = (log.clone(), name.to_string());
        Box::new(move |r| log.lock().push(format!("{name} {r:?}")))
    }

    static LUA: std::sync::LazyLock<crate::store::script::Script> =
        std::sync::LazyLock::new(|| crate::store::script::Script::new("return KEYS"));

    #[test]
    fn calls_of_a_batchable_script_leave_as_one_command_per_run_in_the_order_queued() {
        let p = idle_pipeline(1 << 20);
        let log = Arc::new(Mutex::new(Vec::new()));
        let call = |k: &str| BatchCall::new(&LUA, &[k], &["a"]);
        for k in ["k1", "k2", "k3"] {
            p.submit_batch_deferred(call(k), logged(&log, k));
        }
        p.submit_deferred(|b| encode(b, &[b"PING"]), logged(&log, "ping"));
        for k in ["k4", "k5"] {
            p.submit_batch_deferred(call(k), logged(&log, k));
        }
        assert!(
            p.shared.out.lock().open.is_some(),
            "the last run waits for the flush"
        );
        p.flush();
        let mut expected = Vec::new();
        let mut first = Batch::new(call("k1"));
        first.push(call("k2"));
        first.push(call("k3"));
        first.write(&mut expected, false);
        encode(&mut expected, &[b"PING"]);
        let mut last = Batch::new(call("k4"));
        last.push(call("k5"));
        last.write(&mut expected, false);
        let mut wbuf = Vec::new();
        let mut inflight = VecDeque::new();
        assert_eq!(p.shared.out.lock().take(&mut wbuf, &mut inflight), 3);
        assert_eq!(wbuf, expected);

        // the replies: one per call of each batch, a call that failed holds its error; a batch
        // whose reply does not fit its calls fails them all
        let mut answer = |r: CacheResult<Resp>| {
            let mut p = inflight.pop_front().unwrap();
            (p.done.take().unwrap())(r)
        };
        answer(Ok(Resp::Array(vec![
            Resp::Int(1),
            Resp::Error("ERR k2 refused".into()),
            Resp::Int(3),
        ])));
        answer(Ok(Resp::Simple("PONG".into())));
        answer(Ok(Resp::Array(vec![Resp::Int(4)])));
        let log = log.lock();
        assert_eq!(
            &log[..4],
            [
                "k1 Ok(Int(1))",
                "k2 Err(Redis(\"ERR k2 refused\"))",
                "k3 Ok(Int(3))",
                "ping Ok(Simple(\"PONG\"))"
            ]
        );
        assert!(log[4].starts_with("k4 Err(Redis(\"unexpected reply to a batch of 2"));
        assert!(log[5].starts_with("k5 Err(Redis(\"unexpected reply to a batch of 2"));
    }

    #[test]
    fn a_batch_is_bounded_in_calls_and_its_calls_expire_and_fail_with_the_outbox() {
        let p = idle_pipeline(1 << 20);
        let log = Arc::new(Mutex::new(Vec::new()));
        for i in 0..MAX_BATCH_CALLS + 1 {
            p.submit_batch_deferred(
                BatchCall::new(&LUA, &["k"], &[]),
                logged(&log, &format!("c{i}")),
            );
        }
        {
            let out = p.shared.out.lock();
            assert_eq!(out.queue.len(), 1, "a full batch is closed");
            assert_eq!(out.open.as_ref().map(|o| o.batch.calls()), Some(1));
        }
        // the open batch's calls time out with their first call's deadline, unsent
        let expired = p
            .shared
            .out
            .lock()
            .expire(Instant::now() + Duration::from_secs(6));
        assert_eq!(
            expired.len(),
            2,
            "the closed batch (one callback) and the open one's call"
        );
        assert!(p.shared.out.lock().open.is_none());
        for d in expired {
            d(Err(CacheError::Timeout(5000)));
        }
        assert_eq!(log.lock().len(), MAX_BATCH_CALLS + 1);
        assert!(log.lock().iter().all(|l| l.contains("Timeout")));

        // a closed pipeline answers an open batch's calls
        log.lock().clear();
        p.submit_batch_deferred(BatchCall::new(&LUA, &["k"], &[]), logged(&log, "a"));
        p.submit_batch_deferred(BatchCall::new(&LUA, &["k"], &[]), logged(&log, "b"));
        p.close();
        assert_eq!(*log.lock(), ["a Err(Closed)", "b Err(Closed)"]);
    }

    #[test]
    fn a_batch_call_that_finds_the_outbox_full_is_refused_alone() {
        let p = idle_pipeline(200);
        let log = Arc::new(Mutex::new(Vec::new()));
        let big = "x".repeat(120);
        for name in ["a", "b", "c"] {
            p.submit_batch_deferred(BatchCall::new(&LUA, &[&big], &[]), logged(&log, name));
        }
        assert_eq!(log.lock().len(), 2, "b and c refused: {:?}", log.lock());
        assert!(log.lock().iter().all(|l| l.contains("outbox is full")));
        assert_eq!(p.refused_count(), 2);
        assert_eq!(
            p.shared.out.lock().open.as_ref().map(|o| o.batch.calls()),
            Some(1)
        );
    }

    #[test]
    fn an_expired_front_of_the_outbox_leaves_with_its_bytes() {
        let now = Instant::now();
        let mut out = Outbox::default();
        pending(&mut out, b"AAAA", now);
        pending(&mut out, b"BB", now + Duration::from_secs(60));
        assert_eq!(out.expire(now).len(), 1);
        assert_eq!(&out.buf[out.head..], b"BB");
        let mut wbuf = Vec::new();
        let mut inflight = VecDeque::new();
        assert_eq!(out.take(&mut wbuf, &mut inflight), 1);
        assert_eq!(wbuf, b"BB");
    }
}
