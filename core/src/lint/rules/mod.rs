//! One rule a file. The code order is the order of `ALL`.

mod prelude {
    pub use crate::diagnostic::{Applicability, Diagnostic, Severity};
    pub use crate::lint::{LintContext, RuleMeta};
    pub use crate::model::*;
}

macro_rules! rules {
    ($($module:ident),* $(,)?) => {
        $(pub mod $module;)*
        /// Every rule of the catalogue.
        pub static ALL: &[super::Rule] = &[
            $(super::Rule {
                meta: &$module::META,
                check: $module::check,
                source: concat!("core/src/lint/rules/", stringify!($module), ".rs"),
            },)*
        ];
    };
}

rules!(
    arp_sysctls_missing,
    arp_sysctls_only_on_lo,
    vip_missing_on_lo,
    vip_on_lo_prefix,
    dr_port_mapping,
    real_server_off_link,
    missing_listener,
    scheduler_ignores_weights,
    port_zero_without_persistence,
    scheduler_flag_mismatch,
    one_packet_not_udp,
    director_send_redirects,
    ip_forward_not_needed,
    real_server_rp_filter,
    service_without_real_servers,
    all_weights_zero,
    duplicate_address,
    vip_placement,
    not_direct_routing,
    persistence_per_client,
    thresholds,
    weight_range,
    partial_membership,
    duplicate_service,
    director_vip_prefix,
    mark_without_service,
    fwmark_service_without_mark,
    overlapping_marks,
    ipv6_vip_dad,
    ipv6_disabled,
    ipv6_vip_as_source,
    pair_drift,
    no_connection_sync,
    vrrp_settings,
    vrrp_router_id,
    vip_without_vrrp,
    slow_failover,
    tunnel_rp_filter,
    nat_without_ip_forward,
);
