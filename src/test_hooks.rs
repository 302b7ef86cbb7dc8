//! Hooks for the test suites, compiled only with the `test-hooks` cargo feature (the build of
//! `npm test`, `npm run build:test`). The published binary has none of them: they reach into
//! the embedded store behind the back of the cache (write, publish unsigned, read TTLs), which
//! a user must not be able to do. The committed binding.js / binding.d.ts do not list them;
//! the tests reach them through `__test__/helpers/hooks.js`.

use std::time::Duration;

use napi_derive::napi;

use crate::bridge::NativeCache;
use crate::store::memory::MemoryStore;

/// The live keys of `memory://{name}`.
#[napi]
pub fn memory_store_keys(name: String) -> Vec<String> {
    MemoryStore::named(&name).with(|d| d.keys())
}

/// PTTL of a key of `memory://{name}` (-2 missing, -1 none).
#[napi]
pub fn memory_store_pttl(name: String, key: String) -> f64 {
    MemoryStore::named(&name).with(|d| d.pttl(&key)) as f64
}

/// SET `key` (as stored, prefix included) to `value` with a TTL (1 ms to one day) in
/// `memory://{name}`.
#[napi]
pub fn memory_store_set(name: String, key: String, value: String, ttl_ms: f64) {
    let ttl = Duration::from_millis(ttl_ms.clamp(1.0, 86_400_000.0) as u64);
    MemoryStore::named(&name).with(|d| d.set_str(&key, value, Some(ttl)));
}

/// PUBLISH `payload` as is (unsigned, unchecked: what any client of a shared Redis could send)
/// on `channel` (as published, prefix included) of `memory://{name}` → receivers.
#[napi]
pub fn memory_store_publish(name: String, channel: String, payload: String) -> u32 {
    MemoryStore::named(&name).publish(&channel, &payload)
}

#[napi]
impl NativeCache {
    /// Answers operation `id` with the sample reply `name` of `api::replies` (through the
    /// real delivery path), or fails it with `ERR_CACHE_INTERNAL` for an unknown name.
    #[napi]
    pub fn test_reply(&self, id: u32, name: String) {
        let r = crate::api::replies::samples(&name).ok_or(crate::error::CacheError::Internal(
            "no sample reply of that name",
        ));
        self.run(id, move |_| async move { r });
    }
}
