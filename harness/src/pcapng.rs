//! A pcapng writer (the format of Wireshark and `tshark -r`), only what a
//! lab's capture needs: one section, one interface description per bridge
//! port, and enhanced packet blocks with an optional comment. Little-endian,
//! nanosecond timestamps. The format: IETF draft-ietf-opsawg-pcapng.
//!
//! Every block is `type, total length, body, total length`, its body padded
//! to 32 bits; options are `code, length, value` padded likewise, and end
//! with `opt_endofopt` (code 0, length 0).

/// Block types.
const SECTION_HEADER: u32 = 0x0A0D_0D0A;
const INTERFACE_DESCRIPTION: u32 = 1;
const ENHANCED_PACKET: u32 = 6;
/// The section header's byte-order magic.
const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;
/// `LINKTYPE_ETHERNET`.
const ETHERNET: u16 = 1;
/// Options: `opt_comment` (any block), `shb_userappl`, `if_name`, `if_tsresol`.
const OPT_COMMENT: u16 = 1;
const SHB_USERAPPL: u16 = 4;
const IF_NAME: u16 = 2;
const IF_TSRESOL: u16 = 9;
/// `if_tsresol` = 9: timestamps count nanoseconds.
const NANOSECONDS: u8 = 9;

/// A pcapng file being written in memory.
pub struct Writer {
    bytes: Vec<u8>,
}

fn padded(len: usize) -> usize {
    len.div_ceil(4) * 4
}

/// An option: code, length, value, padding. A value longer than an option
/// can hold (65,535 bytes) is cut at a character boundary.
fn option(out: &mut Vec<u8>, code: u16, value: &[u8]) {
    let value = &value[..value.len().min(usize::from(u16::MAX))];
    out.extend(code.to_le_bytes());
    out.extend((value.len() as u16).to_le_bytes());
    out.extend(value);
    out.resize(out.len() + padded(value.len()) - value.len(), 0);
}

fn text_option(out: &mut Vec<u8>, code: u16, text: &str) {
    let mut end = text.len().min(usize::from(u16::MAX));
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    option(out, code, &text.as_bytes()[..end]);
}

fn end_of_options(out: &mut Vec<u8>) {
    out.extend([0u8; 4]);
}

impl Writer {
    /// Starts a file with its section header; `application` names what wrote it.
    pub fn new(application: &str) -> Writer {
        let mut body = Vec::new();
        body.extend(BYTE_ORDER_MAGIC.to_le_bytes());
        body.extend(1u16.to_le_bytes()); // major version
        body.extend(0u16.to_le_bytes()); // minor version
        body.extend((-1i64).to_le_bytes()); // section length: not given
        if !application.is_empty() {
            text_option(&mut body, SHB_USERAPPL, application);
        }
        end_of_options(&mut body);
        let mut w = Writer { bytes: Vec::new() };
        w.block(SECTION_HEADER, &body);
        w
    }

    fn block(&mut self, kind: u32, body: &[u8]) {
        // The bodies built here are padded already; the total counts type and both lengths.
        let total = (body.len() + 12) as u32;
        self.bytes.extend(kind.to_le_bytes());
        self.bytes.extend(total.to_le_bytes());
        self.bytes.extend(body);
        self.bytes.extend(total.to_le_bytes());
    }

    /// Describes the next interface (interface ids count from 0 in the
    /// order they are described): an Ethernet link named `name`, frames cut at `snap` bytes.
    pub fn interface(&mut self, name: &str, snap: u32) {
        let mut body = Vec::new();
        body.extend(ETHERNET.to_le_bytes());
        body.extend(0u16.to_le_bytes()); // reserved
        body.extend(snap.to_le_bytes());
        text_option(&mut body, IF_NAME, name);
        option(&mut body, IF_TSRESOL, &[NANOSECONDS]);
        end_of_options(&mut body);
        self.block(INTERFACE_DESCRIPTION, &body);
    }

    /// Adds a frame seen on `interface` at `at_ns` (nanoseconds since the
    /// Unix epoch), `wire_len` bytes long on the wire of which `data` were kept.
    pub fn packet(&mut self, interface: u32, at_ns: u64, wire_len: u32, data: &[u8], comment: Option<&str>) {
        let mut body = Vec::with_capacity(32 + padded(data.len()));
        body.extend(interface.to_le_bytes());
        body.extend(((at_ns >> 32) as u32).to_le_bytes());
        body.extend((at_ns as u32).to_le_bytes());
        body.extend((data.len() as u32).to_le_bytes());
        body.extend(wire_len.max(data.len() as u32).to_le_bytes());
        body.extend(data);
        body.resize(body.len() + padded(data.len()) - data.len(), 0);
        if let Some(c) = comment {
            text_option(&mut body, OPT_COMMENT, c);
            end_of_options(&mut body);
        }
        self.block(ENHANCED_PACKET, &body);
    }

    /// The file's bytes.
    pub fn finish(self) -> Vec<u8> {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_section_header_is_byte_exact() {
        let bytes = Writer::new("ab").finish();
        #[rustfmt::skip]
        let want: Vec<u8> = vec![
            0x0a, 0x0d, 0x0d, 0x0a, // section header block
            40, 0, 0, 0,            // total length
            0x4d, 0x3c, 0x2b, 0x1a, // byte-order magic, little-endian
            1, 0, 0, 0,             // version 1.0
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // section length unknown
            4, 0, 2, 0, b'a', b'b', 0, 0, // shb_userappl "ab", padded
            0, 0, 0, 0,             // end of options
            40, 0, 0, 0,            // total length again
        ];
        assert_eq!(bytes, want);
    }

    #[test]
    fn an_interface_and_a_packet_are_byte_exact() {
        let mut w = Writer::new("");
        let header = w.bytes.len();
        w.interface("rs1", 192);
        w.packet(0, 0x0000_0001_0000_0002, 60, &[0xaa, 0xbb, 0xcc], Some("tcp/80"));
        w.packet(0, 3, 2, &[1, 2, 3, 4], None);
        let bytes = w.finish();
        #[rustfmt::skip]
        let want: Vec<u8> = vec![
            1, 0, 0, 0,             // interface description block
            40, 0, 0, 0,
            1, 0, 0, 0,             // LINKTYPE_ETHERNET, reserved
            192, 0, 0, 0,           // snap length
            2, 0, 3, 0, b'r', b's', b'1', 0, // if_name "rs1", padded
            9, 0, 1, 0, 9, 0, 0, 0, // if_tsresol: nanoseconds
            0, 0, 0, 0,             // end of options
            40, 0, 0, 0,
            6, 0, 0, 0,             // enhanced packet block
            52, 0, 0, 0,
            0, 0, 0, 0,             // interface 0
            1, 0, 0, 0,             // timestamp, high 32 bits
            2, 0, 0, 0,             // timestamp, low 32 bits
            3, 0, 0, 0,             // captured length
            60, 0, 0, 0,            // length on the wire
            0xaa, 0xbb, 0xcc, 0,    // the frame, padded
            1, 0, 6, 0, b't', b'c', b'p', b'/', b'8', b'0', 0, 0, // opt_comment
            0, 0, 0, 0,             // end of options
            52, 0, 0, 0,
            6, 0, 0, 0,             // a packet without options
            36, 0, 0, 0,
            0, 0, 0, 0,
            0, 0, 0, 0,
            3, 0, 0, 0,
            4, 0, 0, 0,
            4, 0, 0, 0,             // never shorter on the wire than what was kept
            1, 2, 3, 4,
            36, 0, 0, 0,
        ];
        assert_eq!(&bytes[header..], &want[..]);
    }

    #[test]
    fn a_comment_too_long_for_an_option_is_cut_at_a_character() {
        let mut w = Writer::new("");
        let start = w.bytes.len();
        let long = "é".repeat(40_000); // 80,000 bytes
        w.packet(0, 0, 0, &[], Some(&long));
        let bytes = w.finish();
        let len = u16::from_le_bytes([bytes[start + 30], bytes[start + 31]]);
        assert_eq!(len, 65_534, "the longest whole number of two-byte characters");
        let total = u32::from_le_bytes(bytes[start + 4..start + 8].try_into().unwrap()) as usize;
        assert_eq!(total % 4, 0);
        assert_eq!(bytes.len() - start, total);
    }
}
