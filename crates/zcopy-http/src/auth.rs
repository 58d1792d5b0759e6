//! Who may upload (`serve --upload --auth-file F`): HTTP Basic credentials checked
//! against argon2 or bcrypt hashes.
//!
//! The file has one `USER:HASH` line per user, HASH an argon2 PHC string
//! (`$argon2id$v=19$m=19456,t=2,p=1$SALT$HASH`, as `argon2 SALT -id -e` and
//! `zcopy serve --hash-password` print it) or a bcrypt one (`$2y$05$…`, as
//! `htpasswd -B` writes it for nginx and Apache, or `$2b$`, `$2a$`);
//! blank lines and lines starting with `#` are skipped. A hash takes tens of
//! milliseconds to check, on purpose, and a server cannot spend that per request:
//! the verdict on each `Authorization` value is remembered, so a client pays once
//! per server run, and a wrong guess is not checked twice.
//!
//! Failures are logged and limited per client address: after `FAILURES_MAX` in
//! `FAILURE_WINDOW`, that address's new guesses are refused without a hash check
//! until the window ends, so a guesser can neither try passwords quickly nor keep
//! the server busy hashing them.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::{Argon2, PasswordHash, PasswordVerifier};
use base64ct::{Base64, Encoding};

/// The most `Authorization` values remembered; past it the memory starts afresh.
const REMEMBERED_MAX: usize = 4096;

/// Failed logins one address may make per window before its guesses are refused
/// unchecked.
const FAILURES_MAX: u32 = 10;
/// The window of `FAILURES_MAX`, from an address's first failure in it.
const FAILURE_WINDOW: Duration = Duration::from_secs(60);

/// The users of an auth file, and the verdicts reached so far.
pub struct Credentials {
    /// User name → argon2 PHC string or bcrypt hash.
    users: HashMap<String, String>,
    /// `Authorization` header value → whether it admits its sender.
    verdicts: Mutex<HashMap<String, bool>>,
    /// Client address → failures in the current window and when the window began.
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl Credentials {
    /// Reads `path`; an error names the file and the line.
    pub fn load(path: &Path) -> std::io::Result<Credentials> {
        let bad = |why: String| Err(std::io::Error::new(std::io::ErrorKind::InvalidData, why));
        let text = std::fs::read_to_string(path).map_err(|e| {
            std::io::Error::new(e.kind(), format!("cannot read {}: {e}", path.display()))
        })?;
        let mut users = HashMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let at = format!("{}:{}", path.display(), n + 1);
            let Some((user, hash)) = line.split_once(':') else {
                return bad(format!("{at}: expected USER:HASH"));
            };
            if is_bcrypt(hash) {
                if let Err(e) = hash.parse::<bcrypt::HashParts>() {
                    return bad(format!("{at}: not a bcrypt hash ({e})"));
                }
            } else if !hash.starts_with("$argon2") {
                return bad(format!("{at}: not an argon2 or bcrypt hash"));
            } else if let Err(e) = PasswordHash::new(hash) {
                return bad(format!("{at}: not an argon2 hash in PHC form ({e})"));
            }
            users.insert(user.to_string(), hash.to_string());
        }
        if users.is_empty() {
            return bad(format!("{}: no USER:HASH line", path.display()));
        }
        Ok(Credentials {
            users,
            verdicts: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
        })
    }

    /// Whether a request from `peer` with this `Authorization` header may upload.
    pub fn admits(&self, authorization: Option<&str>, peer: IpAddr) -> bool {
        let Some(value) = authorization else {
            return false;
        };
        let known = self.verdicts().get(value).copied();
        if known == Some(true) {
            return true;
        }
        if self.limited(peer) {
            return false;
        }
        let verdict = known.unwrap_or_else(|| {
            let verdict = self.check(value);
            let mut verdicts = self.verdicts();
            if verdicts.len() >= REMEMBERED_MAX {
                verdicts.clear();
            }
            verdicts.insert(value.to_string(), verdict);
            verdict
        });
        if !verdict {
            self.failed(peer);
        }
        verdict
    }

    /// Whether `peer` used up its failures in the current window.
    fn limited(&self, peer: IpAddr) -> bool {
        let failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        failures
            .get(&peer)
            .is_some_and(|&(n, since)| n >= FAILURES_MAX && since.elapsed() < FAILURE_WINDOW)
    }

    fn failed(&self, peer: IpAddr) {
        let mut failures = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        // Addresses whose window ended are forgotten, so the map stays small.
        failures.retain(|_, (_, since)| since.elapsed() < FAILURE_WINDOW);
        let entry = failures.entry(peer).or_insert((0, Instant::now()));
        entry.0 += 1;
        if entry.0 == FAILURES_MAX {
            tracing::warn!(
                "{peer}: {FAILURES_MAX} failed upload logins; its logins are refused unchecked for {} s",
                FAILURE_WINDOW.as_secs()
            );
        } else if entry.0 < FAILURES_MAX {
            tracing::warn!("{peer}: upload login failed");
        }
    }

    fn verdicts(&self) -> std::sync::MutexGuard<'_, HashMap<String, bool>> {
        self.verdicts.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn check(&self, value: &str) -> bool {
        let Some(encoded) = value
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
            .map(|(_, rest)| rest.trim())
        else {
            return false;
        };
        let Some(decoded) = Base64::decode_vec(encoded)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
        else {
            return false;
        };
        let Some((user, password)) = decoded.split_once(':') else {
            return false;
        };
        let Some(hash) = self.users.get(user) else {
            return false;
        };
        if is_bcrypt(hash) {
            return bcrypt::verify(password, hash).unwrap_or(false);
        }
        PasswordHash::new(hash).is_ok_and(|hash| {
            Argon2::default()
                .verify_password(password.as_bytes(), &hash)
                .is_ok()
        })
    }
}

/// bcrypt's prefixes: `$2y$` (htpasswd), `$2b$` (OpenBSD, Python), `$2a$` (older).
fn is_bcrypt(hash: &str) -> bool {
    ["$2y$", "$2b$", "$2a$"].iter().any(|p| hash.starts_with(p))
}

/// An argon2id hash of `password` with a fresh random salt, in PHC form: what an
/// `--auth-file` line takes after `USER:` (`zcopy serve --hash-password`).
pub fn hash_password(password: &[u8]) -> std::io::Result<String> {
    let mut salt = [0u8; 16];
    let mut filled = 0;
    while filled < salt.len() {
        match rustix::rand::getrandom(&mut salt[filled..], rustix::rand::GetRandomFlags::empty()) {
            Ok(n) => filled += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let salt = SaltString::encode_b64(&salt).map_err(|e| std::io::Error::other(e.to_string()))?;
    Argon2::default()
        .hash_password(password, &salt)
        .map(|h| h.to_string())
        .map_err(|e| std::io::Error::other(e.to_string()))
}

/// The user a Basic `Authorization` value names, whether or not its password is
/// right (the access log's `$remote_user`, as nginx logs it).
pub fn basic_user(authorization: &str) -> Option<String> {
    let (scheme, encoded) = authorization.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(Base64::decode_vec(encoded.trim()).ok()?).ok()?;
    decoded.split_once(':').map(|(user, _)| user.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bcrypt_lines_and_new_hashes() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("users");
        // `htpasswd -nbB -C 5 ann s3cret`, and its $2b$ spelling.
        let y = "$2y$05$Ztl3RAdYKip8ASedzpek7.qP/M8vVKXx/a4mrZ9WU.RpnwzSZ7Gka";
        let b = y.replacen("$2y$", "$2b$", 1);
        let made = hash_password(b"pa:ss").unwrap();
        assert!(made.starts_with("$argon2id$"), "{made}");
        assert_ne!(
            made,
            hash_password(b"pa:ss").unwrap(),
            "a fresh salt each time"
        );
        std::fs::write(&file, format!("ann:{y}\nbob:{b}\ncy:{made}\n")).unwrap();
        let creds = Credentials::load(&file).unwrap();
        let ip = IpAddr::from([192, 0, 2, 1]);
        // "ann:s3cret", "bob:s3cret", "cy:pa:ss", "ann:wrong"
        assert!(creds.admits(Some("Basic YW5uOnMzY3JldA=="), ip));
        assert!(creds.admits(Some("Basic Ym9iOnMzY3JldA=="), ip));
        assert!(creds.admits(Some("Basic Y3k6cGE6c3M="), ip));
        assert!(!creds.admits(Some("Basic YW5uOndyb25n"), ip));
        assert_eq!(basic_user("Basic YW5uOndyb25n").as_deref(), Some("ann"));
        assert_eq!(basic_user("Bearer YW5uOndyb25n"), None);
        assert_eq!(basic_user("Basic YW5uOndyb25"), None, "not padded base64");
    }

    #[test]
    fn basic_credentials_against_argon2() {
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let hash = Argon2::default()
            .hash_password(b"s3cret", &salt)
            .unwrap()
            .to_string();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("users");
        std::fs::write(&file, format!("# uploaders\n\nann:{hash}\n")).unwrap();
        let creds = Credentials::load(&file).unwrap();
        let ann = IpAddr::from([192, 0, 2, 1]);
        // "ann:s3cret", "ann:wrong", "bob:s3cret"
        assert!(creds.admits(Some("Basic YW5uOnMzY3JldA=="), ann));
        assert!(creds.admits(Some("basic YW5uOnMzY3JldA=="), ann));
        assert!(!creds.admits(Some("Basic YW5uOndyb25n"), ann));
        assert!(!creds.admits(Some("Basic Ym9iOnMzY3JldA=="), ann));
        assert!(!creds.admits(Some("Bearer YW5uOnMzY3JldA=="), ann));
        assert!(!creds.admits(Some("Basic !!!"), ann));
        assert!(!creds.admits(None, ann));
        // Remembered: a second ask does not hash again.
        assert_eq!(creds.verdicts().get("Basic YW5uOnMzY3JldA=="), Some(&true));

        // Past FAILURES_MAX failures an address's guesses are refused unchecked, the
        // right password from it too (unless already known good), others unaffected.
        let eve = IpAddr::from([192, 0, 2, 66]);
        for _ in 0..FAILURES_MAX {
            assert!(!creds.admits(Some("Basic YW5uOndyb25n"), eve));
        }
        assert!(creds.limited(eve));
        assert!(!creds.admits(Some("Basic YW5uOnMzY3JldDI="), eve));
        assert!(creds.admits(Some("Basic YW5uOnMzY3JldA=="), eve));
        assert!(!creds.limited(ann));

        std::fs::write(&file, "ann:plaintext\n").unwrap();
        let err = Credentials::load(&file).err().unwrap().to_string();
        assert!(err.contains(":1: not an argon2 or bcrypt hash"), "{err}");
        std::fs::write(&file, "ann:$2y$05$short\n").unwrap();
        let err = Credentials::load(&file).err().unwrap().to_string();
        assert!(err.contains(":1: not a bcrypt hash"), "{err}");
        std::fs::write(&file, "# nobody\n").unwrap();
        assert!(Credentials::load(&file).is_err());
    }
}
