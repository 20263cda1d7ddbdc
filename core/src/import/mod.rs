//! Importers: read what users already have into a [`Topology`], keeping
//! spans into *their* file so that diagnostics point at their lines.
//!
//! - [`script`]: shell scripts that run `ipvsadm`, `ifconfig`, `ip`, `route`
//!   and `sysctl`, like the ones in LVS-DR walkthroughs.
//! - [`ipvsadm_save`]: the output of `ipvsadm -S -n`.
//! - [`keepalived`]: keepalived.conf `virtual_server` blocks.
//! - [`marks`]: the iptables/nft rules that mark packets for fwmark services.
//!
//! Both share the `ipvsadm` command-line reader in [`ipvsadm`] and the
//! [`builder::Builder`] that turns collected facts into a topology.

pub mod addresses;
pub mod builder;
pub mod ipvsadm;
pub mod ipvsadm_save;
pub mod keepalived;
pub mod marks;
pub mod ports;
pub mod resolve;
pub mod script;
pub mod shell;
pub mod template;
