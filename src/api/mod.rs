//! The `#[napi]` surface: one file per service, each an `impl NativeCache` block (or free
//! functions) that checks its input, then calls the store through the bridge.

pub mod cache;
pub mod fast;
pub mod health;
pub mod lock;
pub mod names;
pub mod permissions;
pub mod pubsub;
pub mod rate_limit;
pub mod replies;
pub mod session;
