//! `@bisman/cache`: the Redis cache layer of the BISMAN ERP as a Node.js native addon.
//!
//! Data flows one way: the JS façade (`index.js`) → a native service function (`api/session.rs`, …)
//! → the [`store::Store`] seam → Redis or the embedded memory store. Replies come back to JS in
//! batches through one threadsafe function per batch (`bridge.rs`), so a hot call crosses the
//! N-API boundary once on the way in and a fraction of a time on the way out.
#![deny(clippy::all)]

pub mod api;
pub mod bridge;
pub mod config;
pub mod error;
pub mod names;
pub mod near_cache;
pub mod rules;
pub mod store;
pub mod subscription;
#[cfg(feature = "test-hooks")]
pub mod test_hooks;
pub mod tls;

/// See Cargo.toml: memory crosses between the JS and I/O threads on every call.
#[cfg(not(target_family = "wasm"))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The Tokio runtime behind every connection: ONE worker thread (unless `TOKIO_WORKER_THREADS`
/// says otherwise). Its tasks only move bytes and wait (no CPU-heavy work runs on it), and on
/// a small machine a second worker is one more thread competing with Node's JS thread and
/// redis-server for the cores, and one more thread hop when the pipeline's task is stolen:
/// measured on the 2-core machine, `checkLimit` at 256 in flight 150k → 169k ops/s (3 runs
/// each way, `TOKIO_WORKER_THREADS=1` against the default).
#[cfg(not(test))]
#[napi_derive::module_init]
fn init() {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all().thread_name("bisman-cache-io");
    if std::env::var_os("TOKIO_WORKER_THREADS").is_none() {
        builder.worker_threads(1);
    }
    // If it cannot be built, napi-rs makes its default runtime on first use.
    if let Ok(rt) = builder.build() {
        napi::bindgen_prelude::create_custom_tokio_runtime(rt);
    }
}
