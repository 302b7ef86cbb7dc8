//! Redis topologies other than one standalone server: [`Topology::Cluster`] and
//! [`Topology::Sentinel`]. `RedisStore` delegates to them, so every service's store ops (which
//! only call `query`/`script`) run unchanged.

use redis::{Cmd, FromRedisValue};

use crate::store::script::Script;

use super::cluster::ClusterStore;
use super::sentinel::SentinelStore;
use crate::error::CacheResult;

pub enum Topology {
    Cluster(Box<ClusterStore>),
    Sentinel(SentinelStore),
}

impl Topology {
    pub fn is_healthy(&self) -> bool {
        match self {
            Topology::Cluster(c) => c.is_healthy(),
            Topology::Sentinel(s) => s.is_healthy(),
        }
    }

    pub fn close(&self) {
        match self {
            Topology::Cluster(c) => c.close(),
            Topology::Sentinel(s) => s.close(),
        }
    }

    pub async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> CacheResult<T> {
        match self {
            Topology::Cluster(c) => c.query(cmd).await,
            Topology::Sentinel(s) => s.query(cmd).await,
        }
    }

    pub async fn script<T: FromRedisValue>(
        &self,
        script: &'static Script,
        keys: &[&str],
        args: &[&str],
    ) -> CacheResult<T> {
        match self {
            Topology::Cluster(c) => c.script(script, keys, args).await,
            Topology::Sentinel(s) => s.script(script, keys, args).await,
        }
    }

    pub async fn subscriber(&self, channels: &[String]) -> CacheResult<redis::aio::PubSub> {
        match self {
            Topology::Cluster(c) => c.subscriber(channels).await,
            Topology::Sentinel(s) => s.subscriber(channels).await,
        }
    }
}
