//! `zcopy bench` on a small file: the table (80 columns unless `--wide`), a JSON
//! document that parses with a row per job and engine, an SVG with a bar for every
//! row, an HTML page a browser renders, claims that do not flip between two runs,
//! peers beside zcopy, a calibration profile that `scan` cites, and arguments and
//! output paths refused before anything runs.

mod common;

use std::path::Path;

use common::{have, zcopy};

#[test]
fn bench_writes_table_json_and_svg() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bench.json");
    let svg = dir.path().join("bench.svg");
    let o = zcopy()
        .args([
            "bench", "--size", "2MiB", "--repeat", "2", "--budget", "2", "--dir",
        ])
        .arg(dir.path())
        .arg("--json")
        .arg(&json)
        .arg("--svg")
        .arg(&svg)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(table.contains("seed Client (read-write, 1 KiB)"), "{table}");
    assert!(
        table.contains("the seeds' claims on this machine"),
        "{table}"
    );
    // Written whole beside its name, then given a new file's mode (not the temp's 0600).
    let made = dir.path().join("made-here");
    std::fs::write(&made, b"").unwrap();
    let mode = |p: &std::path::Path| {
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p).unwrap().permissions())
    };
    assert_eq!(mode(&json), mode(&made));
    // Not a terminal and no $COLUMNS: the default view fits 80 columns.
    for line in table.lines() {
        assert!(line.chars().count() <= 80, "wider than 80: {line}");
    }

    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    for key in [
        "kernel",
        "cpu",
        "cores",
        "file_system",
        "file_size",
        "page_cache",
    ] {
        assert!(
            doc["environment"].get(key).is_some(),
            "environment lacks {key}"
        );
    }
    let rows = doc["rows"].as_array().unwrap();
    let pairs: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            (
                r["job"].as_str().unwrap().to_string(),
                r["engine"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for (job, engine) in [
        ("send", "sendfile"),
        ("send", "read-write"),
        ("send", "mmap"),
        ("send", "splice"),
        ("recv", "splice"),
        ("echo", "read-write"),
        ("cp", "copy-file-range"),
        ("scan", "mmap"),
        ("scan", "direct"),
        ("small", "sendfile"),
        ("send", "io-uring"),
        ("recv", "io-uring"),
        ("send", "msg-zerocopy"),
        ("serve", "io-uring"),
    ] {
        assert!(
            pairs.contains(&(job.to_string(), engine.to_string())),
            "no row {job}/{engine}: {pairs:?}"
        );
    }
    for r in rows {
        assert!(r["throughput_bytes_per_s"].as_f64().unwrap() > 0.0);
        // --repeat samples, and more for the rows that decide a claim.
        let samples = r["throughput_samples"].as_array().unwrap().len();
        assert!(samples >= 2, "{r}");
        assert_eq!(r["samples"], samples);
        assert!(r["syscalls_per_gib"].as_f64().unwrap() > 0.0);
        assert!(r["model"].get("note").is_some());
        assert!(
            r.get("skb_copy_bytes").is_some(),
            "a number, or null when it cannot be sampled"
        );
    }

    // The zero-copy rows say what the kernel reported: on loopback, every send copied.
    let zerocopy: Vec<_> = rows.iter().filter(|r| !r["zerocopy"].is_null()).collect();
    assert!(zerocopy.len() >= 3, "MSG_ZEROCOPY ×2 and SEND_ZC rows");
    for r in zerocopy {
        let zc = &r["zerocopy"];
        assert!(zc["sends"].as_u64().unwrap() > 0);
        assert_eq!(zc["completions"], zc["sends"], "{r}");
        assert_eq!(zc["copied"], zc["completions"], "{r}");
        let check = r["check"].as_str().unwrap();
        let words = format!(
            "0 CPU copies on a NIC that supports it; on this path the kernel reported {} of {} copied",
            zc["copied"], zc["completions"]
        );
        assert!(check.contains(&words), "{check}");
    }

    let svg = std::fs::read_to_string(&svg).unwrap();
    assert!(svg.starts_with("<svg"), "not an SVG");
    assert!(svg.contains("throughput (MiB/s)"));
    for r in rows {
        let label = format!(
            "{}: {}",
            r["job"].as_str().unwrap(),
            r["label"].as_str().unwrap()
        );
        assert!(svg.contains(&label), "the chart lacks the series {label}");
    }
    assert_eq!(
        svg.matches("<rect").count(),
        2 * rows.len() + 1,
        "a bar per row in each panel, and the background"
    );
}

#[test]
fn bench_filters_rows_and_refuses_unknown_names() {
    let dir = tempfile::tempdir().unwrap();
    let o = zcopy()
        .args([
            "bench",
            "--size",
            "1MiB",
            "--repeat",
            "1",
            "--jobs",
            "cp",
            "--engines",
            "sendfile",
            "--dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(o.status.success());
    let table = String::from_utf8_lossy(&o.stdout);
    let rows: Vec<&str> = table.lines().filter(|l| l.starts_with("cp ")).collect();
    assert_eq!(rows.len(), 1, "{table}");
    assert!(rows[0].contains("sendfile"));
    assert_eq!(
        zcopy()
            .args(["bench", "--jobs", "nope"])
            .output()
            .unwrap()
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        zcopy()
            .args(["bench", "--engines", "zero"])
            .output()
            .unwrap()
            .status
            .code(),
        Some(2)
    );
}

/// Runs `zcopy bench ARGS --dir DIR` and returns (exit code, stdout, stderr).
fn bench(dir: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let o = zcopy()
        .arg("bench")
        .args(args)
        .arg("--dir")
        .arg(dir)
        .env_remove("COLUMNS")
        .output()
        .unwrap();
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn wide_shows_every_column_and_narrow_wraps_to_columns() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "--size", "256KiB", "--repeat", "1", "--budget", "0", "--jobs", "send",
    ];
    let (code, wide, err) = bench(dir.path(), &[&args[..], &["--wide"]].concat());
    assert_eq!(code, Some(0), "{err}");
    assert!(
        wide.contains("cs vol/inv") && wide.contains("model s/D/C"),
        "{wide}"
    );
    assert!(wide.lines().any(|l| l.chars().count() > 80));
    let o = zcopy()
        .arg("bench")
        .args(args)
        .arg("--dir")
        .arg(dir.path())
        .env("COLUMNS", "60")
        .output()
        .unwrap();
    let narrow = String::from_utf8_lossy(&o.stdout);
    let (table, rest) = narrow.split_once("\nthe seeds' claims").unwrap();
    assert!(table.lines().any(|l| l.starts_with("send ")), "{narrow}");
    for line in rest.lines() {
        assert!(line.chars().count() <= 60, "not wrapped to 60: {line}");
    }
}

#[test]
fn bad_arguments_and_paths_fail_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    for (args, code, words) in [
        (&["--size", "0"][..], 2, "too small"),
        (&["--jobs", "send,,scan"][..], 2, "unknown job ''"),
        (
            &["--engines", "sendfile", "--jobs", "scan"][..],
            2,
            "no row matches",
        ),
        (&["--budget", "soon"][..], 2, "not a number of seconds"),
        (
            &["--json", "/nonexistent/bench.json"][..],
            1,
            "cannot write /nonexistent/bench.json",
        ),
        (&["--svg", "/"][..], 1, "cannot write /: Is a directory"),
        (
            &["--html", "/nonexistent/r.html"][..],
            1,
            "cannot write /nonexistent/r.html",
        ),
    ] {
        let started = std::time::Instant::now();
        let (got, out, err) = bench(dir.path(), args);
        assert_eq!(got, Some(code), "{args:?}: {err}");
        assert!(err.contains(words), "{args:?}: {err}");
        assert!(
            err.lines().next().unwrap().contains(words),
            "{args:?}: {err}"
        );
        assert!(out.is_empty(), "{args:?} printed a table: {out}");
        // Nothing was measured: no test file was written in --dir.
        assert!(
            std::fs::read_dir(dir.path()).unwrap().next().is_none(),
            "{args:?}"
        );
        // Not a timing assertion on zcopy's speed: a 256 MiB default run would
        // take far longer than this if the check came after it.
        assert!(started.elapsed().as_secs() < 30, "{args:?} ran the bench");
    }
}

/// The verdict of every claim in a `--json` document.
fn verdicts(doc: &serde_json::Value) -> Vec<(String, String)> {
    doc["claims"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["claim"].as_str().unwrap().to_string(),
                c["verdict"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn two_runs_never_give_opposite_verdicts() {
    let dir = tempfile::tempdir().unwrap();
    let mut runs = Vec::new();
    for i in 0..2 {
        let json = dir.path().join(format!("run{i}.json"));
        let (code, table, err) = bench(
            dir.path(),
            &[
                "--size",
                "1MiB",
                "--jobs",
                "send,scan,small",
                "--budget",
                "5",
                "--json",
                json.to_str().unwrap(),
            ],
        );
        assert_eq!(code, Some(0), "{err}");
        assert!(
            table.contains("the seeds' claims on this machine"),
            "{table}"
        );
        let doc: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
        for c in doc["claims"].as_array().unwrap() {
            let [low, high] = [0, 1].map(|i| c["interval_99"][i].as_f64().unwrap());
            assert!(low <= c["ratio"].as_f64().unwrap() && low <= high, "{c}");
            match c["verdict"].as_str().unwrap() {
                "holds" => assert!(low > 1.0, "{c}"),
                "does-not-hold" => assert!(high < 1.0, "{c}"),
                "inconclusive" => assert!(
                    c["verdict_words"]
                        .as_str()
                        .unwrap()
                        .starts_with("inconclusive on this machine (±"),
                    "{c}"
                ),
                other => panic!("verdict {other}"),
            }
        }
        runs.push(verdicts(&doc));
    }
    assert_eq!(runs[0].len(), 4, "{:?}", runs[0]);
    for (a, b) in runs[0].iter().zip(&runs[1]) {
        assert_eq!(a.0, b.0);
        let opposite = [a.1.as_str(), b.1.as_str()];
        assert!(
            opposite != ["holds", "does-not-hold"] && opposite != ["does-not-hold", "holds"],
            "{}: {} then {}",
            a.0,
            a.1,
            b.1
        );
    }
}

#[test]
fn peers_run_beside_zcopy_and_missing_ones_are_listed() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("peers.json");
    let (code, table, err) = bench(
        dir.path(),
        &[
            "--size",
            "1MiB",
            "--repeat",
            "1",
            "--budget",
            "0",
            "--jobs",
            "send,scan,cp,serve",
            "--peers",
            "--json",
            json.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(
        table.contains("peers, under the same conditions"),
        "{table}"
    );
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let peers = &doc["peers"];
    let missing: Vec<&str> = peers["missing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    let rows: Vec<(&str, &serde_json::Value)> = peers["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| {
            let job = g["job"].as_str().unwrap();
            g["rows"].as_array().unwrap().iter().map(move |r| (job, r))
        })
        .collect();
    let row = |command: &str| {
        rows.iter()
            .find(|(_, r)| r["command"].as_str().unwrap().starts_with(command))
    };
    for (tool, command) in [
        ("nc", "nc -N"),
        ("cc", "bare C sendfile loop"),
        ("socat", "socat"),
        ("javac", "seed ClientChannel"),
        ("iperf3", "iperf3"),
        ("xxhsum", "xxhsum"),
        ("b3sum", "b3sum"),
        ("cp", "GNU cp"),
        ("nginx", "nginx"),
    ] {
        let installed = have(tool, "peers_run_beside_zcopy_and_missing_ones_are_listed");
        match row(command) {
            Some((_, r)) => {
                assert!(installed, "{command} measured but {tool} is not installed");
                assert!(r["error"].is_null(), "{command}: {}", r["error"]);
                assert!(r["rate"].as_f64().unwrap() > 0.0, "{r}");
                assert!(r["zcopy_over_peer"].as_f64().unwrap() > 0.0, "{r}");
            }
            None if tool == "nginx" && !have("wrk", "peers") => {}
            None => {
                assert!(
                    !installed,
                    "{tool} is installed but {command} was not measured"
                );
                assert!(
                    missing
                        .iter()
                        .any(|m| m.contains(tool) || m.contains("Java")),
                    "{tool} missing but not listed: {missing:?}"
                );
            }
        }
    }
    for (job, zcopy_command) in [
        ("send", "zcopy send"),
        ("scan", "zcopy scan"),
        ("cp", "zcopy cp"),
    ] {
        let ours = rows
            .iter()
            .find(|(j, r)| *j == job && r["command"].as_str().unwrap().starts_with(zcopy_command));
        assert!(
            ours.is_some_and(|(_, r)| r["rate"].as_f64().unwrap() > 0.0),
            "{job}: {rows:?}"
        );
    }
    if have("wrk", "peers: serve") {
        let (_, serve) = row("zcopy serve").expect("a zcopy serve row");
        assert_eq!(serve["rate_unit"], "requests/s");
        assert!(serve["rate"].as_f64().unwrap() > 0.0, "{serve}");
    }
}

#[test]
fn calibrate_writes_a_profile_that_scan_cites() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let o = zcopy()
        .args([
            "bench",
            "--calibrate",
            "--size",
            "1MiB",
            "--repeat",
            "1",
            "--dir",
        ])
        .arg(dir.path())
        .env("XDG_CACHE_HOME", cache.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(table.contains("calibration"), "{table}");
    let path = cache.path().join("zcopy/calibration.json");
    let profile: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(profile["version"], 1);
    assert_eq!(profile["scan"].as_array().unwrap().len(), 4);
    assert_eq!(profile["send_small"].as_array().unwrap().len(), 3);
    assert_eq!(profile["send_large"].as_array().unwrap().len(), 4);
    assert!(profile["msg_zerocopy_note"]
        .as_str()
        .unwrap()
        .contains("NIC"));

    // A profile whose figures leave no doubt: scan under auto follows and says why.
    let clear = serde_json::json!({
        "version": 1,
        "calibrated": "2026-11-22",
        "scan": [{ "size": 0, "mib_s": { "read": 1900.0, "pread": 900.0, "mmap": 1000.0 }, "best": "read" }],
    });
    std::fs::write(&path, clear.to_string()).unwrap();
    let file = dir.path().join("data");
    std::fs::write(&file, common::pattern(3 << 20)).unwrap();
    let o = zcopy()
        .args(["scan", "-v"])
        .arg(&file)
        .env("XDG_CACHE_HOME", cache.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("read (auto, calibrated: read: 1.9x mmap on this machine at 0 B, calibrated 2026-11-22)"),
        "{err}"
    );
    let plain = zcopy()
        .args(["scan", "-v"])
        .arg(&file)
        .env("XDG_CACHE_HOME", dir.path())
        .output()
        .unwrap();
    assert_eq!(plain.stdout, o.stdout, "the same digest either way");
    assert!(!String::from_utf8_lossy(&plain.stderr).contains("calibrated"));
}

#[test]
fn html_report_is_self_contained_and_renders() {
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("report.html");
    let (code, _, err) = bench(
        dir.path(),
        &[
            "--size",
            "256KiB",
            "--repeat",
            "2",
            "--budget",
            "1",
            "--jobs",
            "send,small",
            "--html",
            html.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(0), "{err}");
    let page = std::fs::read_to_string(&html).unwrap();
    for part in [
        "<!DOCTYPE html>",
        "<svg",
        "higher is better",
        "lower is better",
        "Machine",
        "kernel",
        "The seeds' claims on this machine",
        "seed Client (read-write, 1 KiB)",
    ] {
        assert!(page.contains(part), "the page lacks {part}");
    }
    assert!(
        !page.contains("<script") && !page.contains("src=\"http") && !page.contains("href=\"http"),
        "not self-contained"
    );
    assert!(
        ["holds", "does-not-hold", "inconclusive"]
            .iter()
            .any(|v| page.contains(&format!("class=\"{v}\""))),
        "no verdict"
    );
    if !have(
        "chromium",
        "html_report_is_self_contained_and_renders (screenshot)",
    ) {
        return;
    }
    let shot = dir.path().join("report.png");
    let o = std::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--window-size=1200,1600",
        ])
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", html.display()))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let png = std::fs::read(&shot).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    // Width and height from the IHDR chunk: the page was laid out at the window's size.
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    assert_eq!(width, 1200);
    assert!(
        png.len() > 20_000,
        "a blank page compresses to almost nothing: {} bytes",
        png.len()
    );
}
