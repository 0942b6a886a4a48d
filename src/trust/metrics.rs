//! `--metrics-file PATH`: rbackup's results in the Prometheus textfile-collector format
//! (node_exporter's `--collector.textfile.directory`), so an alert fires before the day a
//! restore is needed.
//!
//! Owns: the metric names and their HELP/TYPE lines, rendering (label escaping, values),
//! reading back a file written before, and the atomic update. Not for: computing the values
//! (the commands do) or deciding what is wrong (`check`).
//!
//! Every series carries an `operation` label (`backup`, `prune`, `verify`, `drill`, `copy`,
//! `check`, `binlog`), so several commands can share one file: `update` replaces only the
//! series it is given (same name and labels) and keeps every other line already there.
//! A failed run therefore writes its `rbackup_duration_seconds` but not
//! `rbackup_last_success_timestamp_seconds`, and the last success stays what it was.
//!
//! The file is replaced atomically: a temporary file in the same directory (named
//! `.NAME.*.tmp`, so the collector, which reads `*.prom`, never sees it half written),
//! fsynced, renamed over the old one, then the directory fsynced. Two commands updating the
//! file at once are serialised by an advisory lock on a sidecar file `.NAME.lock` in the
//! same directory, so neither loses the other's lines. Mode 0644: the collector usually runs
//! as another user, and the file holds no secret (numbers, operation names).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;

/// The metrics rbackup writes (issue 14); all are gauges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    LastSuccessTimestamp,
    DurationSeconds,
    BytesAdded,
    RepositoryBytes,
    DedupRatio,
    BinlogLagSeconds,
    DrillLastSuccessTimestamp,
    VerifyErrors,
}

impl Metric {
    pub const ALL: [Metric; 8] = [
        Metric::LastSuccessTimestamp,
        Metric::DurationSeconds,
        Metric::BytesAdded,
        Metric::RepositoryBytes,
        Metric::DedupRatio,
        Metric::BinlogLagSeconds,
        Metric::DrillLastSuccessTimestamp,
        Metric::VerifyErrors,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Metric::LastSuccessTimestamp => "rbackup_last_success_timestamp_seconds",
            Metric::DurationSeconds => "rbackup_duration_seconds",
            Metric::BytesAdded => "rbackup_bytes_added",
            Metric::RepositoryBytes => "rbackup_repository_bytes",
            Metric::DedupRatio => "rbackup_dedup_ratio",
            Metric::BinlogLagSeconds => "rbackup_binlog_lag_seconds",
            Metric::DrillLastSuccessTimestamp => "rbackup_drill_last_success_timestamp_seconds",
            Metric::VerifyErrors => "rbackup_verify_errors",
        }
    }

    pub fn help(self) -> &'static str {
        match self {
            Metric::LastSuccessTimestamp => "Unix time of the operation's last successful run.",
            Metric::DurationSeconds => {
                "Wall time of the operation's last run, successful or not, in seconds."
            }
            Metric::BytesAdded => {
                "Bytes newly stored in the repository by the last run (after deduplication)."
            }
            Metric::RepositoryBytes => "Bytes the repository holds after the last run.",
            Metric::DedupRatio => {
                "Fraction (0 to 1) of the last backup's logical bytes already in the repository (not stored again)."
            }
            Metric::BinlogLagSeconds => {
                "Seconds between now and the last binlog event or heartbeat the archiver stored."
            }
            Metric::DrillLastSuccessTimestamp => "Unix time of the last restore drill that passed.",
            Metric::VerifyErrors => "Damaged or missing objects found by the last verify.",
        }
    }

    fn by_name(name: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.name() == name)
    }
}

/// One line of the file: a metric name, its labels (in the order written) and a value.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl Series {
    /// A series of `metric` for `operation`, with no other label.
    pub fn new(metric: Metric, operation: &str, value: f64) -> Series {
        Series {
            name: metric.name().to_string(),
            labels: vec![("operation".into(), operation.into())],
            value,
        }
    }

    fn key(&self) -> (String, Vec<(String, String)>) {
        let mut labels = self.labels.clone();
        labels.sort();
        (self.name.clone(), labels)
    }
}

/// Replaces `series` in the file at `path` (creating it), keeping every other series
/// already there. Lines of the old file that do not parse are dropped (the file is ours and
/// always rewritten whole; see the module doc for atomicity and locking).
pub fn update(path: &Path, series: &[Series]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{}: not a file name", path.display()),
            )
        })?
        .to_string_lossy()
        .into_owned();
    let context = |what: &str, e: io::Error| {
        io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
    };
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(format!(".{file_name}.lock")))
        .map_err(|e| context("locking metrics file", e))?;
    // SAFETY: flock on a descriptor we own; released when `lock` is dropped.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(context("locking metrics file", io::Error::last_os_error()));
    }
    let old = match fs::read_to_string(path) {
        Ok(text) => parse(&text),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(context("reading metrics file", e)),
    };
    let merged = merge(old, series);
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{file_name}."))
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| context("writing metrics file", e))?;
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(0o644))
        .map_err(|e| context("writing metrics file", e))?;
    tmp.write_all(render(&merged).as_bytes())
        .map_err(|e| context("writing metrics file", e))?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| context("writing metrics file", e))?;
    tmp.persist(path)
        .map_err(|e| context("replacing metrics file", e.error))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| context("syncing the directory of", e))?;
    drop(lock);
    Ok(())
}

/// `old` with every series of `new` put in place of the one with the same name and labels.
pub fn merge(old: Vec<Series>, new: &[Series]) -> Vec<Series> {
    let mut map: BTreeMap<_, Series> = old.into_iter().map(|s| (s.key(), s)).collect();
    for s in new {
        map.insert(s.key(), s.clone());
    }
    map.into_values().collect()
}

/// The file's text: series grouped by name (sorted), each group under its HELP and TYPE
/// lines. Names we do not know (a newer rbackup's) are kept as `untyped`.
pub fn render(series: &[Series]) -> String {
    let mut groups: BTreeMap<&str, Vec<&Series>> = BTreeMap::new();
    for s in series {
        groups.entry(s.name.as_str()).or_default().push(s);
    }
    let mut out = String::new();
    for (name, members) in groups {
        match Metric::by_name(name) {
            Some(m) => {
                let _ = writeln!(out, "# HELP {name} {}", escape_help(m.help()));
                let _ = writeln!(out, "# TYPE {name} gauge");
            }
            None => {
                let _ = writeln!(out, "# TYPE {name} untyped");
            }
        }
        for s in members {
            out.push_str(name);
            if !s.labels.is_empty() {
                out.push('{');
                for (i, (k, v)) in s.labels.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "{k}=\"{}\"", escape_label(v));
                }
                out.push('}');
            }
            let _ = writeln!(out, " {}", format_value(s.value));
        }
    }
    out
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        v.to_string()
    }
}

/// The sample lines of a textfile (comments skipped, malformed lines dropped), enough to
/// read back what `render` wrote: `name{label="value",...} value [timestamp]`.
pub fn parse(text: &str) -> Vec<Series> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
        .filter_map(parse_line)
        .collect()
}

fn parse_line(line: &str) -> Option<Series> {
    let line = line.trim();
    let name_end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(line.len());
    let name = &line[..name_end];
    if name.is_empty() {
        return None;
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(r) = rest.strip_prefix('{') {
        let mut chars = r.char_indices().peekable();
        loop {
            while chars.next_if(|(_, c)| *c == ' ' || *c == ',').is_some() {}
            let (start, c) = *chars.peek()?;
            if c == '}' {
                chars.next();
                rest = &r[start + 1..];
                break;
            }
            let mut key = String::new();
            while let Some((_, c)) = chars.next_if(|(_, c)| c.is_ascii_alphanumeric() || *c == '_')
            {
                key.push(c);
            }
            if key.is_empty() || chars.next()?.1 != '=' || chars.next()?.1 != '"' {
                return None;
            }
            let mut value = String::new();
            loop {
                match chars.next()?.1 {
                    '"' => break,
                    '\\' => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        c => value.push(c),
                    },
                    c => value.push(c),
                }
            }
            labels.push((key, value));
        }
    }
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" | "Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => v.parse().ok()?,
    };
    Some(Series {
        name: name.to_string(),
        labels,
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scrape(text: &str) -> prometheus_parse::Scrape {
        prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap()
    }

    fn backup_run() -> Vec<Series> {
        vec![
            Series::new(Metric::LastSuccessTimestamp, "backup", 1_764_660_000.0),
            Series::new(Metric::DurationSeconds, "backup", 812.25),
            Series::new(Metric::BytesAdded, "backup", 123_456_789.0),
            Series::new(Metric::RepositoryBytes, "backup", 98_765_432_100.0),
            Series::new(Metric::DedupRatio, "backup", 17.5),
        ]
    }

    #[test]
    fn written_file_parses_back_equal_with_an_independent_parser() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rbackup.prom");
        update(&path, &backup_run()).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        let scraped = scrape(&text);
        assert_eq!(scraped.samples.len(), 5);
        for want in backup_run() {
            let got = scraped
                .samples
                .iter()
                .find(|s| s.metric == want.name)
                .unwrap();
            assert_eq!(got.labels.get("operation"), Some("backup"));
            match got.value {
                prometheus_parse::Value::Gauge(v) => assert_eq!(v, want.value, "{}", want.name),
                ref other => panic!("{} is not a gauge: {other:?}", want.name),
            }
            assert!(
                scraped.docs.contains_key(&want.name),
                "no HELP for {}",
                want.name
            );
        }
        assert!(text.contains("# TYPE rbackup_dedup_ratio gauge\n"));
        // And our own reader agrees, so merging sees what was written.
        assert_eq!(merge(vec![], &parse(&text)), merge(vec![], &backup_run()));
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o644
        );
        // Only the file and its lock are left: no temporary file.
        let mut names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names, vec![".rbackup.prom.lock", "rbackup.prom"]);
    }

    #[test]
    fn each_operation_updates_only_its_own_series() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rbackup.prom");
        update(&path, &backup_run()).unwrap();
        update(
            &path,
            &[
                Series::new(Metric::LastSuccessTimestamp, "verify", 1_764_670_000.0),
                Series::new(Metric::VerifyErrors, "verify", 0.0),
            ],
        )
        .unwrap();
        // A failed backup: a new duration, the last success untouched.
        update(
            &path,
            &[Series::new(Metric::DurationSeconds, "backup", 3.0)],
        )
        .unwrap();
        let text = fs::read_to_string(&path).unwrap();
        let got = parse(&text);
        let value = |name: Metric, op: &str| {
            got.iter()
                .find(|s| {
                    s.name == name.name()
                        && s.labels == vec![("operation".to_string(), op.to_string())]
                })
                .map(|s| s.value)
        };
        assert_eq!(
            value(Metric::LastSuccessTimestamp, "backup"),
            Some(1_764_660_000.0)
        );
        assert_eq!(
            value(Metric::LastSuccessTimestamp, "verify"),
            Some(1_764_670_000.0)
        );
        assert_eq!(value(Metric::DurationSeconds, "backup"), Some(3.0));
        assert_eq!(value(Metric::VerifyErrors, "verify"), Some(0.0));
        assert_eq!(got.len(), 7);
        // One HELP and TYPE per metric, even with two operations' series under it.
        assert_eq!(
            text.matches("# HELP rbackup_last_success_timestamp_seconds ")
                .count(),
            1
        );
        assert_eq!(scrape(&text).samples.len(), 7);
    }

    #[test]
    fn label_values_are_escaped_and_read_back() {
        let weird = "a \"quoted\" back\\slash\nnewline";
        let s = vec![Series {
            name: Metric::BinlogLagSeconds.name().into(),
            labels: vec![
                ("operation".into(), "binlog".into()),
                ("server".into(), weird.into()),
            ],
            value: 4.5,
        }];
        let text = render(&s);
        assert!(
            text.contains(r#"server="a \"quoted\" back\\slash\nnewline""#),
            "{text}"
        );
        assert_eq!(text.lines().count(), 3);
        assert_eq!(parse(&text), s);
        let scraped = scrape(&text);
        assert_eq!(scraped.samples[0].labels.get("operation"), Some("binlog"));
    }

    #[test]
    fn special_values_and_unknown_names_survive() {
        let s = vec![
            Series {
                name: "rbackup_from_a_newer_version".into(),
                labels: vec![],
                value: f64::INFINITY,
            },
            Series::new(Metric::DedupRatio, "backup", f64::NEG_INFINITY),
        ];
        let text = render(&s);
        assert!(text.contains("rbackup_from_a_newer_version +Inf\n"));
        assert!(text.contains("# TYPE rbackup_from_a_newer_version untyped\n"));
        assert_eq!(merge(vec![], &parse(&text)), merge(vec![], &s));
        let nan = parse(&render(&[Series::new(
            Metric::DedupRatio,
            "backup",
            f64::NAN,
        )]));
        assert!(nan[0].value.is_nan());
        // Garbage lines in an old file are dropped, the rest kept.
        assert_eq!(
            parse("garbage here\n{x=\"1\"} 2\nok 1\nnovalue{a=\"b\"}\n").len(),
            1
        );
    }

    #[test]
    fn a_missing_directory_is_an_error_naming_the_path() {
        let e = update(Path::new("/nonexistent-dir/rbackup.prom"), &backup_run()).unwrap_err();
        assert!(
            e.to_string().contains("/nonexistent-dir/rbackup.prom"),
            "{e}"
        );
    }
}
