//! The JS↔Rust boundary, built for throughput.
//!
//! A call from JS is one synchronous N-API call (`cache.sessionGet(id, …)`) that validates its
//! input (throwing `TypeError`/`RangeError` at once, before anything is written) and starts the
//! operation. Results are not returned one by one: they collect in a queue, and one call of a
//! threadsafe function hands the whole batch to JS, which resolves the waiting promises. Under
//! load that is one crossing per batch instead of one per call.
//!
//! The threadsafe function is weak: it never keeps Node alive. The façade keeps the process
//! alive while anything is in flight (a ref'd timer), so an idle cache lets the process exit.

use std::future::Future;
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use napi::bindgen_prelude::{spawn, Function, Null, ToNapiValue};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::{check_status, sys, Env, Status};
use napi_derive::napi;
use parking_lot::Mutex;

use crate::config::{Config, NativeOptions};
use crate::error::{js, CacheError, CacheResult};
use crate::near_cache::NearCache;
use crate::rules::{
    BATCH_ERROR, BATCH_FALSE, BATCH_NIL, BATCH_NUM, BATCH_PAIR, BATCH_ROW, BATCH_TRUE, BATCH_VALUE,
};
use crate::store::codec::Resp;
use crate::store::script::{BatchCall, ScriptCall};
use crate::store::transport::pipeline::Done;
use crate::store::Store;
use crate::subscription::PubSubState;

/// What an operation answers; the façade knows per operation how to read it.
pub enum Reply {
    Nil,
    Bool(bool),
    Num(f64),
    Str(String),
    Strs(Vec<String>),
    /// A few numbers at once (a JS array of numbers): no JSON for a flat numeric answer.
    Nums(Vec<f64>),
}

impl Reply {
    pub fn opt_str(v: Option<String>) -> Reply {
        v.map_or(Reply::Nil, Reply::Str)
    }
}

/// A GET's reply as a reply to JS: the string, or null.
fn bulk_or_nil(r: Resp) -> CacheResult<Reply> {
    bulk_opt(r).map(Reply::opt_str)
}

/// A GET's reply: the string, or none.
pub(crate) fn bulk_opt(r: Resp) -> CacheResult<Option<String>> {
    match r {
        Resp::Nil => Ok(None),
        Resp::Bulk(b) => String::from_utf8(b)
            .map(Some)
            .map_err(|_| CacheError::Redis("stored value is not UTF-8".into())),
        other => Err(CacheError::Redis(format!(
            "unexpected reply to GET: {other:?}"
        ))),
    }
}

struct Completion {
    id: u32,
    result: CacheResult<Reply>,
}

/// Completions waiting for the next delivery to JS.
#[derive(Default)]
struct Queue {
    items: Mutex<Vec<Completion>>,
    scheduled: AtomicBool,
}

/// One delivery, as JS receives it: `[head, values]`. `head` is a Float64Array with one row of
/// [`BATCH_ROW`] numbers per finished operation, in order: its id, the kind of its answer, and
/// two numbers. Flags, numbers and pairs of numbers (a rate-limit counter) travel in the row
/// itself; strings, lists and errors are the next entry of the JS array `values`. The numbers
/// are written into one buffer: no JS object and no element store per answer (building a JS
/// array entry by entry was ≈ 16 % of the JS thread under a stream of rate-limit hits).
pub struct Batch(Vec<Completion>);

unsafe fn reply_to_js(env: sys::napi_env, r: Reply) -> napi::Result<sys::napi_value> {
    unsafe {
        match r {
            Reply::Nil => Null::to_napi_value(env, Null),
            Reply::Bool(b) => bool::to_napi_value(env, b),
            Reply::Num(n) => f64::to_napi_value(env, n),
            Reply::Str(s) => str_to_js(env, &s),
            Reply::Strs(v) => Vec::<String>::to_napi_value(env, v),
            Reply::Nums(v) => Vec::<f64>::to_napi_value(env, v),
        }
    }
}

/// A string for JS. Cached values are nearly always ASCII (JSON as the ERP writes it): then V8
/// copies the bytes into a one-byte string as they are, with no UTF-8 decoding.
unsafe fn str_to_js(env: sys::napi_env, s: &str) -> napi::Result<sys::napi_value> {
    let mut out = ptr::null_mut();
    unsafe {
        if s.is_ascii() {
            check_status!(sys::napi_create_string_latin1(
                env,
                s.as_ptr().cast(),
                s.len() as isize,
                &mut out
            ))?;
        } else {
            check_status!(sys::napi_create_string_utf8(
                env,
                s.as_ptr().cast(),
                s.len() as isize,
                &mut out
            ))?;
        }
    }
    Ok(out)
}

/// Where the values of one batch go: the JS array (see [`Batch`]), or a test's stand-in that
/// can make a conversion fail.
trait BatchOut {
    type Value;
    type Error;
    /// An answer that is not a flag or number(s) as a JS value; it can fail (a string longer
    /// than V8 allows…).
    fn value(&mut self, r: Reply) -> Result<Self::Value, Self::Error>;
    /// A failure as a JS Error object (with `code`).
    fn error(&mut self, e: &CacheError) -> Self::Value;
    /// Appends to the delivery's values.
    fn push(&mut self, v: Self::Value) -> Result<(), Self::Error>;
}

/// The answer of a call whose reply could not be made a JS value.
const UNCONVERTIBLE: CacheError =
    CacheError::Internal("the reply could not be converted to a JS value");

/// A row's kind for an answer that is the next of the values, or `BATCH_SKIP` when it could
/// not be appended (only with a broken environment: the row is passed over).
fn pushed<O: BatchOut>(out: &mut O, v: O::Value, kind: u8) -> u8 {
    if out.push(v).is_ok() {
        kind
    } else {
        BATCH_SKIP
    }
}

/// A kind no reader knows: the row is passed over.
const BATCH_SKIP: u8 = u8::MAX;

/// The head of a delivery of `items` (see [`Batch`]); the other answers go to `out`. Each
/// answer is converted on its own: one that fails to convert fails its own call
/// (`ERR_CACHE_INTERNAL`, a back-end failure: the caller falls back), and every other call of
/// the batch is still delivered.
fn fill_batch<O: BatchOut>(out: &mut O, items: Vec<Completion>) -> Vec<f64> {
    let mut head = Vec::with_capacity(items.len() * BATCH_ROW as usize);
    for c in items {
        let (kind, a, b) = match c.result {
            Ok(Reply::Nil) => (BATCH_NIL, 0.0, 0.0),
            Ok(Reply::Bool(false)) => (BATCH_FALSE, 0.0, 0.0),
            Ok(Reply::Bool(true)) => (BATCH_TRUE, 0.0, 0.0),
            Ok(Reply::Num(n)) => (BATCH_NUM, n, 0.0),
            Ok(Reply::Nums(v)) if v.len() == 2 => (BATCH_PAIR, v[0], v[1]),
            Ok(r) => match out.value(r) {
                Ok(v) => (pushed(out, v, BATCH_VALUE), 0.0, 0.0),
                Err(_) => {
                    let e = out.error(&UNCONVERTIBLE);
                    (pushed(out, e, BATCH_ERROR), 0.0, 0.0)
                }
            },
            Err(e) => {
                let e = out.error(&e);
                (pushed(out, e, BATCH_ERROR), 0.0, 0.0)
            }
        };
        head.extend_from_slice(&[f64::from(c.id), f64::from(kind), a, b]);
    }
    head
}

/// [`BatchOut`] into a JS array.
struct JsArray {
    env: sys::napi_env,
    arr: sys::napi_value,
    len: u32,
}

impl BatchOut for JsArray {
    type Value = sys::napi_value;
    type Error = napi::Error;

    fn value(&mut self, r: Reply) -> napi::Result<sys::napi_value> {
        unsafe { reply_to_js(self.env, r) }
    }

    fn error(&mut self, e: &CacheError) -> sys::napi_value {
        unsafe { e.to_js(self.env) }
    }

    fn push(&mut self, v: sys::napi_value) -> napi::Result<()> {
        unsafe {
            check_status!(sys::napi_set_element(self.env, self.arr, self.len, v))?;
        }
        self.len += 1;
        Ok(())
    }
}

/// `numbers` as a new Float64Array.
unsafe fn float64_array(env: sys::napi_env, numbers: &[f64]) -> napi::Result<sys::napi_value> {
    let bytes = std::mem::size_of_val(numbers);
    let mut data = ptr::null_mut();
    let mut buffer = ptr::null_mut();
    let mut arr = ptr::null_mut();
    unsafe {
        check_status!(sys::napi_create_arraybuffer(
            env,
            bytes,
            &mut data,
            &mut buffer
        ))?;
        if bytes > 0 {
            // SAFETY: `data` is the new buffer's `bytes` bytes, owned by nobody else yet.
            ptr::copy_nonoverlapping(numbers.as_ptr().cast::<u8>(), data.cast::<u8>(), bytes);
        }
        check_status!(sys::napi_create_typedarray(
            env,
            sys::TypedarrayType::float64_array,
            numbers.len(),
            buffer,
            0,
            &mut arr
        ))?;
    }
    Ok(arr)
}

impl ToNapiValue for Batch {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> napi::Result<sys::napi_value> {
        let mut values = ptr::null_mut();
        let mut batch = ptr::null_mut();
        unsafe {
            check_status!(sys::napi_create_array(env, &mut values))?;
            let mut out = JsArray {
                env,
                arr: values,
                len: 0,
            };
            let head = float64_array(env, &fill_batch(&mut out, val.0))?;
            check_status!(sys::napi_create_array_with_length(env, 2, &mut batch))?;
            check_status!(sys::napi_set_element(env, batch, 0, head))?;
            check_status!(sys::napi_set_element(env, batch, 1, values))?;
        }
        Ok(batch)
    }
}

type BatchFn = ThreadsafeFunction<(), (), Batch, Status, false, true>;

/// Where finished operations go.
pub struct Sink {
    queue: Arc<Queue>,
    deliver: BatchFn,
}

impl Sink {
    fn push(&self, id: u32, result: CacheResult<Reply>) {
        self.queue.items.lock().push(Completion { id, result });
        if !self.queue.scheduled.swap(true, Ordering::AcqRel) {
            // Fails only while Node tears the environment down; nobody is waiting then.
            let _ = self
                .deliver
                .call((), ThreadsafeFunctionCallMode::NonBlocking);
        }
    }
}

pub struct Core {
    pub store: Option<Arc<Store>>,
    pub max_value_bytes: usize,
    sink: Sink,
    /// The near cache and the pub/sub subscriber of this instance.
    pub pubsub: PubSubState,
    /// `shutdown()` was called: an operation dropped unanswered from now on was cut off by
    /// it (`ECLOSED`), not lost to a bug.
    pub closed: AtomicBool,
}

impl Core {
    /// Feeds the outcome of a direct-path command to the one server's circuit breaker (on
    /// the I/O task). On a cluster the routing feeds the breaker of the node that answered.
    fn record_outcome<T>(&self, r: &CacheResult<T>) {
        if let Some(c) = self.store.as_ref().and_then(|s| s.server_circuit()) {
            c.record(r);
        }
    }
}

/// Where an answer goes: the instance's sink (a test can use its own).
trait Deliver {
    fn deliver(&self, id: u32, r: CacheResult<Reply>);

    /// The answer of an operation that ended without one.
    fn unanswered(&self) -> CacheError {
        CacheError::Internal("the operation ended without an answer")
    }
}

impl Deliver for Arc<Core> {
    fn deliver(&self, id: u32, r: CacheResult<Reply>) {
        self.sink.push(id, r);
    }

    /// `shutdown()` drops the connection task with the commands it had sent: those are
    /// closed, not lost.
    fn unanswered(&self) -> CacheError {
        if self.closed.load(Ordering::Acquire) {
            CacheError::Closed
        } else {
            CacheError::Internal("the operation ended without an answer")
        }
    }
}

/// The promise of operation `id`, settled exactly once: by [`Settle::answer`], or, if the
/// guard is dropped unanswered (the operation panicked on a worker or the I/O task, or its
/// task or callback was dropped), with `ERR_CACHE_INTERNAL` (`ECLOSED` once `shutdown()` was
/// called), a back-end failure: the caller falls back instead of waiting forever.
struct Settle<D: Deliver = Arc<Core>> {
    to: D,
    id: u32,
    answered: bool,
}

impl<D: Deliver> Settle<D> {
    fn new(to: D, id: u32) -> Settle<D> {
        Settle {
            to,
            id,
            answered: false,
        }
    }

    fn answer(mut self, r: CacheResult<Reply>) {
        self.answered = true;
        self.to.deliver(self.id, r);
    }
}

impl<D: Deliver> Drop for Settle<D> {
    fn drop(&mut self) {
        if !self.answered {
            let err = self.to.unanswered();
            self.to.deliver(self.id, Err(err));
        }
    }
}

/// One cache instance: its back end and its delivery channel to JS.
#[napi]
pub struct NativeCache {
    pub(crate) core: Arc<Core>,
    /// `nearCacheWords()` was called (it hands the shared words out once).
    pub(crate) words_handed_out: AtomicBool,
}

#[napi]
impl NativeCache {
    /// `onBatch([head, values])` receives the answers; see [`Batch`].
    #[napi(constructor)]
    pub fn new(
        env: Env,
        options: NativeOptions,
        on_batch: Function<'_, Batch, ()>,
    ) -> napi::Result<Self> {
        let near = js(&env, NearCache::from_options(&options))?;
        let cfg = js(&env, Config::from_options(options))?;
        let store = js(&env, Store::from_config(&cfg))?.map(Arc::new);
        let queue = Arc::new(Queue::default());
        let q = queue.clone();
        let deliver: BatchFn = on_batch
            .build_threadsafe_function::<()>()
            .callee_handled::<false>()
            .weak::<true>()
            .build_callback(move |_ctx| {
                // Clear the flag before taking the items: a push that lands after the take
                // schedules a new delivery, so no completion is ever stranded.
                q.scheduled.store(false, Ordering::Release);
                Ok(Batch(std::mem::take(&mut *q.items.lock())))
            })?;
        Ok(NativeCache {
            core: Arc::new(Core {
                store,
                max_value_bytes: cfg.max_value_bytes,
                sink: Sink { queue, deliver },
                pubsub: PubSubState::new(near),
                closed: AtomicBool::new(false),
            }),
            words_handed_out: AtomicBool::new(false),
        })
    }
}

#[napi]
impl NativeCache {
    /// Sends the commands the direct paths queued since the last flush (the façade calls it
    /// once per tick of the event loop in which it started an operation).
    #[napi]
    pub fn flush(&self) {
        if let Some(d) = self.core.store.as_ref().and_then(|s| s.direct()) {
            d.flush();
        }
    }

    /// Whether operations are sent on pipelined connections, which [`flush`](Self::flush)
    /// sends (plain TCP Redis, Redis Cluster); the other back ends never need a flush.
    #[napi]
    pub fn pipelined(&self) -> bool {
        self.direct_store().is_some()
    }

    /// `[writes, commands, refused]`: how many writes of the outbox the pipelined
    /// connections made, how many commands they carried, and how many commands found the
    /// outbox full (summed over a cluster's primaries; for tests and benchmarks; `[0, 0, 0]`
    /// without one).
    #[napi]
    pub fn transport_counts(&self) -> Vec<f64> {
        let (w, c, r) = self
            .core
            .store
            .as_ref()
            .and_then(|s| s.direct())
            .map_or((0, 0, 0), |d| d.transport_counts());
        vec![w as f64, c as f64, r as f64]
    }

    /// `[moved, asked, retried, refreshes]` on Redis Cluster: redirections followed (MOVED,
    /// ASK), commands sent again (TRYAGAIN, CLUSTERDOWN, a primary not reachable) and reads
    /// of the slot map (for tests; `[0, 0, 0, 0]` on other back ends).
    #[napi]
    pub fn cluster_counts(&self) -> Vec<f64> {
        let counts = self
            .core
            .store
            .as_ref()
            .and_then(|s| s.cluster())
            .map_or([0; 4], |c| c.counts());
        counts.iter().map(|&n| n as f64).collect()
    }
}

impl NativeCache {
    /// Starts an operation on the store; its result is delivered with the next batch. On the
    /// memory store the operation completes right here, on the JS thread.
    pub(crate) fn run<F, Fut>(&self, id: u32, op: F)
    where
        F: FnOnce(Arc<Store>) -> Fut,
        Fut: Future<Output = CacheResult<Reply>> + Send + 'static,
    {
        let core = self.core.clone();
        let Some(store) = core.store.clone() else {
            core.sink.push(id, Err(CacheError::Disabled));
            return;
        };
        let memory = store.is_memory();
        let mut fut = Box::pin(op(store));
        if memory {
            // Memory operations never wait: one poll completes them.
            if let Poll::Ready(r) = fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
                core.sink.push(id, r);
                return;
            }
        }
        let settle = Settle::new(core, id);
        spawn(async move {
            let r = fut.await;
            settle.answer(r);
        });
    }

    /// A second handle on this cache's core, for the hand-written entries of `api::fast` (it
    /// hands out no near-cache words).
    pub(crate) fn same_core(&self) -> NativeCache {
        NativeCache {
            core: self.core.clone(),
            words_handed_out: AtomicBool::new(true),
        }
    }

    /// The hot path of a read: a GET of `key` (unprefixed) queued straight on the Redis
    /// pipeline from the JS thread and answered by its I/O task (no task, future or timer per
    /// call). False when the back end has no pipeline; then use [`NativeCache::run`].
    pub(crate) fn get_direct(&self, id: u32, key: &str) -> bool {
        self.get_direct_with(id, key, |r| r.and_then(bulk_or_nil))
    }

    /// [`get_direct`](Self::get_direct) with the reply decoded by `on_reply` (on the I/O task;
    /// it must not block). Sends (true) exactly when [`direct_store`](Self::direct_store) is
    /// some.
    pub(crate) fn get_direct_with<F>(&self, id: u32, key: &str, on_reply: F) -> bool
    where
        F: FnOnce(CacheResult<Resp>) -> CacheResult<Reply> + Send + 'static,
    {
        let Some(store) = self.direct_store() else {
            return false;
        };
        let full = store.key(key);
        self.cmd_direct(id, &[b"GET", full.as_bytes()], on_reply)
    }

    /// One command (`args` as sent: keys already prefixed) queued straight on the pipeline;
    /// `on_reply` decodes its reply on the I/O task (it must not block). Sends (true) exactly
    /// when [`direct_store`](Self::direct_store) is some. On a cluster it goes to the primary
    /// of its key (`args[1]`); a PUBLISH to the home primary (see `ClusterStore::publish`).
    pub(crate) fn cmd_direct<F>(&self, id: u32, args: &[&[u8]], on_reply: F) -> bool
    where
        F: FnOnce(CacheResult<Resp>) -> CacheResult<Reply> + Send + 'static,
    {
        let Some(store) = self.core.store.as_ref() else {
            return false;
        };
        let Some(direct) = store.direct() else {
            return false;
        };
        if let Some(done) = self.direct_done(id, on_reply) {
            let home;
            let route: &[u8] = match args {
                [b"PUBLISH", ..] => {
                    home = store.key(crate::rules::CHANNELS[0]);
                    home.as_bytes()
                }
                [_, key, ..] => key,
                _ => b"",
            };
            direct.submit_deferred(route, args, done);
        }
        true
    }

    /// The pipeline callback of direct operation `id`: it feeds the one server's circuit
    /// breaker, decodes the reply with `on_reply` and settles `id`. None when that breaker
    /// skips Redis: `id` is then answered `ECIRCUITOPEN` (through the sink, like any answer)
    /// and nothing is sent. On a cluster the breaker of the node a command is routed to
    /// admits it (after routing) and records its outcome: `done` then gets `ECIRCUITOPEN`.
    fn direct_done<F>(&self, id: u32, on_reply: F) -> Option<Done>
    where
        F: FnOnce(CacheResult<Resp>) -> CacheResult<Reply> + Send + 'static,
    {
        let circuit = self.core.store.as_ref().and_then(|s| s.server_circuit());
        if let Some(Err(e)) = circuit.map(|c| c.check()) {
            self.core.sink.push(id, Err(e));
            return None;
        }
        let settle = Settle::new(self.core.clone(), id);
        Some(Box::new(move |r| {
            settle.to.record_outcome(&r);
            settle.answer(on_reply(r))
        }))
    }

    /// The store when it has the pipelined transport (plain TCP Redis, Redis Cluster): the
    /// back end on which the direct paths below work. Multi-key scripts whose keys a cluster
    /// puts in different slots take [`one_server_store`](Self::one_server_store) instead.
    pub(crate) fn direct_store(&self) -> Option<&Arc<Store>> {
        self.core.store.as_ref().filter(|s| s.direct().is_some())
    }

    /// The store when it has one server's pipelined connection (plain TCP Redis).
    pub(crate) fn one_server_store(&self) -> Option<&Arc<Store>> {
        self.core.store.as_ref().filter(|s| s.pipeline().is_some())
    }

    /// The hot path of a script: `call` (built by the store, see [`ScriptCall`]) is queued
    /// as EVALSHA straight from the JS thread; `on_reply` turns the reply into the answer on
    /// the I/O task (it must not block). NOSCRIPT is handled by the pipeline (one EVAL).
    /// False when the back end has no pipeline; then use [`NativeCache::run`].
    pub(crate) fn script_direct<F>(&self, id: u32, call: ScriptCall, on_reply: F) -> bool
    where
        F: FnOnce(CacheResult<Resp>) -> CacheResult<Reply> + Send + 'static,
    {
        let Some(direct) = self.core.store.as_ref().and_then(|s| s.direct()) else {
            return false;
        };
        if let Some(done) = self.direct_done(id, on_reply) {
            direct.submit_script_deferred(call, done);
        }
        true
    }

    /// [`script_direct`](Self::script_direct) of a batchable script on one server's
    /// pipeline, which sends the calls of one tick together (`Pipeline::submit_batch_deferred`).
    /// False when the back end has no such pipeline.
    pub(crate) fn batch_direct<F>(&self, id: u32, call: BatchCall, on_reply: F) -> bool
    where
        F: FnOnce(CacheResult<Resp>) -> CacheResult<Reply> + Send + 'static,
    {
        let Some(pipeline) = self.core.store.as_ref().and_then(|s| s.pipeline()) else {
            return false;
        };
        if let Some(done) = self.direct_done(id, on_reply) {
            pipeline.submit_batch_deferred(call, done);
        }
        true
    }

    /// Two script calls of one operation on a cluster (keys in different slots), the second
    /// sent when the first succeeded (from the I/O task that received its reply); `on_reply`
    /// decodes the second's reply. False when the back end is not a cluster.
    pub(crate) fn script_pair_direct<F>(
        &self,
        id: u32,
        first: ScriptCall,
        second: ScriptCall,
        on_reply: F,
    ) -> bool
    where
        F: FnOnce(CacheResult<Resp>) -> CacheResult<Reply> + Send + 'static,
    {
        let Some(store) = self.core.store.as_ref() else {
            return false;
        };
        let Some(cluster) = store.cluster() else {
            return false;
        };
        // One call, one commandTimeoutMs: the second script keeps the first's deadline.
        let deadline = cluster.deadline();
        if let Some(done) = self.direct_done(id, on_reply) {
            let store = store.clone();
            let then: Done = Box::new(move |r| match (r, store.cluster()) {
                (Ok(_), Some(c)) => c.submit_script_until(second, done, deadline),
                (Ok(_), None) => done(Err(CacheError::Closed)),
                (Err(e), _) => done(Err(e)),
            });
            cluster.submit_script_deferred(first, then);
        }
        true
    }

    pub(crate) fn check_value(&self, what: &str, value: &str) -> CacheResult<()> {
        crate::store::check_value(self.core.max_value_bytes, what, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Answered = Vec<(u32, CacheResult<Reply>)>;
    #[derive(Clone, Default)]
    struct Answers(Arc<Mutex<Answered>>);

    impl Deliver for Answers {
        fn deliver(&self, id: u32, r: CacheResult<Reply>) {
            self.0.lock().push((id, r));
        }
    }

    #[test]
    fn an_operation_that_panics_is_still_answered_once_with_an_internal_error() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let answers = Answers::default();
        let settle = Settle::new(answers.clone(), 7);
        let task = rt.spawn(async move {
            let _keep = &settle;
            panic!("a bug inside an operation");
        });
        assert!(rt.block_on(task).is_err());
        let got = answers.0.lock();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, 7);
        assert!(matches!(got[0].1, Err(CacheError::Internal(_))));
        assert!(got[0].1.as_ref().err().unwrap().is_backend_failure());
    }

    /// A stand-in for the JS values array whose conversion of the string "unconvertible"
    /// fails.
    #[derive(Default)]
    struct Strings(Vec<String>);

    impl BatchOut for Strings {
        type Value = String;
        type Error = ();
        fn value(&mut self, r: Reply) -> Result<String, ()> {
            match r {
                Reply::Str(s) if s == "unconvertible" => Err(()),
                Reply::Str(s) => Ok(s),
                _ => Ok("other".into()),
            }
        }
        fn error(&mut self, e: &CacheError) -> String {
            e.code().to_string()
        }
        fn push(&mut self, v: String) -> Result<(), ()> {
            self.0.push(v);
            Ok(())
        }
    }

    #[test]
    fn a_reply_that_fails_to_convert_fails_its_own_call_and_the_rest_are_delivered() {
        // Hardening 16: one result that fails to convert used to drop its whole batch (`?`
        // per result), leaving every promise of the batch unsettled.
        let items = vec![
            Completion {
                id: 1,
                result: Ok(Reply::Str("a".into())),
            },
            Completion {
                id: 2,
                result: Ok(Reply::Str("unconvertible".into())),
            },
            Completion {
                id: 3,
                result: Err(CacheError::Timeout(5)),
            },
            Completion {
                id: 4,
                result: Ok(Reply::Bool(true)),
            },
        ];
        let mut out = Strings::default();
        let head = fill_batch(&mut out, items);
        let rows: Vec<(f64, u8)> = head
            .chunks(BATCH_ROW as usize)
            .map(|r| (r[0], r[1] as u8))
            .collect();
        assert_eq!(
            rows,
            [
                (1.0, BATCH_VALUE),
                (2.0, BATCH_ERROR),
                (3.0, BATCH_ERROR),
                (4.0, BATCH_TRUE)
            ]
        );
        assert_eq!(out.0, ["a", "ERR_CACHE_INTERNAL", "ETIMEDOUT"]);
        assert!(UNCONVERTIBLE.is_backend_failure());
        println!(
            "Hardening 16: a batch of 4 with 1 unconvertible reply: 4 of 4 settled, 3 as sent, the unconvertible one as ERR_CACHE_INTERNAL"
        );
    }

    #[test]
    fn flags_numbers_and_pairs_travel_in_the_head_and_the_rest_in_the_values() {
        let replies = vec![
            Ok(Reply::Nil),
            Ok(Reply::Bool(false)),
            Ok(Reply::Num(-2.5)),
            Ok(Reply::Nums(vec![7.0, 59001.0])),
            Ok(Reply::Nums(vec![1.0, 2.0, 3.0])),
            Ok(Reply::Strs(vec!["x".into()])),
        ];
        let items = replies
            .into_iter()
            .enumerate()
            .map(|(i, result)| Completion {
                id: 10 + i as u32,
                result,
            })
            .collect();
        let mut out = Strings::default();
        let head = fill_batch(&mut out, items);
        assert_eq!(
            head,
            [
                10.0, 1.0, 0.0, 0.0, // nil
                11.0, 2.0, 0.0, 0.0, // false
                12.0, 4.0, -2.5, 0.0, // a number
                13.0, 5.0, 7.0, 59001.0, // a pair
                14.0, 0.0, 0.0, 0.0, // three numbers: a value
                15.0, 0.0, 0.0, 0.0, // strings: a value
            ]
        );
        assert_eq!(out.0, ["other", "other"]);
    }

    #[test]
    fn an_answered_operation_is_answered_exactly_once() {
        let answers = Answers::default();
        Settle::new(answers.clone(), 3).answer(Ok(Reply::Bool(true)));
        let got = answers.0.lock();
        assert_eq!(got.len(), 1);
        assert!(matches!(got[0].1, Ok(Reply::Bool(true))));
    }
}
