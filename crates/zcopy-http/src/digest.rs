//! `Repr-Digest` and `Content-Digest` (RFC 9530): the SHA-256 or SHA-512 of a file,
//! as the header carries it (`sha-256=:BASE64:`), and the server's cache of them.
//!
//! A server cannot hash a file per request (a gigabyte costs half a second of a
//! core), so `serve` hashes each file version once, keyed by device, inode, size and
//! modification time, and sends the header only once the digest is known: small
//! files are hashed before their first answer, large ones on a helper thread while
//! the first answers go without it.

use std::collections::HashMap;
use std::fs::{File, Metadata};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64ct::{Base64, Encoding};
use sha2::{Digest, Sha256, Sha512};

/// Files up to this size are hashed before their first answer (under a millisecond
/// with the SHA extensions).
const HASH_INLINE: u64 = 1 << 20;
/// Helper threads hashing at once; a file asked for while they are busy is hashed
/// on a later request.
const HASHERS: usize = 2;

/// The algorithms `get` can check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    /// The name in a digest header.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha-256",
            Algorithm::Sha512 => "sha-512",
        }
    }
}

/// The digest of bytes `0..len` of `file`, read with `pread` (the file's offset,
/// which a server may share, is left alone).
pub fn of_file(file: &File, len: u64, algorithm: Algorithm) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; 1 << 20];
    let mut sha256 = Sha256::new();
    let mut sha512 = Sha512::new();
    let mut at = 0;
    while at < len {
        let want = usize::try_from(len - at)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let n = file.read_at(&mut buf[..want], at)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("the file ended at {at} of {len} bytes"),
            ));
        }
        match algorithm {
            Algorithm::Sha256 => sha256.update(&buf[..n]),
            Algorithm::Sha512 => sha512.update(&buf[..n]),
        }
        at += n as u64;
    }
    Ok(match algorithm {
        Algorithm::Sha256 => sha256.finalize().to_vec(),
        Algorithm::Sha512 => sha512.finalize().to_vec(),
    })
}

/// A header value for one digest: `sha-256=:BASE64:` (a structured-field byte
/// sequence).
pub fn header_value(algorithm: Algorithm, digest: &[u8]) -> String {
    format!("{}=:{}:", algorithm.name(), Base64::encode_string(digest))
}

/// The digests in a `Repr-Digest` or `Content-Digest` value that `get` can check,
/// as (algorithm, base64 text); other algorithms are ignored, as the RFC asks.
pub fn parse(value: &str) -> Vec<(Algorithm, String)> {
    value
        .split(',')
        .filter_map(|member| {
            let (name, rest) = member.trim().split_once('=')?;
            let algorithm = match name.trim() {
                "sha-256" => Algorithm::Sha256,
                "sha-512" => Algorithm::Sha512,
                _ => return None,
            };
            // Parameters (`;x=y`) would follow the closing colon.
            let encoded = rest.trim().strip_prefix(':')?.split(':').next()?;
            Some((algorithm, encoded.to_string()))
        })
        .collect()
}

/// What identifies a version of a file: device, inode, size, modification time.
type Version = (u64, u64, u64, i64, i64);

fn version(meta: &Metadata) -> Version {
    (
        meta.dev(),
        meta.ino(),
        meta.len(),
        meta.mtime(),
        meta.mtime_nsec(),
    )
}

/// The server's digests, one per file version, shared by every worker.
#[derive(Default)]
pub struct Cache {
    known: Arc<Mutex<HashMap<Version, Option<Arc<str>>>>>,
    hashing: Arc<AtomicUsize>,
}

/// The most file versions remembered; past it the cache starts afresh.
const CACHE_MAX: usize = 65_536;

impl Cache {
    /// The `Repr-Digest` value for `file` as `meta` describes it, if known now.
    /// Starts hashing a file seen for the first time: before returning if it is
    /// small, on a helper thread otherwise.
    pub fn repr_digest(&self, file: &File, meta: &Metadata) -> Option<Arc<str>> {
        let key = version(meta);
        {
            let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
            match known.get(&key) {
                Some(value) => return value.clone(),
                None if meta.len() <= HASH_INLINE => {}
                None => {
                    if self.hashing.load(Ordering::Relaxed) >= HASHERS {
                        return None;
                    }
                    // A placeholder, so that one thread hashes each version.
                    known.insert(key, None);
                }
            }
        }
        if meta.len() <= HASH_INLINE {
            let value = hash(file, meta)?;
            self.remember(key, Some(value.clone()));
            return Some(value);
        }
        let Ok(file) = file.try_clone() else {
            self.forget(key);
            return None;
        };
        let meta = meta.clone();
        let cache = Cache {
            known: self.known.clone(),
            hashing: self.hashing.clone(),
        };
        self.hashing.fetch_add(1, Ordering::Relaxed);
        std::thread::spawn(move || {
            match hash(&file, &meta) {
                Some(value) => cache.remember(key, Some(value)),
                None => cache.forget(key),
            }
            cache.hashing.fetch_sub(1, Ordering::Relaxed);
        });
        None
    }

    fn remember(&self, key: Version, value: Option<Arc<str>>) {
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        if known.len() >= CACHE_MAX {
            known.clear();
        }
        known.insert(key, value);
    }

    fn forget(&self, key: Version) {
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        known.remove(&key);
    }
}

/// The header value for `file`, or `None` if it changed while it was read (the
/// digest would belong to no version).
fn hash(file: &File, meta: &Metadata) -> Option<Arc<str>> {
    let digest = of_file(file, meta.len(), Algorithm::Sha256).ok()?;
    let after = file.metadata().ok()?;
    (version(&after) == version(meta)).then(|| header_value(Algorithm::Sha256, &digest).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers() {
        // RFC 9530's example: the SHA-256 of `{"hello": "world"}\n`.
        let digest = Sha256::digest(b"{\"hello\": \"world\"}\n");
        assert_eq!(
            header_value(Algorithm::Sha256, &digest),
            "sha-256=:RK/0qy18MlBSVnWgjwz6lZEWjP/lF5HF9bvEF8FabDg=:"
        );
        let parsed = parse("unixsum=:AAA=:, sha-512=:YWJj:;x=1 , sha-256=:Zm9v:, md5=x");
        assert_eq!(
            parsed,
            vec![
                (Algorithm::Sha512, "YWJj".to_string()),
                (Algorithm::Sha256, "Zm9v".to_string())
            ]
        );
        assert!(parse("sha-256=Zm9v").is_empty());
    }
}
