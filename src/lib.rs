//! `@bisman/cache`: the Redis cache layer of the BISMAN ERP as a Node.js native addon.
//!
//! Data flows one way: the JS façade (`index.js`) → a native service function (`session.rs`, …)
//! → the [`store::Store`] seam → Redis or the embedded memory store. Replies come back to JS in
//! batches through one threadsafe function per batch (`bridge.rs`), so a hot call crosses the
//! N-API boundary once on the way in and a fraction of a time on the way out.
#![deny(clippy::all)]

pub mod bridge;
pub mod config;
pub mod error;
pub mod health;
pub mod keys;
pub mod lock;
pub mod near_cache;
pub mod permissions;
pub mod pubsub;
pub mod rate_limit;
pub mod session;
pub mod store;
