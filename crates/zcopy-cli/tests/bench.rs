//! `zcopy bench` on a small file: the table, a JSON document that parses with a
//! row per job and engine, and an SVG with a bar for every row.

mod common;

use common::zcopy;

#[test]
fn bench_writes_table_json_and_svg() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bench.json");
    let svg = dir.path().join("bench.svg");
    let o = zcopy()
        .args(["bench", "--size", "2MiB", "--repeat", "2", "--dir"])
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
        assert_eq!(r["throughput_samples"].as_array().unwrap().len(), 2);
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
