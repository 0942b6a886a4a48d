//! contrib/systemd/: the units load cleanly in systemd and follow the rules of issue 14
//! (no secrets or options on command lines, hardening, the archiver always restarted).
//!
//! `systemd-analyze verify` checks that every `Exec*=` binary exists, and rbackup is not
//! installed at /usr/local/bin on a build machine: the test verifies a temporary copy of the
//! units with `/usr/local/bin/rbackup` rewritten to `/bin/true`, nothing else changed.
//! `verify` only warns (exit 0) on unknown keys or unparsable values, so any output at all
//! fails the test. Without `systemd-analyze` on PATH the verify test prints why and passes
//! (the static checks below still run).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn units_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/systemd")
}

fn units() -> Vec<(String, String)> {
    let mut units: Vec<(String, String)> = fs::read_dir(units_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("service" | "timer")
            )
        })
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    units.sort();
    units
}

fn values<'a>(text: &'a str, key: &str) -> Vec<&'a str> {
    text.lines()
        .filter_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .collect()
}

#[test]
fn every_unit_passes_systemd_analyze_verify() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        println!("skipped: systemd-analyze is not installed (Debian package `systemd`)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    for (name, text) in units() {
        let path = dir.path().join(&name);
        fs::write(&path, text.replace("/usr/local/bin/rbackup", "/bin/true")).unwrap();
        paths.push(path);
    }
    assert_eq!(paths.len(), 9, "5 services and 4 timers");
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg("--man=no")
        .args(&paths)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stderr.trim().is_empty() && stdout.trim().is_empty(),
        "{stdout}{stderr}"
    );
}

#[test]
fn command_lines_carry_no_option_and_no_secret() {
    let allowed = [
        "/usr/local/bin/rbackup backup",
        "/usr/local/bin/rbackup prune",
        "/usr/local/bin/rbackup binlog",
        "/usr/local/bin/rbackup verify --drill latest",
        "/usr/local/bin/rbackup copy",
        "/usr/local/bin/rbackup check",
    ];
    let mut seen = 0;
    for (name, text) in units() {
        for key in [
            "ExecStart",
            "ExecStartPre",
            "ExecStartPost",
            "ExecStop",
            "ExecStopPost",
        ] {
            for line in values(&text, key) {
                assert!(allowed.contains(&line.trim()), "{name}: {key}={line}");
                seen += 1;
            }
        }
        assert!(
            !text.contains("Environment=AWS"),
            "{name}: credentials belong in the EnvironmentFile"
        );
    }
    assert_eq!(seen, 6);
}

#[test]
fn services_are_hardened_and_timers_have_their_service() {
    let units = units();
    for (name, text) in &units {
        if let Some(base) = name.strip_suffix(".timer") {
            assert!(
                units.iter().any(|(n, _)| *n == format!("{base}.service")),
                "{name} has no service"
            );
            assert_eq!(values(text, "Persistent"), ["true"], "{name}");
            assert_eq!(values(text, "WantedBy"), ["timers.target"], "{name}");
            continue;
        }
        for (key, want) in [
            ("NoNewPrivileges", "yes"),
            ("ProtectSystem", "strict"),
            ("ProtectHome", "yes"),
            ("PrivateTmp", "yes"),
            ("CapabilityBoundingSet", ""),
            ("UMask", "0077"),
            ("User", "rbackup"),
        ] {
            assert_eq!(values(text, key), [want], "{name}: {key}");
        }
    }
    let binlog = &units
        .iter()
        .find(|(n, _)| n == "rbackup-binlog.service")
        .unwrap()
        .1;
    assert_eq!(values(binlog, "Restart"), ["always"]);
    assert_eq!(values(binlog, "KillSignal"), ["SIGTERM"]);
    let backup = &units
        .iter()
        .find(|(n, _)| n == "rbackup-backup.service")
        .unwrap()
        .1;
    assert_eq!(
        values(backup, "ExecStartPost"),
        ["/usr/local/bin/rbackup prune"],
        "prune after the backup"
    );
}

/// Every `Exec*=` line is a command line the real binary accepts (`--help` appended, so
/// nothing runs): the units call commands and flags that exist, every one of them.
#[test]
fn command_lines_are_accepted_by_rbackup() {
    let bin = env!("CARGO_BIN_EXE_rbackup");
    let mut checked = 0;
    for (name, text) in units() {
        for key in ["ExecStart", "ExecStartPost"] {
            for line in values(&text, key) {
                let words: Vec<&str> = line.split_whitespace().skip(1).collect();
                let out = Command::new(bin)
                    .args(&words)
                    .arg("--help")
                    .env_remove("RBACKUP_CONFIG")
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{name}: {key}={line}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                checked += 1;
            }
        }
    }
    assert!(
        checked >= 6,
        "backup, prune, binlog, copy, check, drill: {checked}"
    );
}
