//! Names: how every key, channel, glob and cluster slot is spelled and checked. Pure
//! functions over strings, above only the error type and the shared constants.

pub mod channels;
pub mod glob;
pub mod keys;
pub mod slot;
