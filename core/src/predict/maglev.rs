//! The `mh` scheduler's Maglev lookup table, as `ip_vs_mh.c` builds it:
//! table size 4093 (the default `CONFIG_IP_VS_MH_TAB_INDEX` of 12), fixed
//! hash keys, and the kernel's 64-bit `hsiphash` (SipHash-1-3 on a u32).

use std::net::IpAddr;

pub const TABLE_SIZE: u32 = 4093;
const TABLE_BITS: u32 = 6;
const KEY1: [u64; 2] = [2_654_435_761, 2_654_435_761];
const KEY2: [u64; 2] = [2_654_446_892, 2_654_446_892];

fn sipround(v: &mut [u64; 4]) {
    v[0] = v[0].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(13);
    v[1] ^= v[0];
    v[0] = v[0].rotate_left(32);
    v[2] = v[2].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(16);
    v[3] ^= v[2];
    v[0] = v[0].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(21);
    v[3] ^= v[0];
    v[2] = v[2].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(17);
    v[1] ^= v[2];
    v[2] = v[2].rotate_left(32);
}

/// The kernel's `hsiphash(&v, 4, key)` on a 64-bit machine.
pub fn hsiphash_u32(value: u32, key: &[u64; 2]) -> u32 {
    let mut v = [
        0x736f_6d65_7073_6575 ^ key[0],
        0x646f_7261_6e64_6f6d ^ key[1],
        0x6c79_6765_6e65_7261 ^ key[0],
        0x7465_6462_7974_6573 ^ key[1],
    ];
    let b: u64 = (4u64 << 56) | u64::from(value);
    v[3] ^= b;
    sipround(&mut v);
    v[0] ^= b;
    v[2] ^= 0xff;
    sipround(&mut v);
    sipround(&mut v);
    sipround(&mut v);
    ((v[0] ^ v[1]) ^ (v[2] ^ v[3])) as u32
}

fn hashkey(addr: IpAddr, port: u16, key: &[u64; 2], offset: u32) -> u32 {
    hsiphash_u32(offset.wrapping_add(u32::from(port)).wrapping_add(super::fold(addr)), key)
}

/// A populated lookup table: for each slot, an index into the kernel-ordered destination list.
#[derive(Debug, Clone)]
pub struct Table {
    slots: Vec<Option<usize>>,
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

impl Table {
    /// `entries` are (address, port, weight) in kernel list order.
    pub fn build(entries: &[(IpAddr, u16, i64)]) -> Table {
        let size = TABLE_SIZE as usize;
        let mut slots = vec![None; size];
        let g = entries
            .iter()
            .map(|e| e.2)
            .filter(|w| *w > 0)
            .fold(0, |g, w| if g > 0 { gcd(w, g) } else { w });
        if g < 1 {
            return Table { slots };
        }
        let mw = entries.iter().map(|e| e.2).max().unwrap_or(0) / g;
        let fls = 64 - (mw as u64).leading_zeros() as i64;
        let rshift = (fls - i64::from(TABLE_BITS)).max(0);
        struct Setup {
            skip: u32,
            perm: u32,
            turns: i64,
        }
        let mut setup: Vec<Setup> = entries
            .iter()
            .map(|(addr, port, w)| {
                let offset = hashkey(*addr, *port, &KEY1, 0) % TABLE_SIZE;
                let skip = hashkey(*addr, *port, &KEY2, 0) % (TABLE_SIZE - 1) + 1;
                let t = (w / g) >> rshift;
                Setup {
                    skip,
                    perm: offset,
                    turns: if t != 0 { t } else { i64::from(*w != 0) },
                }
            })
            .collect();
        let mut taken = vec![false; size];
        let mut n = 0;
        let mut dt_count = 0;
        'fill: loop {
            let mut i = 0;
            while i < setup.len() {
                let ds = &mut setup[i];
                if ds.turns < 1 {
                    i += 1;
                    continue;
                }
                while taken[ds.perm as usize] {
                    ds.perm += ds.skip;
                    if ds.perm >= TABLE_SIZE {
                        ds.perm -= TABLE_SIZE;
                    }
                }
                let c = ds.perm as usize;
                taken[c] = true;
                slots[c] = Some(i);
                n += 1;
                if n == size {
                    break 'fill;
                }
                dt_count += 1;
                if dt_count >= ds.turns {
                    dt_count = 0;
                    i += 1;
                }
            }
        }
        Table { slots }
    }

    /// The destination for a client, as `ip_vs_mh_get`/`ip_vs_mh_get_fallback` choose it.
    pub fn lookup(&self, client: IpAddr, port: u16, fallback: bool, available: impl Fn(usize) -> bool) -> Option<usize> {
        let ihash = hashkey(client, port, &KEY1, 0) % TABLE_SIZE;
        let first = self.slots[ihash as usize]?;
        if available(first) {
            return Some(first);
        }
        if !fallback {
            return None;
        }
        for offset in 0..TABLE_SIZE {
            let roffset = (offset + ihash) % TABLE_SIZE;
            let h = hashkey(client, port, &KEY1, roffset) % TABLE_SIZE;
            let d = self.slots[h as usize]?;
            if available(d) {
                return Some(d);
            }
        }
        None
    }
}
