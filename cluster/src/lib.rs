//! The cluster's shared state and the contracts between its processes. `store` is the one
//! seam to shared state (Redis, or memory for one process); `table` gives a Store table a row type; `registry` holds the device rows;
//! `wire` defines, once, everything one process writes and another reads.

pub mod registry;
pub mod store;
pub mod table;
pub mod wire;
