//! Nothing here: this crate exists for `tests/dr.rs`, which proves
//! `lvs/topology.toml` on a real kernel.
