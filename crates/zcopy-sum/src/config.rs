//! What a run is to do, whoever asked: the flags of every front end (`zcopy
//! scan`, xxhsum, b3sum, sha256sum and its siblings) end up in one [`Config`],
//! and its [`Voice`] picks the words, the check-line rules and the verdicts.

use std::ffi::OsString;

use zcopy::{ScanChoice, ScanEngine};

use crate::digest::{Digest, Xof};

/// Whose conventions the command follows: its words, the check lines it accepts,
/// what it calls standard input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Voice {
    /// `zcopy scan`: GNU's check output, every digest's lines, `zcopy:` prefix.
    Zcopy,
    /// xxhsum 0.8.2 (also as xxh32sum, xxh64sum, xxh128sum, xxh3sum).
    Xxhsum,
    /// b3sum 1.8.
    B3sum,
    /// GNU coreutils' sha256sum.
    Gnu,
}

/// The engine a calibration measured fastest for a regular file of the given size,
/// and why; `None` where `auto`'s defaults apply.
pub type Calibration = fn(u64) -> Option<(ScanEngine, String)>;

/// What to do, whoever asked: the flags of every front end end up here.
#[non_exhaustive]
pub struct Config {
    /// Whose words, rules and exit verdicts.
    pub voice: Voice,
    /// The prefix of messages (`zcopy`, `sha256sum`, ...).
    pub prog: String,
    /// The files to hash, or the check files to read; none or `-` is standard input.
    pub files: Vec<OsString>,
    /// The digest to compute.
    pub digest: Digest,
    /// The digests check lines may hold; empty for any.
    pub accepts: Vec<Digest>,
    /// zcopy's `--digest` with `-c`: how untagged lines are read.
    pub untagged_as: Option<Digest>,
    /// Read the files as check files and verify the digests they list.
    pub check: bool,
    /// xxhsum `--filelist`: FILEs list the files to hash.
    pub file_list: bool,
    /// BSD-style lines, `TAG (name) = hex`, for every digest.
    pub tag: bool,
    /// Digests in little-endian byte order (xxhsum's `XXH64_LE`).
    pub little_endian: bool,
    /// `hex *name`: GNU's binary-mode marker.
    pub binary: bool,
    /// NUL-terminated lines, names unescaped (GNU `-z`).
    pub zero: bool,
    /// The digests only, without names.
    pub no_names: bool,
    /// The digest's raw bytes, not hex.
    pub raw: bool,
    /// BLAKE3 set up keyed or deriving a key, instead of plain.
    pub blake3: Option<Box<blake3::Hasher>>,
    /// The BLAKE3 key came on standard input, which cannot then be hashed.
    pub key_from_stdin: bool,
    /// Which of BLAKE3's output bytes to print.
    pub xof: Xof,
    /// When checking, no OK lines; otherwise, no notes.
    pub quiet: bool,
    /// When checking, nothing printed: the verdict says whether all matched.
    pub status: bool,
    /// When checking, an improperly formatted line fails the check file.
    pub strict: bool,
    /// When checking, say which lines are improperly formatted.
    pub warn: bool,
    /// When checking, skip listed files that do not exist.
    pub ignore_missing: bool,
    /// How to read the files.
    pub engine: ScanChoice,
    /// The buffer size of the read and direct engines.
    pub buffer: usize,
    /// Say on the diagnostics stream which engine read each file, and why.
    pub verbose: bool,
    /// Where `auto` learns the engine a calibration found fastest.
    pub calibration: Option<Calibration>,
}

impl Config {
    /// A config with every flag off, for a front end to fill in.
    pub fn new(voice: Voice, prog: &str, digest: Digest) -> Config {
        Config {
            voice,
            prog: prog.to_string(),
            files: Vec::new(),
            digest,
            accepts: Vec::new(),
            untagged_as: None,
            check: false,
            file_list: false,
            tag: false,
            little_endian: false,
            binary: false,
            zero: false,
            no_names: false,
            raw: false,
            blake3: None,
            key_from_stdin: false,
            xof: Xof::DEFAULT,
            quiet: false,
            status: false,
            strict: false,
            warn: false,
            ignore_missing: false,
            engine: ScanChoice::Auto,
            buffer: 4 << 20,
            verbose: false,
            calibration: None,
        }
    }
}
