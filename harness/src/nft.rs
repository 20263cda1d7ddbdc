//! Firewall marks for IPVS fwmark services, written to nf_tables over
//! netlink (`NETLINK_NETFILTER`, subsystem `NFNL_SUBSYS_NFTABLES`), so the
//! lab needs no `nft` or `iptables` binary. The layout follows
//! `include/uapi/linux/netfilter/nf_tables.h` and `nfnetlink.h`.
//!
//! [`apply_marks`] sends one transaction, which the kernel commits whole or
//! not at all. For `mark 1, 192.168.1.192/32, tcp, port 80` it is the same as
//!
//! ```text
//! nft add table inet lvsdr
//! nft add chain inet lvsdr prerouting '{ type filter hook prerouting priority -150; policy accept; }'
//! nft add rule inet lvsdr prerouting meta nfproto ipv4 ip daddr 192.168.1.192 meta l4proto tcp th dport 80 meta mark set 1
//! ```
//!
//! The socket belongs to the network namespace of the calling thread: run it
//! inside [`NetNs::run`](crate::netns::NetNs::run).

use crate::netlink::*;
use lvsdr_core::plan::MarkPlan;
use std::io;
use std::net::IpAddr;

/// The table every lab rule lives in (family inet).
pub const TABLE: &str = "lvsdr";
/// The base chain at the mangle priority of the prerouting hook.
pub const CHAIN: &str = "prerouting";

const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNETLINK_V0: u8 = 0;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;

const NFPROTO_UNSPEC: u8 = 0;
const NFPROTO_INET: u8 = 1;
const NFPROTO_IPV4: u8 = 2;
const NFPROTO_IPV6: u8 = 10;

/// `enum nf_tables_msg_types`
mod msg {
    pub const NEWTABLE: u8 = 0;
    pub const NEWCHAIN: u8 = 3;
    pub const NEWRULE: u8 = 6;
    pub const GETRULE: u8 = 7;
}

/// The `NFTA_*` attribute numbers, one module per nest.
mod attr {
    pub mod table {
        pub const NAME: u16 = 1;
        pub const FLAGS: u16 = 2;
    }
    pub mod chain {
        pub const TABLE: u16 = 1;
        pub const NAME: u16 = 3;
        pub const HOOK: u16 = 4;
        pub const POLICY: u16 = 5;
        pub const TYPE: u16 = 7;
    }
    pub mod hook {
        pub const HOOKNUM: u16 = 1;
        pub const PRIORITY: u16 = 2;
    }
    pub mod rule {
        pub const TABLE: u16 = 1;
        pub const CHAIN: u16 = 2;
        pub const EXPRESSIONS: u16 = 4;
    }
    pub const LIST_ELEM: u16 = 1;
    pub mod expr {
        pub const NAME: u16 = 1;
        pub const DATA: u16 = 2;
    }
    pub const DATA_VALUE: u16 = 1;
    pub mod immediate {
        pub const DREG: u16 = 1;
        pub const DATA: u16 = 2;
    }
    pub mod bitwise {
        pub const SREG: u16 = 1;
        pub const DREG: u16 = 2;
        pub const LEN: u16 = 3;
        pub const MASK: u16 = 4;
        pub const XOR: u16 = 5;
    }
    pub mod cmp {
        pub const SREG: u16 = 1;
        pub const OP: u16 = 2;
        pub const DATA: u16 = 3;
    }
    pub mod payload {
        pub const DREG: u16 = 1;
        pub const BASE: u16 = 2;
        pub const OFFSET: u16 = 3;
        pub const LEN: u16 = 4;
    }
    pub mod meta {
        pub const DREG: u16 = 1;
        pub const KEY: u16 = 2;
        pub const SREG: u16 = 3;
    }
    pub mod counter {
        pub const PACKETS: u16 = 2;
    }
}

/// `NFT_REG_1`: a 16-byte register, wide enough for an IPv6 address.
const REG_1: u32 = 1;
const NF_INET_PRE_ROUTING: u32 = 0;
const NF_IP_PRI_MANGLE: i32 = -150;
const NF_ACCEPT: u32 = 1;
const NFT_CMP_EQ: u32 = 0;
const NFT_PAYLOAD_NETWORK_HEADER: u32 = 1;
const NFT_PAYLOAD_TRANSPORT_HEADER: u32 = 2;
const NFT_META_MARK: u32 = 3;
const NFT_META_NFPROTO: u32 = 15;
const NFT_META_L4PROTO: u32 = 16;

/// `struct nft_data` holding a plain value (`NFTA_DATA_VALUE`), on the shared builder.
trait NftData {
    fn put_data(&mut self, kind: u16, value: &[u8]) -> &mut Self;
}

impl NftData for Attrs {
    fn put_data(&mut self, kind: u16, value: &[u8]) -> &mut Self {
        self.nest(kind, |d| {
            d.put(attr::DATA_VALUE, value);
        })
    }
}

/// One nf_tables message: `nlmsghdr`, `nfgenmsg` (family, version, resource id), attributes.
fn nft_message(kind: u16, flags: u16, seq: u32, family: u8, res_id: u16, attrs: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(4 + attrs.len());
    body.push(family);
    body.push(NFNETLINK_V0);
    body.extend(res_id.to_be_bytes());
    body.extend(attrs);
    message(kind, flags, seq, &body)
}

fn nft_type(m: u8) -> u16 {
    (NFNL_SUBSYS_NFTABLES << 8) | m as u16
}

/// One expression of a rule. Every one works on [`REG_1`].
#[derive(Debug, Clone, PartialEq, Eq)]
enum Expr {
    /// `meta KEY` into the register.
    Meta(u32),
    /// `meta KEY set` from the register.
    MetaSet(u32),
    /// Bytes of the packet into the register.
    Payload { base: u32, offset: u32, len: u32 },
    /// The register AND a mask.
    And(Vec<u8>),
    /// The register equals these bytes, or the rule stops here.
    Eq(Vec<u8>),
    /// Bytes into the register.
    Immediate(Vec<u8>),
    /// Packets and bytes that reached it.
    Counter,
}

impl Expr {
    fn name(&self) -> &'static str {
        match self {
            Expr::Meta(_) | Expr::MetaSet(_) => "meta",
            Expr::Payload { .. } => "payload",
            Expr::And(_) => "bitwise",
            Expr::Eq(_) => "cmp",
            Expr::Immediate(_) => "immediate",
            Expr::Counter => "counter",
        }
    }

    fn encode(&self, a: &mut Attrs) {
        use attr::*;
        match self {
            Expr::Meta(key) => {
                a.put_be32(meta::DREG, REG_1).put_be32(meta::KEY, *key);
            }
            Expr::MetaSet(key) => {
                a.put_be32(meta::KEY, *key).put_be32(meta::SREG, REG_1);
            }
            Expr::Payload { base, offset, len } => {
                a.put_be32(payload::DREG, REG_1)
                    .put_be32(payload::BASE, *base)
                    .put_be32(payload::OFFSET, *offset)
                    .put_be32(payload::LEN, *len);
            }
            Expr::And(mask) => {
                a.put_be32(bitwise::SREG, REG_1)
                    .put_be32(bitwise::DREG, REG_1)
                    .put_be32(bitwise::LEN, mask.len() as u32)
                    .put_data(bitwise::MASK, mask)
                    .put_data(bitwise::XOR, &vec![0; mask.len()]);
            }
            Expr::Eq(value) => {
                a.put_be32(cmp::SREG, REG_1)
                    .put_be32(cmp::OP, NFT_CMP_EQ)
                    .put_data(cmp::DATA, value);
            }
            Expr::Immediate(value) => {
                a.put_be32(immediate::DREG, REG_1).put_data(immediate::DATA, value);
            }
            Expr::Counter => {}
        }
    }
}

/// `NFTA_RULE_EXPRESSIONS`: each expression a list element of name and data.
fn put_expressions(a: &mut Attrs, exprs: &[Expr]) {
    a.nest(attr::rule::EXPRESSIONS, |list| {
        for e in exprs {
            list.nest(attr::LIST_ELEM, |elem| {
                elem.put_str(attr::expr::NAME, e.name());
                let mut data = Attrs::default();
                e.encode(&mut data);
                if !data.0.is_empty() {
                    elem.put(attr::expr::DATA | NLA_F_NESTED, &data.0);
                }
            });
        }
    });
}

fn table_attrs() -> Vec<u8> {
    let mut a = Attrs::default();
    a.put_str(attr::table::NAME, TABLE).put_be32(attr::table::FLAGS, 0);
    a.0
}

/// A base chain of type filter on the prerouting hook, policy accept.
fn chain_attrs(name: &str, priority: i32) -> Vec<u8> {
    let mut a = Attrs::default();
    a.put_str(attr::chain::TABLE, TABLE)
        .put_str(attr::chain::NAME, name)
        .nest(attr::chain::HOOK, |h| {
            h.put_be32(attr::hook::HOOKNUM, NF_INET_PRE_ROUTING)
                .put_be32(attr::hook::PRIORITY, priority as u32);
        })
        .put_be32(attr::chain::POLICY, NF_ACCEPT)
        .put_str(attr::chain::TYPE, "filter");
    a.0
}

fn rule_attrs(chain: &str, exprs: &[Expr]) -> Vec<u8> {
    let mut a = Attrs::default();
    a.put_str(attr::rule::TABLE, TABLE).put_str(attr::rule::CHAIN, chain);
    put_expressions(&mut a, exprs);
    a.0
}

/// `192.168.1.192/32 tcp port 80`, `2001:db8::/64 any`.
fn describe(m: &MarkPlan, port: Option<u16>) -> String {
    let proto = match m.protocol {
        0 => "any protocol".to_string(),
        6 => "tcp".to_string(),
        17 => "udp".to_string(),
        132 => "sctp".to_string(),
        p => format!("protocol {p}"),
    };
    let port = port.map(|p| format!(" port {p}")).unwrap_or_default();
    format!("mark {}, {}/{} {proto}{port}", m.mark, m.destination, m.prefix)
}

/// The expressions of one marking rule: family, destination, protocol, port, mark.
fn mark_exprs(m: &MarkPlan, port: Option<u16>) -> io::Result<Vec<Expr>> {
    let invalid = |why: String| io::Error::new(io::ErrorKind::InvalidInput, format!("{}: {why}", describe(m, port)));
    let (nfproto, offset, address, host_len) = match m.destination {
        IpAddr::V4(a) => (NFPROTO_IPV4, 16, a.octets().to_vec(), 32u8),
        IpAddr::V6(a) => (NFPROTO_IPV6, 24, a.octets().to_vec(), 128u8),
    };
    if m.prefix > host_len {
        return Err(invalid(format!("prefix /{} is longer than the address", m.prefix)));
    }
    let mask: Vec<u8> = (0..address.len())
        .map(|i| {
            let bits = (m.prefix as usize).saturating_sub(i * 8).min(8);
            (0xff00u16 >> bits) as u8
        })
        .collect();
    let mut exprs = vec![
        Expr::Meta(NFT_META_NFPROTO),
        Expr::Eq(vec![nfproto]),
        Expr::Payload {
            base: NFT_PAYLOAD_NETWORK_HEADER,
            offset,
            len: address.len() as u32,
        },
    ];
    if m.prefix < host_len {
        exprs.push(Expr::And(mask.clone()));
    }
    exprs.push(Expr::Eq(address.iter().zip(&mask).map(|(a, k)| a & k).collect()));
    if m.protocol != 0 {
        let p = u8::try_from(m.protocol).map_err(|_| invalid(format!("protocol {} is not an IP protocol number", m.protocol)))?;
        exprs.push(Expr::Meta(NFT_META_L4PROTO));
        exprs.push(Expr::Eq(vec![p]));
    }
    if let Some(port) = port {
        exprs.push(Expr::Payload {
            base: NFT_PAYLOAD_TRANSPORT_HEADER,
            offset: 2,
            len: 2,
        });
        exprs.push(Expr::Eq(port.to_be_bytes().to_vec()));
    }
    // The mark register holds skb->mark as the host stores it.
    exprs.push(Expr::Immediate(m.mark.to_ne_bytes().to_vec()));
    exprs.push(Expr::MetaSet(NFT_META_MARK));
    Ok(exprs)
}

/// One message of a batch and what to call it in an error.
struct Step {
    what: String,
    kind: u16,
    flags: u16,
    attrs: Vec<u8>,
}

/// The table, the chain and one rule per (mark, port), or per mark without ports.
fn mark_steps(marks: &[MarkPlan]) -> io::Result<Vec<Step>> {
    let create = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
    let mut steps = vec![
        Step {
            what: format!("table inet {TABLE}"),
            kind: nft_type(msg::NEWTABLE),
            flags: create,
            attrs: table_attrs(),
        },
        Step {
            what: format!("chain {CHAIN} (type filter, hook prerouting, priority {NF_IP_PRI_MANGLE})"),
            kind: nft_type(msg::NEWCHAIN),
            flags: create,
            attrs: chain_attrs(CHAIN, NF_IP_PRI_MANGLE),
        },
    ];
    for m in marks {
        let ports: Vec<Option<u16>> = if m.ports.is_empty() {
            vec![None]
        } else {
            m.ports.iter().copied().map(Some).collect()
        };
        for port in ports {
            steps.push(Step {
                what: format!("rule {} ({})", steps.len() - 1, describe(m, port)),
                kind: nft_type(msg::NEWRULE),
                flags: NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_APPEND,
                attrs: rule_attrs(CHAIN, &mark_exprs(m, port)?),
            });
        }
    }
    Ok(steps)
}

/// The bytes of a whole transaction, sequence numbers from `seq`.
fn batch(steps: &[Step], seq: u32) -> Vec<u8> {
    let mut out = nft_message(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, seq, NFPROTO_UNSPEC, NFNL_SUBSYS_NFTABLES, &[]);
    for (i, s) in steps.iter().enumerate() {
        out.extend(nft_message(s.kind, s.flags, seq + 1 + i as u32, NFPROTO_INET, 0, &s.attrs));
    }
    out.extend(nft_message(
        NFNL_MSG_BATCH_END,
        NLM_F_REQUEST,
        seq + 1 + steps.len() as u32,
        NFPROTO_UNSPEC,
        NFNL_SUBSYS_NFTABLES,
        &[],
    ));
    out
}

/// What an errno most likely means for one nf_tables message.
fn hint(errno: i32, what: &str) -> &'static str {
    match errno {
        // nf_tables answers for its families; without it nfnetlink refuses the batch.
        libc::EOPNOTSUPP if what.starts_with("table") => " (this kernel's nf_tables has no inet family: CONFIG_NF_TABLES_INET)",
        libc::EOPNOTSUPP | libc::EPROTONOSUPPORT => " (this kernel has no nf_tables: CONFIG_NF_TABLES, module nf_tables)",
        libc::ENOENT if what.starts_with("chain") => {
            " (no filter chain type for family inet: this kernel's nf_tables lacks CONFIG_NF_TABLES_INET)"
        }
        libc::ENOENT if what.starts_with("rule") => " (the chain is missing, or this kernel lacks one of the expressions)",
        libc::EEXIST => " (it is already there: marks are applied once, to a fresh namespace)",
        libc::EPERM => " (needs CAP_NET_ADMIN in the namespace)",
        _ => "",
    }
}

fn errno_error(errno: i32, what: &str) -> io::Error {
    let os = io::Error::from_raw_os_error(errno);
    // No nf_tables at all is Unsupported too, as EOPNOTSUPP already is: crate::marks falls back on it.
    let kind = if errno == libc::EPROTONOSUPPORT {
        io::ErrorKind::Unsupported
    } else {
        os.kind()
    };
    io::Error::new(kind, format!("nf_tables {what} failed: {os}{}", hint(errno, what)))
}

/// A netlink socket on nfnetlink, in the calling thread's namespace.
fn open() -> io::Result<Socket> {
    Socket::open(NETLINK_NETFILTER, "nf_tables").map_err(|e| match e.raw_os_error() {
        Some(n) => errno_error(n, "netlink socket"),
        None => e,
    })
}

/// The errno of an `NLMSG_ERROR` (0 is an ACK).
fn error_code(m: &Message) -> i32 {
    Refusal::of(m.flags, &m.payload).errno
}

/// Sends `steps` as one transaction and waits for every ACK. The first
/// failure (in message order) becomes the error, naming its message.
fn transact(nl: &Socket, steps: &[Step]) -> io::Result<()> {
    let seq = nl.seqs(steps.len() + 2);
    nl.send(&batch(steps, seq))?;
    let label = |s: u32| -> String {
        if s == seq {
            "batch begin".into()
        } else {
            steps
                .get(s.wrapping_sub(seq + 1) as usize)
                .map(|st| st.what.clone())
                .unwrap_or_else(|| format!("message {s}"))
        }
    };
    let mut pending: std::collections::BTreeSet<u32> = (1..=steps.len() as u32).map(|i| seq + i).collect();
    let mut errors: Vec<(u32, i32)> = Vec::new();
    while !pending.is_empty() {
        // Once something failed the kernel has queued every reply already.
        let Some(replies) = nl.receive(!errors.is_empty())? else { break };
        for r in replies {
            if r.kind != NLMSG_ERROR {
                continue;
            }
            pending.remove(&r.seq);
            let code = error_code(&r);
            if code != 0 {
                errors.push((r.seq, code));
                if r.seq == seq {
                    pending.clear();
                }
            }
        }
    }
    errors.sort();
    if let Some(&(s, code)) = errors.first() {
        let mut e = errno_error(code, &label(s));
        if errors.len() > 1 {
            e = io::Error::new(
                e.kind(),
                format!(
                    "{e} ({} later message{} failed too; nothing was applied)",
                    errors.len() - 1,
                    if errors.len() == 2 { "" } else { "s" }
                ),
            );
        }
        return Err(e);
    }
    Ok(())
}

/// Creates table `inet lvsdr`, its chain `prerouting` (filter, hook
/// prerouting, priority -150, policy accept) and one rule per (mark, port)
/// that sets the mark, in one transaction, in the calling thread's network
/// namespace. Equivalent to the `nft add table/chain/rule` lines in the
/// module doc. The namespace must not have the table yet.
pub fn apply_marks(marks: &[MarkPlan]) -> io::Result<()> {
    let steps = mark_steps(marks)?;
    let nl = open()?;
    transact(&nl, &steps)
}

/// One rule as a dump lists it: its chain and its expressions' names and data.
#[derive(Debug)]
struct DumpedRule {
    chain: String,
    exprs: Vec<(String, Vec<u8>)>,
}

/// `nft list table inet lvsdr`, rule by rule.
fn dump_rules(nl: &Socket) -> io::Result<Vec<DumpedRule>> {
    use crate::netlink::parse_attrs;
    let mut a = Attrs::default();
    a.put_str(attr::rule::TABLE, TABLE);
    let seq = nl.seqs(1);
    nl.send(&nft_message(
        nft_type(msg::GETRULE),
        NLM_F_REQUEST | NLM_F_DUMP,
        seq,
        NFPROTO_INET,
        0,
        &a.0,
    ))?;
    let text = |b: &[u8]| String::from_utf8_lossy(b.split(|c| *c == 0).next().unwrap_or_default()).into_owned();
    let mut rules = Vec::new();
    loop {
        let Some(replies) = nl.receive(false)? else { continue };
        for m in replies {
            let (kind, payload) = (m.kind, &m.payload);
            match kind {
                NLMSG_DONE => return Ok(rules),
                NLMSG_ERROR => return Err(errno_error(error_code(&m), "rule dump")),
                k if k == nft_type(msg::NEWRULE) => {
                    let attrs = parse_attrs(payload.get(4..).unwrap_or_default());
                    let get = |k: u16| attrs.iter().find(|(t, _)| *t == k).map(|(_, v)| *v);
                    if get(attr::rule::TABLE).map(text).as_deref() != Some(TABLE) {
                        continue;
                    }
                    let exprs = get(attr::rule::EXPRESSIONS)
                        .map(parse_attrs)
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(_, elem)| {
                            let e = parse_attrs(elem);
                            let f = |k: u16| e.iter().find(|(t, _)| *t == k).map(|(_, v)| *v).unwrap_or_default();
                            (text(f(attr::expr::NAME)), f(attr::expr::DATA).to_vec())
                        })
                        .collect();
                    rules.push(DumpedRule {
                        chain: get(attr::rule::CHAIN).map(text).unwrap_or_default(),
                        exprs,
                    });
                }
                _ => {}
            }
        }
    }
}

/// The packet count of a rule's counter expression.
fn counted_packets(rule: &DumpedRule) -> Option<u64> {
    let (_, data) = rule.exprs.iter().find(|(n, _)| n == "counter")?;
    let attrs = crate::netlink::parse_attrs(data);
    let (_, v) = attrs.iter().find(|(t, _)| *t == attr::counter::PACKETS)?;
    Some(u64::from_be_bytes((*v).try_into().ok()?))
}

/// Applies marks in a namespace of its own and checks them on this kernel:
/// the rules are listed, a second apply is refused with a message naming the
/// table, and packets to a marked port (IPv4 TCP, IPv6 UDP) leave the mangle
/// chain with their mark while others do not, as counted by a later chain
/// (`meta mark M counter`). Returns one line per step, or the first failure.
pub fn self_check() -> Result<String, String> {
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
    let ns = crate::netns::NetNs::create(&format!("{}nft-check", crate::netns::unique_prefix())).map_err(|e| e.to_string())?;
    ns.run(|| -> Result<String, String> {
        let mut log = String::new();
        let mut ok = |line: &str| log.push_str(&format!("ok   {line}\n"));
        let marks = [
            MarkPlan {
                mark: 1,
                destination: IpAddr::V4(Ipv4Addr::LOCALHOST),
                prefix: 32,
                protocol: 6,
                ports: vec![80, 443],
            },
            MarkPlan {
                mark: 0x2_0002,
                destination: IpAddr::V6(Ipv6Addr::LOCALHOST),
                prefix: 64,
                protocol: 17,
                ports: vec![],
            },
        ];
        apply_marks(&marks).map_err(|e| e.to_string())?;
        ok("apply_marks: table, chain and 3 rules in one transaction");
        let nl = open().map_err(|e| e.to_string())?;
        let rules = dump_rules(&nl).map_err(|e| e.to_string())?;
        let ours = rules.iter().filter(|r| r.chain == CHAIN).count();
        if ours != 3 {
            return Err(format!("FAIL the dump lists {ours} rules in {TABLE}/{CHAIN}, not 3"));
        }
        ok(&format!("the dump lists 3 rules in inet {TABLE} {CHAIN}"));
        match apply_marks(&marks) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && e.to_string().contains("table inet lvsdr") => {
                ok(&format!("a second apply is refused: {e}"))
            }
            other => return Err(format!("FAIL a second apply gave {other:?}")),
        }
        // A later chain counts what carries each mark.
        let watch = |mark: u32| vec![Expr::Meta(NFT_META_MARK), Expr::Eq(mark.to_ne_bytes().to_vec()), Expr::Counter];
        let steps = [
            Step {
                what: "chain watch".into(),
                kind: nft_type(msg::NEWCHAIN),
                flags: NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE,
                attrs: chain_attrs("watch", -100),
            },
            Step {
                what: "watch rule 1".into(),
                kind: nft_type(msg::NEWRULE),
                flags: NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_APPEND,
                attrs: rule_attrs("watch", &watch(1)),
            },
            Step {
                what: "watch rule 2".into(),
                kind: nft_type(msg::NEWRULE),
                flags: NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_APPEND,
                attrs: rule_attrs("watch", &watch(0x2_0002)),
            },
        ];
        transact(&nl, &steps).map_err(|e| e.to_string())?;
        let counts = || -> Result<(u64, u64), String> {
            let rules = dump_rules(&nl).map_err(|e| e.to_string())?;
            let mut watched = rules.iter().filter(|r| r.chain == "watch").map(counted_packets);
            match (watched.next(), watched.next()) {
                (Some(Some(a)), Some(Some(b))) => Ok((a, b)),
                _ => Err("FAIL the watch chain's counters are not in the dump".into()),
            }
        };
        // Nothing listens: each connect is one SYN, answered by a reset to the client's own port.
        let syn = |port: u16| {
            let _ = TcpStream::connect_timeout(&SocketAddr::from((Ipv4Addr::LOCALHOST, port)), std::time::Duration::from_secs(2));
        };
        syn(81);
        if counts()? != (0, 0) {
            return Err(format!("FAIL a SYN to 127.0.0.1:81 was marked: {:?}", counts()?));
        }
        ok("a SYN to 127.0.0.1:81 (no rule) carries no mark");
        syn(80);
        syn(443);
        if counts()? != (2, 0) {
            return Err(format!("FAIL SYNs to 127.0.0.1:80 and :443 counted {:?}, not (2, 0)", counts()?));
        }
        ok("SYNs to 127.0.0.1:80 and :443 carry mark 1 after the mangle chain");
        let udp = UdpSocket::bind((Ipv6Addr::LOCALHOST, 0)).map_err(|e| format!("FAIL udp socket on ::1: {e}"))?;
        udp.send_to(b"x", (Ipv6Addr::LOCALHOST, 5353))
            .map_err(|e| format!("FAIL udp to [::1]:5353: {e}"))?;
        if counts()? != (2, 1) {
            return Err(format!("FAIL a datagram to [::1]:5353 counted {:?}, not (2, 1)", counts()?));
        }
        ok("a UDP datagram to [::1]:5353 carries mark 0x20002 (::1/64, any port)");
        Ok(log)
    })
    .map_err(|e| e.to_string())?
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    /// Appends one attribute, padded to 4 bytes.
    fn push(buf: &mut Vec<u8>, kind: u16, payload: &[u8]) {
        buf.extend(((4 + payload.len()) as u16).to_ne_bytes());
        buf.extend(kind.to_ne_bytes());
        buf.extend(payload);
        while !buf.len().is_multiple_of(4) {
            buf.push(0);
        }
    }
    fn nested(buf: &mut Vec<u8>, kind: u16, inner: &[u8]) {
        push(buf, kind | 0x8000, inner);
    }
    fn be(v: u32) -> [u8; 4] {
        v.to_be_bytes()
    }
    /// `NFTA_DATA_VALUE` inside a nest of type `kind`.
    fn data(buf: &mut Vec<u8>, kind: u16, value: &[u8]) {
        let mut d = vec![];
        push(&mut d, 1, value);
        nested(buf, kind, &d);
    }
    fn header(len: usize, kind: u16, flags: u16, seq: u32, family: u8, res_id: u16) -> Vec<u8> {
        let mut h = vec![];
        h.extend((len as u32).to_ne_bytes());
        h.extend(kind.to_ne_bytes());
        h.extend(flags.to_ne_bytes());
        h.extend(seq.to_ne_bytes());
        h.extend(0u32.to_ne_bytes());
        h.extend([family, 0]);
        h.extend(res_id.to_be_bytes());
        h
    }

    /// Hand-built from nf_tables.h: `nft add table inet lvsdr`.
    #[test]
    fn table_message_bytes() {
        let mut attrs = vec![];
        push(&mut attrs, 1, b"lvsdr\0"); // NFTA_TABLE_NAME, 4 + 6 → padded to 12
        push(&mut attrs, 2, &[0, 0, 0, 0]); // NFTA_TABLE_FLAGS
        assert_eq!(attrs.len(), 20);
        // NLM_F_REQUEST | NLM_F_ACK | NLM_F_EXCL | NLM_F_CREATE
        let mut expected = header(40, 0x0a00, 0x0605, 7, 1, 0);
        expected.extend(&attrs);
        let steps = mark_steps(&[]).unwrap();
        let table = &steps[0];
        assert_eq!(nft_message(table.kind, table.flags, 7, NFPROTO_INET, 0, &table.attrs), expected);
    }

    /// A batch is BEGIN, the messages, END; begin and end name the
    /// subsystem in `res_id` (big-endian 10) and ask for no ACK.
    #[test]
    fn batch_is_framed_by_begin_and_end() {
        let steps = mark_steps(&[]).unwrap();
        let b = batch(&steps, 100);
        let mut begin = header(20, 0x10, 1, 100, 0, 10);
        assert_eq!(&b[..20], begin.as_slice());
        begin = header(20, 0x11, 1, 103, 0, 10);
        assert_eq!(&b[b.len() - 20..], begin.as_slice());
        assert_eq!(b[20 + 4..20 + 6], 0x0a00u16.to_ne_bytes()); // NEWTABLE
        assert_eq!(b[20 + 8..20 + 12], 101u32.to_ne_bytes());
    }

    /// `type filter hook prerouting priority -150; policy accept;`
    #[test]
    fn chain_attribute_bytes() {
        let mut expected = vec![];
        push(&mut expected, 1, b"lvsdr\0");
        push(&mut expected, 3, b"prerouting\0");
        let mut hook = vec![];
        push(&mut hook, 1, &be(0));
        push(&mut hook, 2, &[0xff, 0xff, 0xff, 0x6a]); // -150
        nested(&mut expected, 4, &hook);
        push(&mut expected, 5, &be(1)); // NF_ACCEPT
        push(&mut expected, 7, b"filter\0");
        assert_eq!(chain_attrs(CHAIN, NF_IP_PRI_MANGLE), expected);
    }

    fn elem(list: &mut Vec<u8>, name: &[u8], body: &[u8]) {
        let mut e = vec![];
        push(&mut e, 1, name);
        nested(&mut e, 2, body);
        nested(list, 1, &e);
    }

    /// Hand-built from nf_tables.h: the rule for `mark 1, 192.168.1.192/32,
    /// tcp, port 80`. A /32 needs no bitwise.
    #[test]
    fn rule_message_bytes() {
        let mark = MarkPlan {
            mark: 1,
            destination: IpAddr::V4(Ipv4Addr::new(192, 168, 1, 192)),
            prefix: 32,
            protocol: 6,
            ports: vec![80],
        };
        let mut list = vec![];
        // meta load nfproto => reg 1 (DREG, KEY)
        let mut m = vec![];
        push(&mut m, 1, &be(1));
        push(&mut m, 2, &be(15));
        elem(&mut list, b"meta\0", &m);
        // cmp eq reg 1 0x02 (NFPROTO_IPV4)
        let mut c = vec![];
        push(&mut c, 1, &be(1));
        push(&mut c, 2, &be(0));
        data(&mut c, 3, &[2]);
        elem(&mut list, b"cmp\0", &c);
        // payload load 4b @ network header + 16 => reg 1
        let mut p = vec![];
        push(&mut p, 1, &be(1));
        push(&mut p, 2, &be(1));
        push(&mut p, 3, &be(16));
        push(&mut p, 4, &be(4));
        elem(&mut list, b"payload\0", &p);
        // cmp eq reg 1 192.168.1.192
        let mut c = vec![];
        push(&mut c, 1, &be(1));
        push(&mut c, 2, &be(0));
        data(&mut c, 3, &[192, 168, 1, 192]);
        elem(&mut list, b"cmp\0", &c);
        // meta load l4proto => reg 1; cmp eq 6
        let mut m = vec![];
        push(&mut m, 1, &be(1));
        push(&mut m, 2, &be(16));
        elem(&mut list, b"meta\0", &m);
        let mut c = vec![];
        push(&mut c, 1, &be(1));
        push(&mut c, 2, &be(0));
        data(&mut c, 3, &[6]);
        elem(&mut list, b"cmp\0", &c);
        // payload load 2b @ transport header + 2 => reg 1; cmp eq 0x0050
        let mut p = vec![];
        push(&mut p, 1, &be(1));
        push(&mut p, 2, &be(2));
        push(&mut p, 3, &be(2));
        push(&mut p, 4, &be(2));
        elem(&mut list, b"payload\0", &p);
        let mut c = vec![];
        push(&mut c, 1, &be(1));
        push(&mut c, 2, &be(0));
        data(&mut c, 3, &[0, 80]);
        elem(&mut list, b"cmp\0", &c);
        // immediate reg 1 0x00000001 (host order); meta set mark with reg 1 (KEY, SREG)
        let mut i = vec![];
        push(&mut i, 1, &be(1));
        data(&mut i, 2, &1u32.to_ne_bytes());
        elem(&mut list, b"immediate\0", &i);
        let mut m = vec![];
        push(&mut m, 2, &be(3));
        push(&mut m, 3, &be(1));
        elem(&mut list, b"meta\0", &m);

        let mut attrs = vec![];
        push(&mut attrs, 1, b"lvsdr\0");
        push(&mut attrs, 2, b"prerouting\0");
        nested(&mut attrs, 4, &list);
        // NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_APPEND
        let mut expected = header(20 + attrs.len(), 0x0a06, 0x0c05, 9, 1, 0);
        expected.extend(&attrs);

        let steps = mark_steps(&[mark]).unwrap();
        assert_eq!(steps.len(), 3);
        let rule = &steps[2];
        assert_eq!(rule.what, "rule 1 (mark 1, 192.168.1.192/32 tcp port 80)");
        assert_eq!(nft_message(rule.kind, rule.flags, 9, NFPROTO_INET, 0, &rule.attrs), expected);
    }

    /// A prefix shorter than the address masks before comparing; the
    /// compared address is the masked one.
    #[test]
    fn prefixes_mask_the_address() {
        let m = MarkPlan {
            mark: 7,
            destination: "2001:db8::1:5".parse().unwrap(),
            prefix: 52,
            protocol: 0,
            ports: vec![],
        };
        let exprs = mark_exprs(&m, None).unwrap();
        let mut mask = vec![0xff; 6];
        mask.push(0xf0);
        mask.extend([0; 9]);
        assert_eq!(
            exprs[..5],
            [
                Expr::Meta(NFT_META_NFPROTO),
                Expr::Eq(vec![10]),
                Expr::Payload {
                    base: 1,
                    offset: 24,
                    len: 16
                },
                Expr::And(mask),
                Expr::Eq(vec![0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            ]
        );
        // No protocol, no port: the mark comes next.
        assert_eq!(exprs[5..], [Expr::Immediate(7u32.to_ne_bytes().to_vec()), Expr::MetaSet(3)]);
        let v4 = MarkPlan {
            destination: IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3)),
            prefix: 0,
            ..m
        };
        assert!(mark_exprs(&v4, None).unwrap().contains(&Expr::And(vec![0; 4])));
    }

    #[test]
    fn one_rule_per_port_and_bad_plans_are_refused() {
        let m = MarkPlan {
            mark: 3,
            destination: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            prefix: 33,
            protocol: 17,
            ports: vec![53, 5353],
        };
        let e = mark_steps(std::slice::from_ref(&m)).err().unwrap();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("prefix /33"), "{e}");
        let ok = MarkPlan { prefix: 32, ..m.clone() };
        assert_eq!(mark_steps(&[ok]).unwrap().len(), 4);
        let wide = MarkPlan {
            prefix: 32,
            protocol: 300,
            ..m
        };
        assert!(mark_steps(&[wide]).is_err());
    }

    #[test]
    fn kernel_errors_name_the_message() {
        let e = errno_error(libc::ENOENT, "chain prerouting (type filter, hook prerouting, priority -150)");
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(e.to_string().starts_with("nf_tables chain prerouting"), "{e}");
        assert!(e.to_string().contains("CONFIG_NF_TABLES_INET"), "{e}");
        assert!(errno_error(libc::EOPNOTSUPP, "table inet lvsdr")
            .to_string()
            .contains("no inet family"));
        assert!(errno_error(libc::EOPNOTSUPP, "batch begin")
            .to_string()
            .contains("has no nf_tables"));
        // Both ways of "no nf_tables here" are Unsupported, which crate::marks falls back on.
        assert_eq!(errno_error(libc::EOPNOTSUPP, "table inet lvsdr").kind(), io::ErrorKind::Unsupported);
        assert_eq!(
            errno_error(libc::EPROTONOSUPPORT, "netlink socket").kind(),
            io::ErrorKind::Unsupported
        );
    }

    /// Needs root and nf_tables with the inet family. Runs on the host with
    /// `cargo test -p lvsdr-harness --lib nft -- --ignored`, or under UML with
    /// `lvsdr kernel-exec --kernel uml -- <test binary> nft::tests::on_this_kernel --ignored`.
    #[test]
    #[ignore]
    fn on_this_kernel() {
        match self_check() {
            Ok(log) => print!("{log}"),
            Err(e) => panic!("{e}"),
        }
    }
}
