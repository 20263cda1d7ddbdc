//! One host of a lab: its namespace, and the handles opened once inside it
//! (rtnetlink with its ioctl socket, and IPVS on a director). A socket keeps
//! the namespace it was made in, so the lab uses them from any thread, as it
//! uses the probe servers' listeners, without entering the namespace again.

use super::LabError;
use crate::ipvs::Ipvs;
use crate::netns::NetNs;
use crate::rtnl;
use std::sync::{Arc, OnceLock};

pub(crate) struct Host {
    pub ns: Arc<NetNs>,
    /// Links, addresses and routes of this namespace.
    pub route: rtnl::Route,
    /// IPVS in this namespace, opened on first use (directors only).
    ipvs: OnceLock<Ipvs>,
}

impl Host {
    /// A host for `ns`, with its rtnetlink handle (opened inside `ns`).
    pub fn new(ns: NetNs, route: rtnl::Route) -> Host {
        Host {
            ns: Arc::new(ns),
            route,
            ipvs: OnceLock::new(),
        }
    }

    /// This namespace's IPVS, opened once.
    pub fn ipvs(&self) -> Result<&Ipvs, LabError> {
        if let Some(ipvs) = self.ipvs.get() {
            return Ok(ipvs);
        }
        let ipvs = self.ns.run(Ipvs::connect)??;
        Ok(self.ipvs.get_or_init(|| ipvs))
    }

    /// Applies rtnetlink changes; a refusal names the host and the change.
    pub fn apply(&self, host: &str, changes: &[rtnl::Change]) -> Result<(), LabError> {
        self.route.apply(changes).map_err(|source| LabError::Rtnl {
            step: host.to_string(),
            source,
        })
    }
}

impl std::ops::Deref for Host {
    type Target = NetNs;
    fn deref(&self) -> &NetNs {
        &self.ns
    }
}
