//! The cpio "newc" archives of the kernels' initrds (the playground's i386
//! guest, the distribution kernels' modules): one writer for both.

/// One cpio "newc" entry; `rdev` is a device node's major and minor.
pub(crate) fn entry(out: &mut Vec<u8>, ino: u32, name: &str, mode: u32, rdev: (u32, u32), data: &[u8]) {
    let fields = [
        ino,
        mode,
        0,                                        // uid
        0,                                        // gid
        if mode & 0o040000 != 0 { 2 } else { 1 }, // nlink
        0,                                        // mtime: reproducible
        data.len() as u32,
        0, // devmajor
        0, // devminor
        rdev.0,
        rdev.1,
        name.len() as u32 + 1,
        0, // check
    ];
    out.extend_from_slice(b"070701");
    for f in fields {
        out.extend_from_slice(format!("{f:08x}").as_bytes());
    }
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    out.resize(out.len().next_multiple_of(4), 0);
    out.extend_from_slice(data);
    out.resize(out.len().next_multiple_of(4), 0);
}

/// An entry that is not a device node.
pub(crate) fn entry_plain(out: &mut Vec<u8>, ino: u32, name: &str, mode: u32, data: &[u8]) {
    entry(out, ino, name, mode, (0, 0), data);
}
