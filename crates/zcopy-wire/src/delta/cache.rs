//! The receiver's signatures of the files it built from deltas, kept so that
//! the next delta to the same file needs no read of it: a file's entry holds its
//! chunks and the device, inode, size, mtime and ctime it had when it was
//! written, and is used only while the file still has all five (any write,
//! truncate, chmod or rename since changes the ctime; then the file is read
//! again, and the entry is replaced after the next delta).
//!
//! The chunks come for free: a delta's COPYs are runs of old chunks, whose
//! digests the old signature has, and its LITERALs are whole new chunks, hashed
//! as they arrive. They live in files of their own (`DIR/DEV-INO`), not in an
//! xattr of the file: ext4 caps a value at one block (4 KiB, 200 chunks: a 12 MiB
//! file), and setting one, like the rename that puts the file in place, changes
//! the very ctime the entry must record.

use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;

use rustix::fs::Stat;

use super::signature::{Signature, ENCODED_CHUNK};

const MAGIC: &[u8; 5] = b"ZSIG1";
/// Magic, then device, inode, size, mtime (s, ns) and ctime (s, ns).
const HEADER: usize = 5 + 8 * 3 + 12 * 2;

/// Where the signatures live.
#[derive(Clone, Debug)]
pub struct SignatureCache {
    dir: PathBuf,
}

impl SignatureCache {
    /// A cache in `dir` (made when first written).
    pub fn new(dir: PathBuf) -> SignatureCache {
        SignatureCache { dir }
    }

    /// The user's: `$XDG_CACHE_HOME/zcopy/signatures`, else `~/.cache/...`.
    pub fn users() -> Option<SignatureCache> {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
        Some(SignatureCache::new(base.join("zcopy").join("signatures")))
    }

    /// The signature kept for `file`, if it is still the file it was kept for.
    pub fn load(&self, file: &File) -> Option<Signature> {
        let st = rustix::fs::fstat(file).ok()?;
        let bytes = std::fs::read(self.path(&st)).ok()?;
        let (head, chunks) = bytes.split_at_checked(HEADER)?;
        if head != header(&st) {
            return None;
        }
        let mut sig = Signature::default();
        sig.decode_more(chunks).ok()?;
        (sig.size() == st.st_size as u64).then_some(sig)
    }

    /// Keeps `sig` for `file` as it is now (its ctime included), replacing
    /// what was kept for it; written beside and renamed, so a reader never sees
    /// half an entry.
    pub fn store(&self, file: &File, sig: &Signature) -> io::Result<()> {
        let st = rustix::fs::fstat(file)?;
        if sig.size() != st.st_size as u64 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the signature does not cover the file",
            ));
        }
        std::fs::create_dir_all(&self.dir)?;
        let mut bytes = Vec::with_capacity(HEADER + sig.chunks.len() * ENCODED_CHUNK);
        bytes.extend_from_slice(&header(&st));
        sig.encode(0..sig.chunks.len(), &mut bytes);
        let mut temp = tempfile::NamedTempFile::new_in(&self.dir)?;
        temp.write_all(&bytes)?;
        temp.persist(self.path(&st)).map_err(|e| e.error)?;
        Ok(())
    }

    /// Drops what was kept for the file `st` describes (replaced by another).
    pub fn forget(&self, st: &Stat) {
        let _ = std::fs::remove_file(self.path(st));
    }

    fn path(&self, st: &Stat) -> PathBuf {
        self.dir.join(format!("{:x}-{:x}", st.st_dev, st.st_ino))
    }
}

// `stat`'s field types differ between architectures (64 bits on x86-64).
#[allow(clippy::unnecessary_cast)]
fn header(st: &Stat) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER);
    out.extend_from_slice(MAGIC);
    for n in [st.st_dev as u64, st.st_ino as u64, st.st_size as u64] {
        out.extend_from_slice(&n.to_be_bytes());
    }
    for (s, ns) in [
        (st.st_mtime as i64, st.st_mtime_nsec as u32),
        (st.st_ctime as i64, st.st_ctime_nsec as u32),
    ] {
        out.extend_from_slice(&s.to_be_bytes());
        out.extend_from_slice(&ns.to_be_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_signature_serves_until_the_file_changes() {
        let dir = tempfile::tempdir().unwrap();
        let cache = SignatureCache::new(dir.path().join("sigs"));
        let path = dir.path().join("f");
        let data: Vec<u8> = (0..3u32 << 20)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        std::fs::write(&path, &data).unwrap();
        let file = File::open(&path).unwrap();
        assert!(cache.load(&file).is_none());
        let sig = Signature::of(&data[..]).unwrap();
        cache.store(&file, &sig).unwrap();
        assert_eq!(cache.load(&file), Some(sig.clone()));
        // A signature of another length is refused.
        assert!(cache.store(&file, &Signature::default()).is_err());
        // Any change (here only the mode) changes the ctime: stale.
        std::thread::sleep(std::time::Duration::from_millis(20));
        let mut perms = file.metadata().unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o600);
        std::fs::set_permissions(&path, perms).unwrap();
        assert!(cache.load(&file).is_none());
        // A damaged entry is no entry.
        cache.store(&file, &sig).unwrap();
        let entry = std::fs::read_dir(dir.path().join("sigs"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let mut bytes = std::fs::read(&entry).unwrap();
        bytes.truncate(bytes.len() - 7);
        std::fs::write(&entry, &bytes).unwrap();
        assert!(cache.load(&file).is_none());
        cache.forget(&rustix::fs::fstat(&file).unwrap());
        assert!(!entry.exists());
    }
}
