//! What a command prints about a finished transfer: one human line on stderr, or
//! one JSON object on stdout with `--json`.

use serde_json::{json, Map, Value};
use zcopy::{Report, Rusage};

use zcopy::size::human;
use zcopy_wire::compress;
use zcopy_wire::delta::Counts;

/// A finished transfer: the engine's report, the whole job's wall time (with
/// headers and digests) and the resource usage measured around the job.
pub struct Summary<'a> {
    pub report: &'a Report,
    pub seconds: f64,
    pub usage: Rusage,
}

impl Summary<'_> {
    /// The `--json` object: `bytes seconds engine syscalls cpu_user_s cpu_sys_s
    /// ctx_switches` and the rest of the report (`engine_reason` when `auto` ordered
    /// its chain for the destination), plus `extra` fields of the command.
    pub fn json(&self, extra: Map<String, Value>) -> Value {
        let r = self.report;
        let syscalls: Map<String, Value> = r
            .syscalls
            .iter()
            .map(|(call, n)| (call.name().to_string(), n.into()))
            .collect();
        let skipped: Vec<Value> = r
            .skipped
            .iter()
            .map(|s| json!({ "engine": s.engine.name(), "reason": s.reason.to_string() }))
            .collect();
        let mut out = json!({
            "bytes": r.bytes,
            "seconds": self.seconds,
            "transfer_seconds": r.elapsed.as_secs_f64(),
            "engine": r.engine.name(),
            "skipped": skipped,
            "syscalls": syscalls,
            "syscalls_total": r.syscalls.total(),
            "cpu_user_s": self.usage.user.as_secs_f64(),
            "cpu_sys_s": self.usage.system.as_secs_f64(),
            "ctx_switches": self.usage.context_switches(),
            "voluntary_ctx_switches": self.usage.voluntary_switches,
            "involuntary_ctx_switches": self.usage.involuntary_switches,
            "minor_faults": self.usage.minor_faults,
            "major_faults": self.usage.major_faults,
        });
        let object = out.as_object_mut().expect("an object");
        if r.zerocopy.sends > 0 {
            object.insert(
                "zerocopy".into(),
                json!({
                    "sends": r.zerocopy.sends,
                    "completions": r.zerocopy.completions,
                    "copied": r.zerocopy.copied,
                }),
            );
        }
        if let Some(why) = &r.preference {
            object.insert("engine_reason".into(), format!("auto: {why}").into());
        }
        object.extend(extra);
        out
    }

    /// For `-v`: why `auto` tried its first engine first ("auto: sendfile first
    /// into a pipe: ..."), when the destination was known.
    pub fn engine_reason(&self) -> Option<String> {
        self.report
            .preference
            .as_ref()
            .map(|why| format!("auto: {why}"))
    }

    /// "1.0 GiB in 0.412 s (2.4 GiB/s) with sendfile [sendfile=2]", and what the
    /// kernel said of zero-copy sends, if any.
    pub fn line(&self) -> String {
        let r = self.report;
        let rate = if self.seconds > 0.0 {
            format!(" ({}/s)", human((r.bytes as f64 / self.seconds) as u64))
        } else {
            String::new()
        };
        let zerocopy = if r.zerocopy.sends > 0 {
            format!("; {}", r.zerocopy)
        } else {
            String::new()
        };
        format!(
            "{} in {:.3} s{rate} with {} [{}]{zerocopy}",
            human(r.bytes),
            self.seconds,
            r.engine,
            r.syscalls
        )
    }
}

/// What the files sent as deltas moved, for `--json` (`None` when there were
/// none); `cloned` and `signature_cached` (bytes of old versions whose signature
/// came from the cache) only where they are known (the receiver).
pub fn delta_json(counts: &Counts, cloned: bool) -> Option<Value> {
    if counts.literal + counts.referenced == 0 {
        return None;
    }
    let mut out = json!({ "literal": counts.literal, "referenced": counts.referenced });
    if cloned {
        out["cloned"] = counts.cloned.into();
        out["signature_cached"] = counts.cached.into();
    }
    Some(out)
}

/// The same for the summary line: "; delta: 1.1 MiB literal, 1023 MiB referenced
/// (1023 MiB cloned)", or nothing.
pub fn delta_words(counts: &Counts, cloned: bool) -> String {
    if counts.literal + counts.referenced == 0 {
        return String::new();
    }
    let cloned = if cloned && counts.cached > 0 {
        format!(
            " ({} cloned; signature of {} from the cache)",
            human(counts.cloned),
            human(counts.cached)
        )
    } else if cloned {
        format!(" ({} cloned)", human(counts.cloned))
    } else {
        String::new()
    };
    format!(
        "; delta: {} literal, {} referenced{cloned}",
        human(counts.literal),
        human(counts.referenced)
    )
}

/// What `-z` did, for `--json`: `tried` (bytes offered to zstd), `bytes` (of
/// those, the bytes that went compressed), `wire` (what those took on the wire),
/// `saved` (`bytes - wire`) and the zstd `levels` used (lowest, highest).
pub fn compressed_json(c: &compress::Counts) -> Value {
    let mut out = json!({
        "tried": c.tried,
        "bytes": c.packed,
        "wire": c.wire,
        "saved": c.saved(),
    });
    if let Some((lo, hi)) = c.levels {
        out["levels"] = json!([lo, hi]);
    }
    out
}

/// The same for the summary line: "; compressed: 190 MiB into 41 MiB (zstd 3..9)".
pub fn compressed_words(c: &compress::Counts) -> String {
    let levels = match c.levels {
        Some((lo, hi)) if lo == hi => format!(" (zstd {lo})"),
        Some((lo, hi)) => format!(" (zstd {lo}..{hi})"),
        None => String::new(),
    };
    format!(
        "; compressed: {} into {}{levels}",
        human(c.packed),
        human(c.wire)
    )
}
