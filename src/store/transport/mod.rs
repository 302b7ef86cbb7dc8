//! The transport: how commands reach Redis. [`pipeline`] is the pipelined connection to one
//! address, [`server`] one standalone server on it, [`cluster`] the slot routing of Redis
//! Cluster, [`sentinel`] the primary found through Redis Sentinel, [`topology`] the choice
//! between the two, [`attempt`] the shared connect/resolve attempt both use, [`node`] a data
//! node as the per-node health reports it, and [`bounded`] the bound on the replies a pub/sub
//! subscriber reads.

pub mod attempt;
pub mod bounded;
pub mod cluster;
pub mod node;
pub mod pipeline;
pub mod sentinel;
pub mod server;
pub mod topology;
