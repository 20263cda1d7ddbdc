//! # lvsdr-harness
//!
//! Builds LVS-DR labs in network namespaces on a real kernel's IPVS and
//! proves that DR works: every real server sees the client's own address,
//! replies bypass the director, the client's ARP entry for the VIP is the
//! director's MAC, and the traffic split is what `lvsdr-core` predicts.
//!
//! - [`netns`]: named namespaces with a Drop guard.
//! - [`netlink`]: the one netlink transport (sockets that keep their namespace,
//!   batched requests, the kernel's refusals) for rtnetlink, nf_tables and IPVS.
//! - [`rtnl`]: links, addresses and neighbours over rtnetlink.
//! - [`nft`]: firewall marks for fwmark services, over nf_tables netlink.
//! - [`tc`]: the same marks by tc ingress filters, over rtnetlink.
//! - [`marks`]: nf_tables where the kernel has it, tc ingress where not.
//! - [`ipvs`]: an IPVS client over generic netlink.
//! - [`probe`]: HTTP and SMTP probe servers, and the client driver.
//! - [`capture`]: the reply frames the client receives (AF_PACKET), and
//!   every leg of every connection on the bridge's ports.
//! - [`frames`]: those frames as data, read, named and cited; [`pcapng`]:
//!   written for Wireshark.
//! - [`lab`]: [`Lab::build`], [`Lab::verify`], teardown on drop.
//! - [`kernel`] and [`uml`]: the host kernel when it has IPVS, User-Mode
//!   Linux when it does not.
//! - [`run`]: labs on this kernel; [`launch`]: on this kernel or under UML,
//!   the whole job behind `lvsdr lab`: [`prove`] and [`run_lab`], for your
//!   own tests too; [`job`]: its options, and what crosses into a guest.
//! - [`serial`]: the guest of the playground's in-browser kernel (v86),
//!   serving jobs over the serial port.
//! - [`guest`]: how any binary that links this crate becomes a UML guest's init.
//! - [`qemu`]: distribution kernels (Debian's 5.10 to 7.2) under QEMU, serving
//!   the serial guest's jobs; [`facts`]: what each one's IPVS offers;
//!   [`matrix`]: the same labs on every one of them, in one table.
//! - [`leftovers`]: what a killed lab leaves, and `lvsdr clean`.
//! - [`audit`]: the live state of a namespace, read-only, for `lvsdr audit`.

pub mod apply;
pub mod audit;
pub mod capture;
pub mod confine;
pub mod facts;
pub mod frames;
pub mod guest;
pub mod ipvs;
pub mod job;
pub mod kernel;
pub mod lab;
pub mod launch;
pub mod leftovers;
pub mod marks;
pub mod matrix;
pub mod netlink;
pub mod netns;
pub mod nft;
pub mod pcapng;
pub mod probe;
pub mod qemu;
pub mod report;
pub mod rtnl;
pub mod run;
pub mod serial;
pub mod tc;
pub mod uml;

pub use job::{KernelChoice, KernelSeries, RunOptions};
pub use lab::{Lab, VerifyOptions};
pub use launch::{prove, run_lab};
pub use report::Report;
pub use run::RunError;
