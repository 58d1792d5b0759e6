use std::path::Path;

use super::{Action, Filter, Rules};

fn excluded(rules: &Rules, name: &[u8], is_dir: bool) -> bool {
    Filter::new(rules.clone()).excluded(name, is_dir, Path::new("/nonexistent"))
}

#[test]
fn anchoring_as_rsync() {
    let mut rules = Rules::new();
    rules.push(Action::Exclude, b"/src/top");
    rules.push(Action::Exclude, b"*.o");
    rules.push(Action::Exclude, b"cache/tmp");
    rules.push(Action::Exclude, b"build/");
    // Anchored: only at the root.
    assert!(excluded(&rules, b"src/top", false));
    assert!(!excluded(&rules, b"src/x/src/top", false));
    // No slash: the last component, at any depth.
    assert!(excluded(&rules, b"src/a/main.o", false));
    assert!(!excluded(&rules, b"src/a/main.c", false));
    // A slash inside: the end of the name, at a component boundary.
    assert!(excluded(&rules, b"src/cache/tmp", false));
    assert!(!excluded(&rules, b"src/xcache/tmp", false));
    // A trailing slash: directories only.
    assert!(excluded(&rules, b"src/build", true));
    assert!(!excluded(&rules, b"src/build", false));
}

#[test]
fn first_match_wins() {
    let mut rules = Rules::new();
    rules.push(Action::Include, b"keep.log");
    rules.push(Action::Exclude, b"*.log");
    assert!(!excluded(&rules, b"d/keep.log", false));
    assert!(excluded(&rules, b"d/other.log", false));
}

#[test]
fn filter_rules_and_their_lines() {
    let mut rules = Rules::new();
    rules.push_filter(b"- *.tmp").unwrap();
    rules.push_filter(b"+ /a/").unwrap();
    rules.push_filter(b":- .gitignore").unwrap();
    rules.push_filter(b"exclude_x").unwrap();
    assert!(rules.push_filter(b"merge x").is_err());
    assert!(rules.push_filter(b"-").is_err());
    assert!(rules.push_filter(b":- ../../etc/passwd").is_err());
    let lines = rules.lines();
    assert_eq!(
        lines,
        [&b"- *.tmp"[..], b"+ /a/", b":- .gitignore", b"- x"].map(<[u8]>::to_vec)
    );
    assert_eq!(Rules::from_lines(&lines).unwrap(), rules);
}

#[test]
fn exclude_from_skips_comments() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("list");
    std::fs::write(
        &list,
        b"# comment\n\n; also\n*.bak\n+ keep.bak\r\nbad\xff\n",
    )
    .unwrap();
    let mut rules = Rules::new();
    rules.push_from(Action::Exclude, &list).unwrap();
    assert_eq!(
        rules.lines(),
        [&b"- *.bak"[..], b"+ keep.bak", b"- bad\xff"].map(<[u8]>::to_vec)
    );
    let missing = dir.path().join("missing");
    let err = rules.push_from(Action::Exclude, &missing).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("cannot read {}", missing.display())
    );
}

#[test]
fn per_directory_ignore_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("src");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::write(root.join(".gitignore"), b"*.log\ntarget/\n").unwrap();
    std::fs::write(root.join("sub/.gitignore"), b"!keep.log\n").unwrap();
    let mut rules = Rules::new();
    rules.push_filter(b":- .gitignore").unwrap();
    let mut filter = Filter::new(rules);
    let mut ask =
        |name: &str, is_dir| filter.excluded(name.as_bytes(), is_dir, &dir.path().join(name));
    assert!(ask("src/a.log", false));
    assert!(ask("src/target", true));
    assert!(!ask("src/a.txt", false));
    assert!(ask("src/sub/b.log", false));
    assert!(!ask("src/sub/keep.log", false));
}
