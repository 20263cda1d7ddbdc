//! What raw netlink messages share, for the two families lvsdr encodes by
//! hand ([`crate::nft`] over `NETLINK_NETFILTER`, [`crate::tc`] over
//! `NETLINK_ROUTE`): the header flags and the attribute builder.

pub(crate) const NLMSG_ERROR: u16 = 2;
pub(crate) const NLMSG_DONE: u16 = 3;
pub(crate) const NLM_F_REQUEST: u16 = 0x1;
pub(crate) const NLM_F_ACK: u16 = 0x4;
pub(crate) const NLM_F_DUMP: u16 = 0x300;
pub(crate) const NLM_F_EXCL: u16 = 0x200;
pub(crate) const NLM_F_CREATE: u16 = 0x400;
pub(crate) const NLM_F_APPEND: u16 = 0x800;
pub(crate) const NLA_F_NESTED: u16 = 0x8000;

/// Netlink attributes, each padded to 4 bytes: `nlattr` length and type in
/// host order, then the payload (whose byte order is the family's business:
/// nf_tables integers are big-endian, rtnetlink's mostly host order).
#[derive(Default)]
pub(crate) struct Attrs(pub(crate) Vec<u8>);

impl Attrs {
    pub(crate) fn put(&mut self, kind: u16, payload: &[u8]) -> &mut Self {
        self.0.extend(((4 + payload.len()) as u16).to_ne_bytes());
        self.0.extend(kind.to_ne_bytes());
        self.0.extend(payload);
        while !self.0.len().is_multiple_of(4) {
            self.0.push(0);
        }
        self
    }
    /// A NUL-terminated string.
    pub(crate) fn put_str(&mut self, kind: u16, s: &str) -> &mut Self {
        let mut z = s.as_bytes().to_vec();
        z.push(0);
        self.put(kind, &z)
    }
    pub(crate) fn put_be32(&mut self, kind: u16, v: u32) -> &mut Self {
        self.put(kind, &v.to_be_bytes())
    }
    /// A nested attribute, filled by `fill`.
    pub(crate) fn nest(&mut self, kind: u16, fill: impl FnOnce(&mut Attrs)) -> &mut Self {
        let mut inner = Attrs::default();
        fill(&mut inner);
        self.put(kind | NLA_F_NESTED, &inner.0)
    }
}
