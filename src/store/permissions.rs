//! Permission snapshots in the store: `perm:user:{id}` and `perm:role:{id}`, JSON with a TTL.
//! Each read or direct write is one command; a revocation bumps the key's revision with its
//! DEL, and a loader's fill is guarded by it (src/store/revision.rs).

use std::time::Duration;

use super::Store;
use crate::error::CacheResult;
use crate::names::keys::{perm_role_key, perm_user_key};

/// Role snapshots live 5 min (user snapshots: `rules::USER_TTL_*`, chosen per call).
pub const ROLE_TTL: Duration = Duration::from_secs(300);

impl Store {
    pub async fn perm_user_get(&self, user_id: &str) -> CacheResult<Option<String>> {
        self.get(&perm_user_key(user_id)).await
    }

    pub async fn perm_user_put(&self, user_id: &str, json: &str, ttl: Duration) -> CacheResult<()> {
        self.set_px(&perm_user_key(user_id), json, ttl).await
    }

    /// True if a snapshot was removed. Bumps its revision: a load in flight is not cached.
    pub async fn perm_user_remove(&self, user_id: &str) -> CacheResult<bool> {
        self.revoke(&perm_user_key(user_id))
            .await
            .map(|v| v.is_some())
    }

    pub async fn perm_role_get(&self, role_id: &str) -> CacheResult<Option<String>> {
        self.get(&perm_role_key(role_id)).await
    }

    pub async fn perm_role_put(&self, role_id: &str, json: &str) -> CacheResult<()> {
        self.set_px(&perm_role_key(role_id), json, ROLE_TTL).await
    }

    pub async fn perm_role_remove(&self, role_id: &str) -> CacheResult<bool> {
        self.revoke(&perm_role_key(role_id))
            .await
            .map(|v| v.is_some())
    }
}
