//! The guest's initramfs: a cpio archive in the "newc" format (the one the kernel
//! unpacks, `Documentation/driver-api/early-userspace/buffer-format.rst`), written here
//! rather than by a `cpio` binary the host may not have.
//!
//! Each entry is a 110-byte ASCII header (`070701` and thirteen 8-digit hex fields:
//! inode, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor,
//! rdevminor, namesize, check), the NUL-terminated name padded to a multiple of 4 bytes
//! (counting from the header's start), then the data padded the same way. The archive
//! ends with an entry named `TRAILER!!!`.

/// A regular file's mode bits (`S_IFREG`).
pub const S_IFREG: u32 = 0o100000;
/// A directory's mode bits (`S_IFDIR`).
pub const S_IFDIR: u32 = 0o040000;

/// A newc archive being written in memory.
#[derive(Debug, Default)]
pub struct Newc {
    bytes: Vec<u8>,
    next_ino: u32,
}

impl Newc {
    /// An empty archive.
    pub fn new() -> Newc {
        Newc {
            bytes: Vec::new(),
            next_ino: 1,
        }
    }

    fn entry(&mut self, name: &str, mode: u32, nlink: u32, data: &[u8]) {
        let namesize = name.len() + 1;
        let header = format!(
            "070701{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}",
            self.next_ino,
            mode,
            0,
            0,
            nlink,
            0,
            data.len(),
            0,
            0,
            0,
            0,
            namesize,
            0
        );
        self.next_ino += 1;
        self.bytes.extend_from_slice(header.as_bytes());
        self.bytes.extend_from_slice(name.as_bytes());
        self.bytes.push(0);
        self.pad();
        self.bytes.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while self.bytes.len() % 4 != 0 {
            self.bytes.push(0);
        }
    }

    /// Adds a directory (`name` without a leading `/`), mode `perm` (e.g. `0o755`).
    pub fn dir(&mut self, name: &str, perm: u32) -> &mut Newc {
        self.entry(name, S_IFDIR | (perm & 0o7777), 2, &[]);
        self
    }

    /// Adds a regular file.
    pub fn file(&mut self, name: &str, perm: u32, data: &[u8]) -> &mut Newc {
        self.entry(name, S_IFREG | (perm & 0o7777), 1, data);
        self
    }

    /// Ends the archive with its trailer and returns its bytes.
    pub fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, 1, &[]);
        self.bytes
    }
}

/// The guest's initramfs: `/proc`, `/sys`, `/dev` and `/init`.
pub fn guest_initramfs(init: &[u8]) -> Vec<u8> {
    let mut a = Newc::new();
    a.dir("proc", 0o755).dir("sys", 0o755).dir("dev", 0o755);
    a.file("init", 0o755, init);
    a.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads an archive back: (name, mode, data) per entry, checking every header and
    /// the alignment.
    fn read(mut b: &[u8]) -> Vec<(String, u32, Vec<u8>)> {
        let total = b.len();
        let mut out = Vec::new();
        loop {
            let at = total - b.len();
            assert_eq!(at % 4, 0, "entry not 4-aligned");
            assert_eq!(&b[..6], b"070701");
            let field = |i: usize| {
                let s = std::str::from_utf8(&b[6 + 8 * i..6 + 8 * i + 8]).unwrap();
                u32::from_str_radix(s, 16).unwrap() as usize
            };
            let mode = field(1) as u32;
            let size = field(6);
            let namesize = field(11);
            let name = std::str::from_utf8(&b[110..110 + namesize - 1])
                .unwrap()
                .to_string();
            assert_eq!(b[110 + namesize - 1], 0);
            let data_at = (110 + namesize).div_ceil(4) * 4;
            let data = b[data_at..data_at + size].to_vec();
            let next = (data_at + size).div_ceil(4) * 4;
            b = &b[next..];
            if name == "TRAILER!!!" {
                assert!(b.is_empty(), "bytes after the trailer");
                return out;
            }
            out.push((name, mode, data));
        }
    }

    #[test]
    fn newc_round_trips_names_modes_and_data() {
        // Name and data lengths that hit every padding remainder.
        let mut a = Newc::new();
        a.dir("d", 0o755);
        for n in 0..8 {
            let name = format!("f{}", "x".repeat(n));
            a.file(&name, 0o644, &vec![n as u8; n * 3 + 1]);
        }
        let entries = read(&a.finish());
        assert_eq!(entries.len(), 9);
        assert_eq!(entries[0], ("d".to_string(), S_IFDIR | 0o755, vec![]));
        for n in 0..8 {
            let (name, mode, data) = &entries[n + 1];
            assert_eq!(name, &format!("f{}", "x".repeat(n)));
            assert_eq!(*mode, S_IFREG | 0o644);
            assert_eq!(data, &vec![n as u8; n * 3 + 1]);
        }
    }

    #[test]
    fn header_is_110_bytes_and_first_entry_exact() {
        let mut a = Newc::new();
        a.file("init", 0o755, b"abc");
        let b = a.finish();
        // 110 header + "init\0" (5) = 115, padded to 116; data 3 padded to 4.
        assert_eq!(&b[..14], b"07070100000001");
        assert_eq!(&b[14..22], b"000081ED"); // S_IFREG | 0755
        assert_eq!(&b[110..115], b"init\0");
        assert_eq!(&b[116..119], b"abc");
        assert_eq!(b[119], 0);
        assert_eq!(&b[120..126], b"070701");
    }

    #[test]
    fn guest_initramfs_has_init_and_mount_points() {
        let e = read(&guest_initramfs(b"\x7fELF"));
        let names: Vec<&str> = e.iter().map(|x| x.0.as_str()).collect();
        assert_eq!(names, ["proc", "sys", "dev", "init"]);
        assert_eq!(e[3].1, S_IFREG | 0o755);
    }
}
