//! Proves lvs/topology.toml on a real kernel: the host's when it has IPVS,
//! User-Mode Linux otherwise. Needs root; build as yourself and run with
//! CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER='sudo -E' cargo test

#[test]
fn our_dr_setup_works() {
    let text = std::fs::read_to_string("lvs/topology.toml").unwrap();
    let topology = lvsdr_core::topology_file::from_toml(&text).unwrap_or_else(|e| panic!("lvs/topology.toml: {e}"));
    let report = lvsdr_harness::prove(&topology).unwrap_or_else(|e| panic!("{e}"));
    report.assert_pass();
    // wrr with weights 3:1 over the 8 connections the lab opens per service.
    report.assert_split("tcp/80", &[("rs1", 6), ("rs2", 2)]);
    report.assert_check("arp-owner", true);
}
