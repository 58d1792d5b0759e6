//! `get`'s flags (curl's spellings, wget's `-c`) and the plain [`Config`] they
//! become: nothing below this module sees clap.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use base64ct::Encoding;
use zcopy::{Engine, EngineChoice};
use zcopy_http::client::{self, Download};

use crate::cmd::Usage;
use crate::flags;

/// Download files over HTTP/1.1 (http:// and https://), spliced from the socket into the file
///
/// With -v, the requests, the responses' status lines and the redirects on stderr.
#[derive(clap::Args)]
pub struct Args {
    /// What to download
    #[arg(required = true, value_name = "URL")]
    urls: Vec<String>,
    /// Save to FILE; repeated, as curl, for the URLs in order (those past the last -o are saved under their names)
    #[arg(short = 'o', long = "output", value_name = "FILE", conflicts_with_all = ["remote_name", "directory"])]
    outputs: Vec<PathBuf>,
    /// Save under the URL's last path segment in the current directory (the default)
    #[arg(short = 'O', long = "remote-name")]
    remote_name: bool,
    /// Save under the URL's last path segment in DIR
    #[arg(
        short = 'P',
        long = "directory-prefix",
        visible_alias = "output-dir",
        value_name = "DIR"
    )]
    directory: Option<PathBuf>,
    /// Make the directories -o and -P name when they are missing
    #[arg(long)]
    create_dirs: bool,
    /// Resume from the partial file an interrupted download left (Range + If-Range); `-C -` as curl's, `-c` as wget's
    #[arg(
        short = 'C',
        short_alias = 'c',
        long = "continue",
        visible_alias = "continue-at"
    )]
    resume: bool,
    /// Fetch one large file as N ranges over N connections, each spliced at its offset
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    segments: Option<u16>,
    /// Fetch the URLs at once, at most --parallel-max of them (curl's -Z); --parallel=N is the old spelling of --segments N
    #[arg(short = 'Z', long, value_name = "N", num_args = 0..=1, require_equals = true, default_missing_value = "")]
    parallel: Option<String>,
    /// How many URLs -Z fetches at once (curl's default 50, at most 300)
    #[arg(long, value_name = "N", default_value_t = 50)]
    parallel_max: u16,
    /// Follow redirects (always done, up to 10)
    #[arg(short = 'L', long)]
    location: bool,
    /// Fail on HTTP errors (always done: 4xx and 5xx exit 22 and save nothing)
    #[arg(short = 'f', long)]
    fail: bool,
    /// Print nothing, not even errors (unless -S)
    #[arg(short = 's', long)]
    silent: bool,
    /// With -s, still print errors
    #[arg(short = 'S', long)]
    show_error: bool,
    /// Add the header line 'NAME: VALUE' to every request; one named as a default (Host, User-Agent, Accept) replaces it, 'NAME:' removes it
    #[arg(short = 'H', long = "header", value_name = "'K: V'")]
    headers: Vec<String>,
    /// Basic authentication as USER:PASSWORD (not sent on where a redirect leads to another host or port)
    #[arg(short = 'u', long = "user", value_name = "USER:PASSWORD")]
    user: Option<String>,
    /// The User-Agent header
    #[arg(short = 'A', long = "user-agent", value_name = "AGENT")]
    user_agent: Option<String>,
    /// The Referer header
    #[arg(short = 'e', long = "referer", value_name = "URL")]
    referer: Option<String>,
    /// Go through PROXY ([http://][user:password@]host[:port]) instead of the environment's; "" for none
    #[arg(short = 'x', long = "proxy", value_name = "PROXY")]
    proxy: Option<String>,
    /// Hosts that go direct (as no_proxy: names, addresses, CIDR ranges, *), instead of the environment's
    #[arg(long, value_name = "LIST")]
    noproxy: Option<String>,
    /// Ask with HEAD and print the response heads on stdout (or into -o FILE); download nothing
    #[arg(short = 'I', long = "head")]
    head: bool,
    /// Download only the byte range RANGE (curl's: 0-499, 500-, -500) into the file
    #[arg(short = 'r', long = "range", value_name = "RANGE", value_parser = range, allow_hyphen_values = true)]
    range: Option<String>,
    /// Try a download that failed for a transient reason (refused, timeout, reset, 408, 429, 500, 502, 503, 504) N more times, resuming from what arrived
    #[arg(long, value_name = "N", default_value_t = 0)]
    retry: u32,
    /// Seconds between retries (default: 1, doubling each time, at most 600)
    #[arg(long, value_name = "S", value_parser = seconds)]
    retry_delay: Option<f64>,
    /// Retry only while fewer than S seconds have passed since the first attempt
    #[arg(long, value_name = "S", value_parser = seconds)]
    retry_max_time: Option<f64>,
    /// Retry refused connections (always done with --retry)
    #[arg(long)]
    retry_connrefused: bool,
    /// With --retry, retry after any failure, not only the transient ones
    #[arg(long)]
    retry_all_errors: bool,
    /// Set the file's modification time from Last-Modified (the default, as wget's)
    #[arg(short = 'R', long = "remote-time", overrides_with = "no_remote_time")]
    remote_time: bool,
    /// Leave the file's modification time at the time of the download
    #[arg(long)]
    no_remote_time: bool,
    /// Seconds to wait for a connection
    #[arg(long, value_name = "S", default_value_t = 10.0, value_parser = seconds)]
    connect_timeout: f64,
    /// Seconds the server may stay silent (no byte of head or body) before giving up
    #[arg(long, value_name = "S", default_value_t = 60.0, value_parser = seconds)]
    timeout: f64,
    #[command(flatten)]
    report: flags::Json,
    /// After each URL, print FORMAT on stdout with curl's %{http_code}, %{url_effective}, %{filename_effective}, %{size_download}, %{time_total}, %{speed_download}, %{exitcode}, %{errormsg}
    #[arg(short = 'w', long = "write-out", value_name = "FORMAT")]
    write_out: Option<String>,
    /// CA certificates (PEM) to verify https:// servers with, instead of the system's
    #[arg(long, value_name = "F")]
    cacert: Option<PathBuf>,
    /// Do not verify https:// certificates (the session is still encrypted)
    #[arg(short = 'k', long)]
    insecure: bool,
    /// At most RATE bytes per second (a SIZE: 500k, 10M), shared by --segments ranges
    #[arg(long, value_name = "RATE", value_parser = zcopy::size::parse)]
    limit_rate: Option<u64>,
    /// Engine for bodies with a length: auto (splice), splice, read-write
    #[arg(long, default_value = "auto")]
    engine: EngineChoice,
    #[command(flatten)]
    say: flags::Verbosity,
}

fn seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if s > 0.0 && s.is_finite() => Ok(s),
        _ => Err(format!("'{text}' is not a positive number of seconds")),
    }
}

/// curl's `-r` forms: `A-B`, `A-`, `-N`, and lists of them.
fn range(text: &str) -> Result<String, String> {
    let one = |r: &str| {
        r.split_once('-').is_some_and(|(a, b)| {
            let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
            digits(a) && digits(b) && !(a.is_empty() && b.is_empty())
        })
    };
    if text.split(',').all(one) {
        Ok(text.to_string())
    } else {
        Err(format!("'{text}' is not a range (0-499, 500-, -500)"))
    }
}

/// What a run of `get` does, decided from the flags: the downloads, what the
/// client does with each, and what is printed.
pub struct Config {
    pub downloads: Vec<Download>,
    pub client: client::Config,
    /// URLs fetched at once (1: one after the other).
    pub parallel: usize,
    pub json: bool,
    pub write_out: Option<String>,
    /// No progress and no "saved" lines.
    pub quiet: bool,
    /// Not even errors (`-s` without `-S`).
    pub no_errors: bool,
    pub verbose: bool,
}

/// curl's cap on `--parallel-max`.
const PARALLEL_MAX: u16 = 300;

impl Args {
    /// The config these flags ask for, or why they do not fit together.
    pub fn config(self) -> Result<Config> {
        let usage = |why: String| -> anyhow::Error { Usage(format!("get: {why}")).into() };
        let mut urls = self.urls;
        // `-C -` is curl's "resume from where the file ends"; clap reads the `-` as an
        // operand, and no URL is `-`.
        if self.resume {
            urls.retain(|u| u != "-");
        }
        let mut segments = self.segments;
        // `--parallel N` (and `--parallel=N`) used to mean what --segments N does.
        let parallel = self.parallel.is_some();
        if let Some(given) = self.parallel {
            let old = match given.as_str() {
                "" => urls
                    .iter()
                    .position(|u| !u.is_empty() && u.bytes().all(|b| b.is_ascii_digit()))
                    .map(|at| urls.remove(at)),
                n => Some(n.to_string()),
            };
            if let Some(n) = old {
                eprintln!("zcopy: get: --parallel {n} is now --segments {n} (--parallel, -Z, fetches several URLs at once, as curl's)");
                let n = n
                    .parse::<u16>()
                    .ok()
                    .filter(|n| (1..=64).contains(n))
                    .ok_or_else(|| usage(format!("--segments {n}: give 1 to 64")))?;
                segments = segments.or(Some(n));
            }
        }
        // curl's `-C OFFSET` would leave a file that is not the server's.
        if let Some(offset) = urls
            .iter()
            .find(|u| self.resume && !u.is_empty() && u.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(usage(format!(
                "-C {offset}: only -C - (resume where the partial file ends) is supported"
            )));
        }
        if urls.is_empty() {
            return Err(usage("no URL given".into()));
        }
        if self.outputs.len() > urls.len() {
            return Err(usage(format!(
                "{} -o for {} URLs: each -o names the file of one URL",
                self.outputs.len(),
                urls.len()
            )));
        }
        if self.report.json && self.outputs.iter().any(|o| o == std::path::Path::new("-")) {
            return Err(usage("--json and -o - would both write to stdout".into()));
        }
        if self.range.is_some() && self.resume {
            return Err(usage("-r and -C do not go together".into()));
        }
        let engine = match self.engine {
            EngineChoice::Only(e @ (Engine::Mmap | Engine::Sendfile | Engine::CopyFileRange)) => {
                return Err(usage(format!(
                    "engine {e} needs a file as source; use splice or read-write"
                )));
            }
            other => other,
        };
        let mut headers = Vec::new();
        for line in &self.headers {
            headers.push(header(line).ok_or_else(|| {
                usage(format!(
                    "-H '{line}': give 'NAME: VALUE' (or 'NAME:' to remove one)"
                ))
            })?);
        }
        if let Some(agent) = self.user_agent {
            headers.push(("User-Agent".into(), agent));
        }
        if let Some(referer) = self.referer {
            headers.push(("Referer".into(), referer));
        }
        if let Some(user) = self.user {
            // curl asks for the password on the terminal; a download tool run by
            // scripts says what is missing instead.
            if !user.contains(':') {
                return Err(usage(format!(
                    "-u {user}: give USER:PASSWORD (no password prompt)"
                )));
            }
            let basic = base64ct::Base64::encode_string(user.as_bytes());
            headers.push(("Authorization".into(), format!("Basic {basic}")));
        }
        // A line break in -A, -e or -u would end the header and start another.
        if let Some((name, _)) = headers.iter().find(|(_, v)| v.contains(['\r', '\n'])) {
            return Err(usage(format!("the {name} header cannot hold a line break")));
        }
        let parallel = if parallel {
            usize::from(self.parallel_max.clamp(1, PARALLEL_MAX))
        } else {
            1
        };
        let silent = self.silent || self.say.quiet;
        let downloads: Vec<Download> = urls
            .into_iter()
            .enumerate()
            .map(|(i, url)| Download {
                url,
                output: self.outputs.get(i).cloned(),
            })
            .collect();
        // Bars of several downloads at once would overwrite each other.
        let progress = !self.report.json && !silent && parallel.min(downloads.len()) == 1;
        let mut client = client::Config::default();
        client.directory = self.directory;
        client.create_dirs = self.create_dirs;
        client.resume = self.resume;
        client.segments = segments.unwrap_or(1);
        client.headers = headers;
        client.proxy = self.proxy;
        client.noproxy = self.noproxy;
        client.head_only = self.head;
        client.range = self.range;
        client.retries = self.retry;
        client.retry_delay = self.retry_delay.map(Duration::from_secs_f64);
        client.retry_max_time = self.retry_max_time.map(Duration::from_secs_f64);
        client.retry_all_errors = self.retry_all_errors;
        client.remote_time = !self.no_remote_time;
        client.connect_timeout = Duration::from_secs_f64(self.connect_timeout);
        client.timeout = Duration::from_secs_f64(self.timeout);
        client.cacert = self.cacert;
        client.insecure = self.insecure;
        client.limit_rate = self.limit_rate;
        client.engine = engine;
        client.progress = progress;
        Ok(Config {
            downloads,
            client,
            parallel,
            json: self.report.json,
            write_out: self.write_out,
            quiet: silent,
            no_errors: self.silent && !self.show_error,
            verbose: self.say.verbose(),
        })
    }
}

/// `NAME: VALUE` (or `NAME:`, which removes a default header) as curl's `-H` takes it.
fn header(line: &str) -> Option<(String, String)> {
    let (name, value) = line.split_once(':')?;
    let name = name.trim();
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(token) || value.contains(['\r', '\n']) {
        return None;
    }
    Some((name.to_string(), value.trim().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_and_ranges() {
        assert_eq!(header("Host: h:1"), Some(("Host".into(), "h:1".into())));
        assert_eq!(header("Accept:"), Some(("Accept".into(), String::new())));
        assert_eq!(header("no colon"), None);
        assert_eq!(header("Bad Name: x"), None);
        assert!(range("0-499").is_ok() && range("500-").is_ok() && range("-5,7-9").is_ok());
        assert!(range("-").is_err() && range("a-b").is_err() && range("5").is_err());
    }
}
