//! Firewall marks for IPVS fwmark services, by whichever means the kernel
//! has: nf_tables ([`crate::nft`]) where it has the inet family, tc ingress
//! filters ([`crate::tc`]) where it does not, as under the User-Mode Linux
//! kernel the lab runs on.

use lvsdr_core::plan::MarkPlan;
use std::io;

/// What [`apply`] returns when nf_tables set the marks.
pub const NF_TABLES: &str = "nf_tables";
/// What [`apply`] returns when tc ingress filters set the marks.
pub const TC_INGRESS: &str = "tc ingress";

/// Applies `marks` in the calling thread's network namespace and returns
/// which way: [`NF_TABLES`] ([`crate::nft::apply_marks`], every interface of
/// the namespace) or, when nf_tables is missing or lacks the inet family
/// (EOPNOTSUPP, EPROTONOSUPPORT), [`TC_INGRESS`] ([`crate::tc::apply_marks`],
/// packets arriving on `device`: give it the director's LAN interface).
///
/// nf_tables applies its transaction whole or not at all, so after such a
/// refusal nothing of it is left to clash with tc. Any other nf_tables error
/// (a plan it refuses, a table already there, no permission) is returned as
/// it is; so is a tc error, after the nf_tables one.
pub fn apply(device: &str, marks: &[MarkPlan]) -> io::Result<&'static str> {
    match crate::nft::apply_marks(marks) {
        Ok(()) => Ok(NF_TABLES),
        Err(nft) if nft.kind() == io::ErrorKind::Unsupported => match crate::tc::apply_marks(device, marks) {
            Ok(()) => Ok(TC_INGRESS),
            Err(tc) => Err(io::Error::new(tc.kind(), format!("{nft}; then {tc}"))),
        },
        Err(nft) => Err(nft),
    }
}

#[cfg(test)]
mod tests {
    /// Needs root and IPVS. On the host (nf_tables with inet) it uses nft; under
    /// UML, `lvsdr kernel-exec --kernel uml -- <test binary>
    /// marks::tests::on_this_kernel --ignored --nocapture` shows the fallback to tc.
    #[test]
    #[ignore]
    fn on_this_kernel() {
        match crate::tc::tests::fwmark_reaches_ipvs(&super::apply) {
            Ok(log) => print!("{log}"),
            Err(e) => panic!("{e}"),
        }
    }
}
