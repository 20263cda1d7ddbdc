//! Firewall marks for IPVS fwmark services, set by tc on ingress: the
//! `ingress` qdisc, one `flower` filter per (mark, protocol, port), each with
//! an `skbedit` action that sets `skb->mark`. Written over rtnetlink
//! (`NETLINK_ROUTE`), so the lab needs no `tc` binary. The layout follows
//! `include/uapi/linux/rtnetlink.h`, `pkt_sched.h`, `pkt_cls.h` and
//! `tc_act/tc_skbedit.h`.
//!
//! This is the substitute for [`crate::nft`] on kernels whose nf_tables has
//! no inet family (the User-Mode Linux kernel the lab runs under). Ingress
//! classification runs in `__netif_receive_skb`, before netfilter's
//! PREROUTING hook and so before IPVS, which finds fwmark services by
//! `skb->mark`. It sees only packets that arrive on `device`, where nft's
//! rules see every interface of the namespace: give it the director's LAN
//! interface. For `mark 1, 192.168.1.192/32, tcp, port 80` on `eth0`,
//! [`apply_marks`] is the same as
//!
//! ```text
//! tc qdisc add dev eth0 ingress
//! tc filter add dev eth0 ingress prio 1 handle 1 protocol ip flower skip_hw \
//!     ip_proto tcp dst_ip 192.168.1.192/32 dst_port 80 action skbedit mark 1 pipe
//! ```
//!
//! Where plans overlap, nft's last matching rule sets the mark; tc stops at
//! the first matching filter. So the filters take priorities in reverse plan
//! order (the last filter gets priority 1), and the same plan gives the same
//! mark on both.
//!
//! The socket belongs to the network namespace of the calling thread: run it
//! inside [`NetNs::run`](crate::netns::NetNs::run).

use crate::netlink::*;
use lvsdr_core::plan::MarkPlan;
use std::io;
use std::net::IpAddr;

const RTM_NEWQDISC: u16 = 36;
const RTM_DELQDISC: u16 = 37;
const RTM_NEWTFILTER: u16 = 44;

/// `TC_H_INGRESS`: where the ingress qdisc hangs.
pub const TC_H_INGRESS: u32 = 0xFFFF_FFF1;
/// The ingress qdisc's handle, `ffff:`, the parent of every filter.
pub const INGRESS_HANDLE: u32 = 0xFFFF_0000;
/// Each filter has its own priority, so each can have handle 1.
const FILTER_HANDLE: u32 = 1;

const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86DD;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
const IPPROTO_SCTP: u8 = 132;

/// `TCA_*`: the attributes of a qdisc or filter message.
mod tca {
    pub const KIND: u16 = 1;
    pub const OPTIONS: u16 = 2;
}

/// `TCA_FLOWER_*` (`pkt_cls.h`).
mod flower {
    pub const ACT: u16 = 3;
    pub const KEY_ETH_TYPE: u16 = 8;
    pub const KEY_IP_PROTO: u16 = 9;
    pub const KEY_IPV4_DST: u16 = 12;
    pub const KEY_IPV4_DST_MASK: u16 = 13;
    pub const KEY_IPV6_DST: u16 = 16;
    pub const KEY_IPV6_DST_MASK: u16 = 17;
    pub const KEY_TCP_DST: u16 = 19;
    pub const KEY_UDP_DST: u16 = 21;
    pub const FLAGS: u16 = 22;
    pub const KEY_TCP_DST_MASK: u16 = 36;
    pub const KEY_UDP_DST_MASK: u16 = 38;
    pub const KEY_SCTP_DST_MASK: u16 = 40;
    pub const KEY_SCTP_DST: u16 = 42;
    /// `TCA_CLS_FLAGS_SKIP_HW`: a veth has no hardware to offload to anyway.
    pub const SKIP_HW: u32 = 1;
}

/// `TCA_ACT_*`: one action in a filter's action list.
mod act {
    pub const KIND: u16 = 1;
    pub const OPTIONS: u16 = 2;
    /// `TC_ACT_PIPE`: go on to the filter's next action; with none left, the
    /// packet goes on up the stack.
    pub const PIPE: i32 = 3;
}

/// `TCA_SKBEDIT_*` (`tc_act/tc_skbedit.h`).
mod skbedit {
    pub const PARMS: u16 = 2;
    pub const MARK: u16 = 5;
}

/// `struct tcmsg`: family, ifindex, handle, parent and info (priority and protocol).
fn tcmsg(ifindex: u32, handle: u32, parent: u32, info: u32) -> Vec<u8> {
    let mut m = vec![0u8; 4]; // AF_UNSPEC and padding
    m.extend(ifindex.to_ne_bytes());
    m.extend(handle.to_ne_bytes());
    m.extend(parent.to_ne_bytes());
    m.extend(info.to_ne_bytes());
    m
}

/// A filter's `tcm_info`: priority above, the ethertype (network order) below.
fn filter_info(priority: u16, eth_type: u16) -> u32 {
    (u32::from(priority) << 16) | u32::from(u16::from_ne_bytes(eth_type.to_be_bytes()))
}

/// One filter: which packets, and the mark they get.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Filter {
    mark: u32,
    destination: IpAddr,
    prefix: u8,
    /// `None`: any IP protocol (and then no port).
    protocol: Option<u8>,
    port: Option<u16>,
}

impl Filter {
    fn eth_type(&self) -> u16 {
        match self.destination {
            IpAddr::V4(_) => ETH_P_IP,
            IpAddr::V6(_) => ETH_P_IPV6,
        }
    }

    /// `mark 1, 192.168.1.192/32 tcp port 80`.
    fn describe(&self) -> String {
        let proto = match self.protocol {
            None => "any protocol".to_string(),
            Some(IPPROTO_TCP) => "tcp".to_string(),
            Some(IPPROTO_UDP) => "udp".to_string(),
            Some(IPPROTO_SCTP) => "sctp".to_string(),
            Some(p) => format!("protocol {p}"),
        };
        let port = self.port.map(|p| format!(" port {p}")).unwrap_or_default();
        format!("mark {}, {}/{} {proto}{port}", self.mark, self.destination, self.prefix)
    }

    /// The `TCA_OPTIONS` of a flower filter with its skbedit action.
    fn flower_options(&self) -> Vec<u8> {
        let mut a = Attrs::default();
        a.put(flower::KEY_ETH_TYPE, &self.eth_type().to_be_bytes());
        if let Some(p) = self.protocol {
            a.put(flower::KEY_IP_PROTO, &[p]);
        }
        let (address, host_len, key, mask_key) = match self.destination {
            IpAddr::V4(v4) => (v4.octets().to_vec(), 32, flower::KEY_IPV4_DST, flower::KEY_IPV4_DST_MASK),
            IpAddr::V6(v6) => (v6.octets().to_vec(), 128, flower::KEY_IPV6_DST, flower::KEY_IPV6_DST_MASK),
        };
        let mask = prefix_mask(self.prefix.min(host_len), address.len());
        let masked: Vec<u8> = address.iter().zip(&mask).map(|(a, m)| a & m).collect();
        a.put(key, &masked).put(mask_key, &mask);
        if let (Some(port), Some(p)) = (self.port, self.protocol) {
            let (key, mask_key) = match p {
                IPPROTO_TCP => (flower::KEY_TCP_DST, flower::KEY_TCP_DST_MASK),
                IPPROTO_UDP => (flower::KEY_UDP_DST, flower::KEY_UDP_DST_MASK),
                _ => (flower::KEY_SCTP_DST, flower::KEY_SCTP_DST_MASK),
            };
            a.put(key, &port.to_be_bytes()).put(mask_key, &[0xff, 0xff]);
        }
        a.put(flower::FLAGS, &flower::SKIP_HW.to_ne_bytes());
        // The action list: element 1 is the only action.
        a.nest(flower::ACT, |list| {
            list.nest(1, |action| {
                action.put_str(act::KIND, "skbedit").nest(act::OPTIONS, |o| {
                    // struct tc_skbedit: index, capab, action, refcnt, bindcnt.
                    let mut parms = Vec::with_capacity(20);
                    for v in [0, 0, act::PIPE, 0, 0] {
                        parms.extend(v.to_ne_bytes());
                    }
                    o.put(skbedit::PARMS, &parms).put(skbedit::MARK, &self.mark.to_ne_bytes());
                });
            });
        });
        a.0
    }
}

/// The first `prefix` bits of `len` bytes set.
fn prefix_mask(prefix: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| {
            let bits = (prefix as usize).saturating_sub(i * 8).min(8);
            (0xff00u16 >> bits) as u8
        })
        .collect()
}

/// One filter per (mark, port), or per mark without ports. A plan with ports
/// but protocol 0 (any) becomes a filter each for tcp, udp and sctp, the
/// protocols whose ports flower can match; nft's `th dport` also matches
/// the destination port of dccp and udplite, which these filters do not.
fn filters(marks: &[MarkPlan]) -> io::Result<Vec<Filter>> {
    let mut out = Vec::new();
    for m in marks {
        let port_text = |p: &[u16]| p.iter().map(u16::to_string).collect::<Vec<_>>().join(",");
        let invalid = |why: String| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "mark {}, {}/{} ports [{}]: {why}",
                    m.mark,
                    m.destination,
                    m.prefix,
                    port_text(&m.ports)
                ),
            )
        };
        let host_len = if m.destination.is_ipv4() { 32 } else { 128 };
        if m.prefix > host_len {
            return Err(invalid(format!("prefix /{} is longer than the address", m.prefix)));
        }
        let protocols: Vec<Option<u8>> = match (m.protocol, m.ports.is_empty()) {
            (0, true) => vec![None],
            (0, false) => vec![Some(IPPROTO_TCP), Some(IPPROTO_UDP), Some(IPPROTO_SCTP)],
            (p, ports_empty) => {
                let p = u8::try_from(p).map_err(|_| invalid(format!("protocol {p} is not an IP protocol number")))?;
                if !ports_empty && ![IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP].contains(&p) {
                    return Err(invalid(format!("flower matches ports of tcp, udp and sctp only, not protocol {p}")));
                }
                vec![Some(p)]
            }
        };
        let ports: Vec<Option<u16>> = if m.ports.is_empty() {
            vec![None]
        } else {
            m.ports.iter().copied().map(Some).collect()
        };
        for port in &ports {
            for protocol in &protocols {
                out.push(Filter {
                    mark: m.mark,
                    destination: m.destination,
                    prefix: m.prefix,
                    protocol: *protocol,
                    port: *port,
                });
            }
        }
    }
    if out.len() > usize::from(u16::MAX) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} filters: tc has priorities for {} only", out.len(), u16::MAX),
        ));
    }
    Ok(out)
}

/// What a request is, for its error message and hint.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Qdisc,
    Filter,
}

/// One request and what to call it in an error.
struct Step {
    what: String,
    target: Target,
    kind: u16,
    flags: u16,
    body: Vec<u8>,
}

/// The ingress qdisc, then the filters, last plan first (see the module doc).
fn mark_steps(device: &str, ifindex: u32, marks: &[MarkPlan]) -> io::Result<Vec<Step>> {
    let create = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
    let mut qdisc = Attrs::default();
    qdisc.put_str(tca::KIND, "ingress");
    let mut steps = vec![Step {
        what: format!("qdisc ingress on {device}"),
        target: Target::Qdisc,
        kind: RTM_NEWQDISC,
        flags: create,
        body: [tcmsg(ifindex, INGRESS_HANDLE, TC_H_INGRESS, 0), qdisc.0].concat(),
    }];
    let filters = filters(marks)?;
    let count = filters.len();
    for (i, f) in filters.iter().enumerate() {
        // At most u16::MAX filters (checked), so 1..=count fits.
        let priority = (count - i) as u16;
        let mut a = Attrs::default();
        a.put_str(tca::KIND, "flower").put(tca::OPTIONS | NLA_F_NESTED, &f.flower_options());
        steps.push(Step {
            what: format!("flower filter prio {priority} on {device} ({})", f.describe()),
            target: Target::Filter,
            kind: RTM_NEWTFILTER,
            flags: create,
            body: [
                tcmsg(ifindex, FILTER_HANDLE, INGRESS_HANDLE, filter_info(priority, f.eth_type())),
                a.0,
            ]
            .concat(),
        });
    }
    Ok(steps)
}

/// What an errno most likely means for one tc request.
fn hint(errno: i32, target: &Target) -> &'static str {
    match (errno, target) {
        (libc::ENOENT, Target::Qdisc) => " (this kernel has no ingress qdisc: load sch_ingress, CONFIG_NET_SCH_INGRESS)",
        (libc::EEXIST, Target::Qdisc) => " (the device has an ingress qdisc already: marks are applied once, to a fresh namespace)",
        (libc::ENOENT, Target::Filter) => {
            " (this kernel has no flower classifier or no skbedit action: load cls_flower and act_skbedit, \
             CONFIG_NET_CLS_FLOWER and CONFIG_NET_ACT_SKBEDIT)"
        }
        (libc::EOPNOTSUPP, Target::Filter) => " (this kernel has no tc actions: CONFIG_NET_CLS_ACT)",
        (libc::EINVAL, Target::Filter) => " (the kernel refused a key: is the ingress qdisc there?)",
        (libc::EEXIST, Target::Filter) => " (a filter with this priority is there already)",
        (libc::EPERM, _) => " (needs CAP_NET_ADMIN in the namespace)",
        _ => "",
    }
}

fn errno_error(errno: i32, what: &str, target: &Target, kernel_says: Option<&str>) -> io::Error {
    let os = io::Error::from_raw_os_error(errno);
    let says = kernel_says.map(|m| format!("; the kernel says \"{m}\"")).unwrap_or_default();
    io::Error::new(os.kind(), format!("tc {what} failed: {os}{says}{}", hint(errno, target)))
}

/// The index of `device` in the calling thread's namespace.
fn ifindex(device: &str) -> io::Result<u32> {
    nix::net::if_::if_nametoindex(device).map_err(|e| {
        let os = io::Error::from_raw_os_error(e as i32);
        io::Error::new(os.kind(), format!("tc: no link named {device} in this namespace ({os})"))
    })
}

/// Adds the ingress qdisc to `device` and one flower filter per (mark,
/// protocol, port) that sets the mark with skbedit, in the calling thread's
/// network namespace. Equivalent to the `tc qdisc add` / `tc filter add`
/// lines in the module doc. `device` must not have an ingress qdisc yet.
///
/// Each request waits for its ACK; the first refusal becomes the error,
/// naming the request, the errno, the kernel's extended-ACK message and a
/// hint. On a refused filter the qdisc is deleted again, which takes the
/// filters before it along, so a failure leaves nothing behind.
pub fn apply_marks(device: &str, marks: &[MarkPlan]) -> io::Result<()> {
    let ifindex = ifindex(device)?;
    let steps = mark_steps(device, ifindex, marks)?;
    let nl = Socket::open(NETLINK_ROUTE, "tc").map_err(|e| io::Error::new(e.kind(), format!("tc: rtnetlink socket: {e}")))?;
    for (i, step) in steps.iter().enumerate() {
        if let Err(refusal) = nl.ask(|seq| message(step.kind, step.flags, seq, &step.body))? {
            let error = errno_error(refusal.errno, &step.what, &step.target, refusal.says.as_deref());
            if i > 0 {
                let delete = nl.ask(|seq| message(RTM_DELQDISC, NLM_F_REQUEST | NLM_F_ACK, seq, &steps[0].body));
                if let Ok(Err(undo)) = delete {
                    return Err(io::Error::new(
                        error.kind(),
                        format!("{error}; removing the ingress qdisc again failed too: {}", undo.text()),
                    ));
                }
            }
            return Err(error);
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn http_mark() -> MarkPlan {
        MarkPlan {
            mark: 1,
            destination: IpAddr::V4(Ipv4Addr::new(192, 168, 1, 192)),
            prefix: 32,
            protocol: 6,
            ports: vec![80],
        }
    }

    /// Hand-built from rtnetlink.h and pkt_sched.h: `tc qdisc add dev <7> ingress`.
    #[test]
    #[cfg(target_endian = "little")]
    fn qdisc_message_bytes() {
        #[rustfmt::skip]
        let expected: Vec<u8> = vec![
            48, 0, 0, 0,            // nlmsg_len: 16 + 20 + 12
            36, 0,                  // RTM_NEWQDISC
            0x05, 0x06,             // NLM_F_REQUEST | NLM_F_ACK | NLM_F_EXCL | NLM_F_CREATE
            1, 0, 0, 0,             // seq
            0, 0, 0, 0,             // port id
            0, 0, 0, 0,             // tcm_family AF_UNSPEC, padding
            7, 0, 0, 0,             // tcm_ifindex
            0, 0, 0xff, 0xff,       // tcm_handle ffff:
            0xf1, 0xff, 0xff, 0xff, // tcm_parent TC_H_INGRESS
            0, 0, 0, 0,             // tcm_info
            12, 0, 1, 0, b'i', b'n', b'g', b'r', b'e', b's', b's', 0, // TCA_KIND "ingress"
        ];
        let steps = mark_steps("eth0", 7, &[]).unwrap();
        assert_eq!(steps.len(), 1);
        assert_eq!(steps[0].what, "qdisc ingress on eth0");
        assert_eq!(message(steps[0].kind, steps[0].flags, 1, &steps[0].body), expected);
    }

    /// Hand-built from rtnetlink.h, pkt_cls.h and tc_skbedit.h:
    /// `tc filter add dev <7> ingress prio 1 handle 1 protocol ip flower skip_hw
    /// ip_proto tcp dst_ip 192.168.1.192/32 dst_port 80 action skbedit mark 1 pipe`.
    #[test]
    #[cfg(target_endian = "little")]
    fn flower_filter_message_bytes() {
        #[rustfmt::skip]
        let expected: Vec<u8> = vec![
            0xa4, 0, 0, 0,          // nlmsg_len: 16 + 20 + 128
            44, 0,                  // RTM_NEWTFILTER
            0x05, 0x06,             // NLM_F_REQUEST | NLM_F_ACK | NLM_F_EXCL | NLM_F_CREATE
            2, 0, 0, 0,             // seq
            0, 0, 0, 0,             // port id
            0, 0, 0, 0,             // AF_UNSPEC, padding
            7, 0, 0, 0,             // tcm_ifindex
            1, 0, 0, 0,             // tcm_handle 1
            0, 0, 0xff, 0xff,       // tcm_parent ffff:
            0x08, 0x00, 1, 0,       // tcm_info: prio 1 << 16 | htons(ETH_P_IP)
            11, 0, 1, 0, b'f', b'l', b'o', b'w', b'e', b'r', 0, 0, // TCA_KIND "flower", padded
            116, 0, 2, 0x80,        // TCA_OPTIONS, nested
              6, 0, 8, 0, 0x08, 0x00, 0, 0,       // KEY_ETH_TYPE be16 0x0800
              5, 0, 9, 0, 6, 0, 0, 0,             // KEY_IP_PROTO tcp
              8, 0, 12, 0, 192, 168, 1, 192,      // KEY_IPV4_DST
              8, 0, 13, 0, 0xff, 0xff, 0xff, 0xff, // KEY_IPV4_DST_MASK /32
              6, 0, 19, 0, 0, 80, 0, 0,           // KEY_TCP_DST be16 80
              6, 0, 36, 0, 0xff, 0xff, 0, 0,      // KEY_TCP_DST_MASK
              8, 0, 22, 0, 1, 0, 0, 0,            // TCA_FLOWER_FLAGS skip_hw
              56, 0, 3, 0x80,                     // TCA_FLOWER_ACT, nested
                52, 0, 1, 0x80,                   // action 1, nested
                  12, 0, 1, 0, b's', b'k', b'b', b'e', b'd', b'i', b't', 0, // TCA_ACT_KIND
                  36, 0, 2, 0x80,                 // TCA_ACT_OPTIONS, nested
                    24, 0, 2, 0,                  // TCA_SKBEDIT_PARMS: struct tc_skbedit
                      0, 0, 0, 0,  0, 0, 0, 0,    // index, capab
                      3, 0, 0, 0,                 // action TC_ACT_PIPE
                      0, 0, 0, 0,  0, 0, 0, 0,    // refcnt, bindcnt
                    8, 0, 5, 0, 1, 0, 0, 0,       // TCA_SKBEDIT_MARK 1
        ];
        let steps = mark_steps("eth0", 7, &[http_mark()]).unwrap();
        assert_eq!(steps.len(), 2);
        let f = &steps[1];
        assert_eq!(f.what, "flower filter prio 1 on eth0 (mark 1, 192.168.1.192/32 tcp port 80)");
        assert_eq!(message(f.kind, f.flags, 2, &f.body), expected);
    }

    #[test]
    fn ipv6_prefixes_are_masked() {
        let f = Filter {
            mark: 7,
            destination: "2001:db8::1:5".parse().unwrap(),
            prefix: 52,
            protocol: None,
            port: None,
        };
        let options = f.flower_options();
        let attrs = crate::netlink::parse_attrs(&options);
        let get = |k: u16| attrs.iter().find(|(t, _)| *t == k).map(|(_, v)| v.to_vec());
        assert_eq!(get(flower::KEY_ETH_TYPE), Some(vec![0x86, 0xdd]));
        assert_eq!(get(flower::KEY_IP_PROTO), None);
        let mut mask = vec![0xff; 6];
        mask.push(0xf0);
        mask.extend([0; 9]);
        assert_eq!(get(flower::KEY_IPV6_DST_MASK), Some(mask));
        assert_eq!(
            get(flower::KEY_IPV6_DST),
            Some(vec![0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])
        );
        // ETH_P_IPV6 in network order in the low half of tcm_info.
        assert_eq!(filter_info(3, ETH_P_IPV6).to_ne_bytes()[..2], [0x86, 0xdd]);
        assert_eq!(filter_info(3, ETH_P_IPV6) >> 16, 3);
    }

    /// Ports without a protocol: tcp, udp and sctp each. The last plan gets
    /// priority 1, so on overlap it wins, as nft's last rule does.
    #[test]
    fn filters_expand_ports_and_reverse_priorities() {
        let any = MarkPlan {
            mark: 2,
            destination: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            prefix: 32,
            protocol: 0,
            ports: vec![53, 5353],
        };
        let steps = mark_steps("d0", 3, &[http_mark(), any.clone()]).unwrap();
        let names: Vec<&str> = steps.iter().map(|s| s.what.as_str()).collect();
        assert_eq!(
            names,
            [
                "qdisc ingress on d0",
                "flower filter prio 7 on d0 (mark 1, 192.168.1.192/32 tcp port 80)",
                "flower filter prio 6 on d0 (mark 2, 10.0.0.1/32 tcp port 53)",
                "flower filter prio 5 on d0 (mark 2, 10.0.0.1/32 udp port 53)",
                "flower filter prio 4 on d0 (mark 2, 10.0.0.1/32 sctp port 53)",
                "flower filter prio 3 on d0 (mark 2, 10.0.0.1/32 tcp port 5353)",
                "flower filter prio 2 on d0 (mark 2, 10.0.0.1/32 udp port 5353)",
                "flower filter prio 1 on d0 (mark 2, 10.0.0.1/32 sctp port 5353)",
            ]
        );
        let no_ports = MarkPlan {
            ports: vec![],
            ..any.clone()
        };
        let f = filters(&[no_ports]).unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!((f[0].protocol, f[0].port), (None, None));
        let sctp = filters(&[MarkPlan {
            protocol: 132,
            ..any.clone()
        }])
        .unwrap();
        let attrs = sctp[0].flower_options();
        let parsed = crate::netlink::parse_attrs(&attrs);
        assert!(parsed.contains(&(flower::KEY_SCTP_DST, &[0, 53][..])));
    }

    #[test]
    fn bad_plans_are_refused() {
        let m = http_mark();
        let e = filters(&[MarkPlan { prefix: 33, ..m.clone() }]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("prefix /33"), "{e}");
        let e = filters(&[MarkPlan {
            protocol: 300,
            ..m.clone()
        }])
        .unwrap_err();
        assert!(e.to_string().contains("protocol 300"), "{e}");
        let e = filters(&[MarkPlan { protocol: 33, ..m.clone() }]).unwrap_err();
        assert!(e.to_string().contains("tcp, udp and sctp only"), "{e}");
        // Ports of another protocol are refused, the protocol alone is fine.
        assert!(filters(&[MarkPlan {
            protocol: 33,
            ports: vec![],
            ..m
        }])
        .is_ok());
    }

    #[test]
    #[cfg(target_endian = "little")]
    fn kernel_errors_name_the_request_and_quote_the_kernel() {
        // errno -2, a capped echo of the request header, then NLMSGERR_ATTR_MSG.
        let mut payload = (-2i32).to_ne_bytes().to_vec();
        payload.extend([0u8; 16]);
        payload.extend([28, 0, 1, 0]); // 4 + 24
        payload.extend(b"TC classifier not found\0");
        let Refusal { errno, says } = Refusal::of(0x100 | 0x200, &payload);
        assert_eq!((errno, says.as_deref()), (2, Some("TC classifier not found")));
        let e = errno_error(errno, "flower filter prio 1 on d0 (…)", &Target::Filter, says.as_deref());
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        let text = e.to_string();
        assert!(text.starts_with("tc flower filter prio 1 on d0"), "{text}");
        assert!(text.contains("the kernel says \"TC classifier not found\""), "{text}");
        assert!(text.contains("load cls_flower"), "{text}");
        let q = errno_error(libc::ENOENT, "qdisc ingress on d0", &Target::Qdisc, None).to_string();
        assert!(q.contains("load sch_ingress"), "{q}");
    }
}
