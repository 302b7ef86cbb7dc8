//! The general cache's operations: `get`/`set` are the store's plain GET and SET PX; a fill
//! of `wrap` is the revision-guarded fill of [`super::revision`]; `del` is a revocation (the
//! keys' revisions bumped, then DEL), so a fill whose load began before it is refused.

use std::sync::LazyLock;

use super::revision::{mem_rev_bump, rev_script, REV_TTL_MS};
use super::script::Script;
use super::{Backend, Store};
use crate::error::CacheResult;

/// Keys per script call of [`Store::cache_del`] on one server.
const DEL_BATCH: usize = 100;

static DEL: LazyLock<Script> = LazyLock::new(|| Script::new(rev_script!("scripts/cache_del.lua")));

impl Store {
    /// Revokes and deletes `keys` (unprefixed) → how many existed. On a Cluster each key is its
    /// own call (a key and its revision share a slot; different keys need not).
    pub async fn cache_del(&self, keys: &[String]) -> CacheResult<u32> {
        let ttl = REV_TTL_MS.to_string();
        let full: Vec<String> = keys.iter().map(|k| self.key(k)).collect();
        match &self.backend {
            Backend::Redis(r) => {
                let mut n = 0u32;
                if self.cluster().is_some() {
                    for k in &full {
                        if self.rev_colocated(k) {
                            n += r
                                .script::<u32>(&DEL, &[k, &self.rev_of(k)], &[&ttl])
                                .await?;
                        } else if self.revoke_stored(k).await?.is_some() {
                            n += 1;
                        }
                    }
                    return Ok(n);
                }
                for chunk in full.chunks(DEL_BATCH) {
                    let revs: Vec<String> = chunk.iter().map(|k| self.rev_of(k)).collect();
                    let pairs: Vec<&str> = chunk
                        .iter()
                        .zip(&revs)
                        .flat_map(|(k, rk)| [k.as_str(), rk.as_str()])
                        .collect();
                    n += r.script::<u32>(&DEL, &pairs, &[&ttl]).await?;
                }
                Ok(n)
            }
            Backend::Memory(m) => m.with(|d| {
                let mut n = 0;
                for k in &full {
                    mem_rev_bump(d, &self.rev_of(k))?;
                    n += u32::from(d.del(k));
                }
                Ok(n)
            }),
        }
    }
}
