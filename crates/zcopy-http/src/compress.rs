//! On-the-fly compression of text-like files (HTML, CSS, JavaScript, JSON, XML,
//! SVG, WebAssembly …) for a client whose `Accept-Encoding` takes `zstd` or `gzip`
//! (q-values honoured; an equal q prefers zstd, which decodes faster), when the file
//! has no precompressed sibling and its size is from [`MIN_SIZE`] to [`MAX_SIZE`].
//!
//! A file is compressed once per version and coding, when a worker first sends it
//! so, and the coded bytes are kept in the open-file cache beside its head (nginx's
//! `gzip on` compresses again for every response; the cache holds at most
//! [`BUDGET`] bytes of coded bodies per worker). A coded response goes out from
//! memory with its head in one `send`, has its own ETag (the file's with `-zstd` or
//! `-gzip`, as nginx and Apache mark theirs) and `Vary: Accept-Encoding`, as every
//! response for such a file does. A `Range` request gets the identity bytes: ranges
//! of a coding made on the fly would not survive a recompression.
//!
//! zstd at level 3 (its default) and gzip at level 6 (gzip's own default: the
//! result is kept, so the better ratio is paid once); gzip through flate2.

use std::io::Write;

/// The smallest file compressed: below it, the coding's frame and headers eat
/// the gain (nginx's `gzip_min_length` is 20 bytes; 1 KiB is Caddy's and
/// Cloudflare's rule of thumb).
pub const MIN_SIZE: u64 = 1024;
/// The largest file compressed; a larger one goes as it is, by sendfile (give it a
/// precompressed sibling).
pub const MAX_SIZE: u64 = 8 << 20;
/// The coded bytes a worker keeps, at most; past it the open-file cache starts again.
pub const BUDGET: usize = 64 << 20;

/// A coding made on the fly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Coding {
    Zstd,
    Gzip,
}

impl Coding {
    /// The `Content-Encoding` token, and the ETag's suffix.
    pub fn token(self) -> &'static str {
        match self {
            Coding::Zstd => "zstd",
            Coding::Gzip => "gzip",
        }
    }

    /// Its index in a per-coding table.
    pub fn index(self) -> usize {
        match self {
            Coding::Zstd => 0,
            Coding::Gzip => 1,
        }
    }

    /// `bytes` in this coding.
    pub fn encode(self, bytes: &[u8]) -> std::io::Result<Vec<u8>> {
        match self {
            Coding::Zstd => zstd::bulk::compress(bytes, 3),
            Coding::Gzip => {
                let out = Vec::with_capacity(bytes.len() / 3);
                let mut encoder = flate2::write::GzEncoder::new(out, flate2::Compression::new(6));
                encoder.write_all(bytes)?;
                encoder.finish()
            }
        }
    }
}

/// Whether a MIME type is worth compressing: text, and the structured text and
/// code formats served as `application/` or `image/` types.
pub fn compressible(mime: &str) -> bool {
    let mime = mime.split(';').next().unwrap_or_default().trim();
    mime.starts_with("text/")
        || mime.ends_with("+xml")
        || mime.ends_with("+json")
        || matches!(
            mime,
            "application/json"
                | "application/javascript"
                | "application/x-javascript"
                | "application/xml"
                | "application/wasm"
                | "application/x-sh"
                | "application/x-yaml"
                | "application/yaml"
                | "application/toml"
                | "application/sql"
                | "application/x-ndjson"
                | "image/svg+xml"
                | "image/x-icon"
                | "image/bmp"
                | "font/ttf"
                | "font/otf"
        )
}

/// The coding an `Accept-Encoding` value prefers among zstd and gzip: the higher
/// q (a coding not named takes `*`'s), zstd on a tie; `None` when both are
/// refused (`q=0`) or not accepted.
pub fn choose(header: &str) -> Option<Coding> {
    let mut q = [None::<f32>; 2];
    let mut star = None;
    for item in header.split(',') {
        let mut params = item.split(';');
        let name = params.next().unwrap_or_default().trim();
        let weight = params
            .find_map(|p| p.trim().strip_prefix("q="))
            .map_or(Some(1.0), |q| q.trim().parse::<f32>().ok())
            .unwrap_or(0.0);
        if name.eq_ignore_ascii_case("zstd") {
            q[Coding::Zstd.index()] = Some(weight);
        } else if name.eq_ignore_ascii_case("gzip") || name.eq_ignore_ascii_case("x-gzip") {
            q[Coding::Gzip.index()] = Some(weight);
        } else if name == "*" {
            star = Some(weight);
        }
    }
    let zstd = q[0].or(star).unwrap_or(0.0);
    let gzip = q[1].or(star).unwrap_or(0.0);
    match (zstd, gzip) {
        (z, g) if z > 0.0 && z >= g => Some(Coding::Zstd),
        (_, g) if g > 0.0 => Some(Coding::Gzip),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q_values_pick_the_coding() {
        assert_eq!(choose("gzip, deflate, br, zstd"), Some(Coding::Zstd));
        assert_eq!(choose("gzip, deflate, br"), Some(Coding::Gzip));
        assert_eq!(choose("zstd;q=0.5, gzip"), Some(Coding::Gzip));
        assert_eq!(choose("zstd;q=0, gzip;q=0"), None);
        assert_eq!(choose("br, deflate"), None);
        assert_eq!(choose("identity"), None);
        assert_eq!(choose("*"), Some(Coding::Zstd));
        assert_eq!(choose("*;q=0.2, gzip;q=0.9"), Some(Coding::Gzip));
        assert_eq!(choose("gzip;q=0, *"), Some(Coding::Zstd));
        assert_eq!(choose("zstd;q=0, *"), Some(Coding::Gzip));
        assert_eq!(choose("GZIP ; q=0.8"), Some(Coding::Gzip));
        assert_eq!(choose("gzip;q=nonsense"), None);
    }

    #[test]
    fn text_like_types_are_compressed() {
        for yes in [
            "text/html; charset=utf-8",
            "application/json",
            "application/javascript",
            "image/svg+xml",
            "application/atom+xml",
            "application/ld+json",
        ] {
            assert!(compressible(yes), "{yes}");
        }
        for no in [
            "image/png",
            "application/zip",
            "video/mp4",
            "application/octet-stream",
        ] {
            assert!(!compressible(no), "{no}");
        }
    }

    #[test]
    fn codings_decode_back() {
        let text = "a readable page, again and again\n".repeat(100);
        let zstd = Coding::Zstd.encode(text.as_bytes()).unwrap();
        assert_eq!(
            zstd::bulk::decompress(&zstd, text.len()).unwrap(),
            text.as_bytes()
        );
        let gzip = Coding::Gzip.encode(text.as_bytes()).unwrap();
        let mut back = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gzip[..]), &mut back)
            .unwrap();
        assert_eq!(back, text);
        assert!(gzip.len() < text.len() / 10 && zstd.len() < text.len() / 10);
    }
}
