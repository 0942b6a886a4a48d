//! `rbackup check`: the verdict, as a pure function of what the repository says and the
//! limits given, in the Nagios plugin convention (exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN,
//! one line on stdout saying why), for cron mail, Nagios/Icinga checks and systemd
//! `OnFailure=`.
//!
//! Owns: which condition is how severe, and the line. Not for: reading the repository (the
//! command gathers `Observed`) or alerting (the monitoring system does).
//!
//! Severity, decided by one question: would a restore needed *now* lose more than the
//! operator said they accept, or be impossible?
//!
//! - CRITICAL (yes, or we cannot tell that it would not):
//!   - `--max-age`: the newest backup is older than the limit, or there is no backup;
//!   - `--max-binlog-lag`: the archiver's last stored event or heartbeat is older than the
//!     limit (stopped or falling behind), it has stored nothing yet, or there is no binlog
//!     archive at all: every point after the last stored event is lost in a restore;
//!   - a gap in the PITR window (a missing binlog range between a kept backup and the
//!     newest archived event), checked whenever there is an archive, with or without a
//!     limit: the points after the gap cannot be reached.
//! - WARNING (no, but trust is eroding and someone should look during working hours):
//!   - `--max-drill-age`: no restore drill passed within the limit, or none ever: the
//!     backups are there and fresh, only the proof that they restore is old;
//!   - the newest backup is dated more than 5 minutes in the future (clock skew: ages and
//!     retention are computed from these times);
//!   - a drill record that cannot be trusted (damaged, or its MAC does not match: forged
//!     by someone who can put objects but holds no key, or another repository's), checked
//!     whenever drills can be read: it is ignored, so it never satisfies
//!     `--max-drill-age`, and said, since someone put or damaged it. Not CRITICAL: the
//!     backups and the archive, which a restore needs, are judged on their own; what is
//!     lost is only a proof;
//!   - no limit given at all: a check that checks nothing must not look green.
//! - UNKNOWN (3): the check could not run (repository unreadable); the command builds it
//!   with `Verdict::unknown`.
//!
//! An age exactly equal to its limit is within it. Durations count back from `now` on the
//! wall clock of the zone given (see `duration`).

use chrono::{DateTime, TimeZone, Utc};

use super::duration::{CalendarDuration, human_age};

/// Nagios plugin states; `exit_code` is the process's exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    Ok,
    Warning,
    Critical,
    Unknown,
}

impl Status {
    pub fn exit_code(self) -> i32 {
        match self {
            Status::Ok => 0,
            Status::Warning => 1,
            Status::Critical => 2,
            Status::Unknown => 3,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Warning => "WARNING",
            Status::Critical => "CRITICAL",
            Status::Unknown => "UNKNOWN",
        }
    }
}

/// The binlog archiver's state as the repository records it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Archiver {
    /// Server time of the newest event or heartbeat the archiver has durably stored (a
    /// heartbeat counts, so an idle server does not look like a stopped archiver).
    pub last_event: Option<DateTime<Utc>>,
    /// Each gap in the PITR window, described for a human ("mysql-bin.000042 to
    /// mysql-bin.000044 missing"). Empty: the window is continuous.
    pub gaps: Vec<String>,
}

/// What the repository says, and when "now" is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    pub now: DateTime<Utc>,
    pub newest_backup: Option<DateTime<Utc>>,
    /// `None`: the repository holds no binlog archive.
    pub archiver: Option<Archiver>,
    /// When the last drill that passed finished.
    pub last_drill_success: Option<DateTime<Utc>>,
    /// Drill records that were ignored, each with why (damaged, or a MAC that does not
    /// match: forged or written with another repository's key).
    pub ignored_drills: Vec<String>,
}

/// `--max-age`, `--max-binlog-lag`, `--max-drill-age` (or the config's `[check]`); `None`
/// leaves that condition unchecked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Limits {
    pub max_age: Option<CalendarDuration>,
    pub max_binlog_lag: Option<CalendarDuration>,
    pub max_drill_age: Option<CalendarDuration>,
}

impl Limits {
    /// Each limit from the command line when given there, else from the config file.
    pub fn overridden_by(self, cli: Limits) -> Limits {
        Limits {
            max_age: cli.max_age.or(self.max_age),
            max_binlog_lag: cli.max_binlog_lag.or(self.max_binlog_lag),
            max_drill_age: cli.max_drill_age.or(self.max_drill_age),
        }
    }
}

/// `rbackup check --help`'s description (for clap's `long_about`).
pub const CHECK_HELP: &str = "\
Exits 0 (OK), 1 (WARNING), 2 (CRITICAL) or 3 (UNKNOWN: the repository could not be read)
and prints one line saying why, for cron mail, Nagios-style checks and systemd OnFailure=.

  CRITICAL: the newest backup is older than --max-age, or there is none; the binlog
  archiver's last stored event or heartbeat is older than --max-binlog-lag, or there is no
  archive; a gap in the point-in-time window (always checked when there is an archive).
  WARNING: no restore drill passed within --max-drill-age; a drill record is damaged or
  forged (its MAC does not match: ignored); the newest backup is dated in the future; no
  limit given at all.

Durations are like 26h, 15min, 8d, 1m (m is months, as in --keep-within). Limits not given
on the command line come from [check] in the config file.";

/// The outcome: the worst status found, and the one line to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub status: Status,
    pub line: String,
}

impl Verdict {
    /// The check could not run: "UNKNOWN: {why}", exit 3.
    pub fn unknown(why: &str) -> Verdict {
        Verdict {
            status: Status::Unknown,
            line: format!("UNKNOWN: {}", one_line(why)),
        }
    }
}

/// Clock skew tolerated before a future backup time is reported.
const FUTURE_TOLERANCE_SECONDS: i64 = 300;

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The verdict for `observed` under `limits`, durations counted in `tz`.
pub fn verdict<Tz: TimeZone>(observed: &Observed, limits: &Limits, tz: &Tz) -> Verdict {
    let now = observed.now;
    let age = |t: DateTime<Utc>| human_age(now - t);
    let mut problems: Vec<(Status, String)> = Vec::new();
    let mut facts: Vec<String> = Vec::new();

    if let Some(newest) = observed.newest_backup
        && (newest - now).num_seconds() > FUTURE_TOLERANCE_SECONDS
    {
        problems.push((
            Status::Warning,
            format!(
                "newest backup is dated {} in the future (clock skew?)",
                human_age(newest - now)
            ),
        ));
    }
    if let Some(max) = limits.max_age {
        match observed.newest_backup {
            None => problems.push((Status::Critical, "no backup in the repository".into())),
            Some(t) if max.exceeded_by(t, now, tz) => problems.push((
                Status::Critical,
                format!("newest backup is {} old (max {max})", age(t)),
            )),
            Some(t) => facts.push(format!("newest backup {} old (max {max})", age(t))),
        }
    }
    if let Some(archiver) = &observed.archiver {
        for gap in &archiver.gaps {
            problems.push((
                Status::Critical,
                format!("gap in the PITR window: {}", one_line(gap)),
            ));
        }
    }
    if let Some(max) = limits.max_binlog_lag {
        match observed.archiver.as_ref().map(|a| a.last_event) {
            None => problems.push((
                Status::Critical,
                "no binlog archive in the repository".into(),
            )),
            Some(None) => problems.push((
                Status::Critical,
                "the binlog archiver has stored no event yet".into(),
            )),
            Some(Some(t)) if max.exceeded_by(t, now, tz) => problems.push((
                Status::Critical,
                format!(
                    "binlog archiver is {} behind (max {max}): stopped or falling behind",
                    age(t)
                ),
            )),
            Some(Some(t)) => facts.push(format!("binlog archiver {} behind (max {max})", age(t))),
        }
    }
    if let Some(max) = limits.max_drill_age {
        match observed.last_drill_success {
            None => problems.push((Status::Warning, "no restore drill has passed yet".into())),
            Some(t) if max.exceeded_by(t, now, tz) => problems.push((
                Status::Warning,
                format!("last passing restore drill was {} ago (max {max})", age(t)),
            )),
            Some(t) => facts.push(format!("last drill passed {} ago (max {max})", age(t))),
        }
    }
    if let Some(first) = observed.ignored_drills.first() {
        let more = observed.ignored_drills.len() - 1;
        problems.push((
            Status::Warning,
            format!(
                "drill record ignored (damaged or forged, it proves nothing): {}{}",
                one_line(first),
                if more > 0 {
                    format!(" (and {more} more)")
                } else {
                    String::new()
                }
            ),
        ));
    }
    if limits == &Limits::default() {
        problems.push((
            Status::Warning,
            "no limit given: nothing checked (--max-age, --max-binlog-lag, --max-drill-age or [check] in the config)"
                .into(),
        ));
    }

    let status = problems.iter().map(|(s, _)| *s).max().unwrap_or(Status::Ok);
    let line = if problems.is_empty() {
        format!("OK: {}", facts.join("; "))
    } else {
        let mut parts = Vec::new();
        for level in [Status::Critical, Status::Warning] {
            let these: Vec<&str> = problems
                .iter()
                .filter(|(s, _)| *s == level)
                .map(|(_, m)| m.as_str())
                .collect();
            if !these.is_empty() {
                parts.push(format!("{}: {}", level.label(), these.join("; ")));
            }
        }
        parts.join("; ")
    };
    Verdict { status, line }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }
    fn dur(s: &str) -> Option<CalendarDuration> {
        Some(s.parse().unwrap())
    }
    const NOW: &str = "2026-06-10T12:00:00Z";

    /// Everything healthy: a backup 3h old, the archiver 10s behind, a drill 2 days ago.
    fn healthy() -> Observed {
        Observed {
            now: utc(NOW),
            newest_backup: Some(utc("2026-06-10T09:00:00Z")),
            archiver: Some(Archiver {
                last_event: Some(utc("2026-06-10T11:59:50Z")),
                gaps: vec![],
            }),
            last_drill_success: Some(utc("2026-06-08T12:00:00Z")),
            ignored_drills: vec![],
        }
    }
    fn limits() -> Limits {
        Limits {
            max_age: dur("26h"),
            max_binlog_lag: dur("15min"),
            max_drill_age: dur("8d"),
        }
    }
    fn check(o: &Observed) -> Verdict {
        verdict(o, &limits(), &Utc)
    }

    #[test]
    fn all_within_limits_is_ok_with_the_facts() {
        let v = check(&healthy());
        assert_eq!(v.status, Status::Ok);
        assert_eq!(v.status.exit_code(), 0);
        assert_eq!(
            v.line,
            "OK: newest backup 3h old (max 26h); binlog archiver 10s behind (max 15min); last drill passed 2d ago (max 8d)"
        );
    }

    #[test]
    fn a_stale_backup_is_critical() {
        let mut o = healthy();
        o.newest_backup = Some(utc("2026-06-09T09:59:59Z"));
        let v = check(&o);
        assert_eq!((v.status, v.status.exit_code()), (Status::Critical, 2));
        assert_eq!(v.line, "CRITICAL: newest backup is 1d 2h old (max 26h)");
        // Exactly at the limit is still fine.
        o.newest_backup = Some(utc("2026-06-09T10:00:00Z"));
        assert_eq!(check(&o).status, Status::Ok);
    }

    #[test]
    fn no_backup_at_all_is_critical() {
        let mut o = healthy();
        o.newest_backup = None;
        assert_eq!(check(&o).line, "CRITICAL: no backup in the repository");
    }

    #[test]
    fn an_archiver_behind_or_missing_is_critical() {
        let mut o = healthy();
        o.archiver.as_mut().unwrap().last_event = Some(utc("2026-06-10T11:19:00Z"));
        let v = check(&o);
        assert_eq!(v.status, Status::Critical);
        assert_eq!(
            v.line,
            "CRITICAL: binlog archiver is 41min behind (max 15min): stopped or falling behind"
        );
        o.archiver.as_mut().unwrap().last_event = None;
        assert_eq!(
            check(&o).line,
            "CRITICAL: the binlog archiver has stored no event yet"
        );
        o.archiver = None;
        assert_eq!(
            check(&o).line,
            "CRITICAL: no binlog archive in the repository"
        );
        // Without --max-binlog-lag, no archive is fine.
        let v = verdict(
            &o,
            &Limits {
                max_binlog_lag: None,
                ..limits()
            },
            &Utc,
        );
        assert_eq!(v.status, Status::Ok);
    }

    #[test]
    fn a_gap_in_the_pitr_window_is_critical_even_without_a_lag_limit() {
        let mut o = healthy();
        o.archiver.as_mut().unwrap().gaps =
            vec!["mysql-bin.000042 to\nmysql-bin.000044 missing".into()];
        let v = verdict(
            &o,
            &Limits {
                max_binlog_lag: None,
                ..limits()
            },
            &Utc,
        );
        assert_eq!(v.status, Status::Critical);
        assert_eq!(
            v.line,
            "CRITICAL: gap in the PITR window: mysql-bin.000042 to mysql-bin.000044 missing"
        );
        assert_eq!(v.line.lines().count(), 1);
    }

    #[test]
    fn an_old_or_missing_drill_is_a_warning() {
        let mut o = healthy();
        o.last_drill_success = Some(utc("2026-06-01T11:00:00Z"));
        let v = check(&o);
        assert_eq!((v.status, v.status.exit_code()), (Status::Warning, 1));
        assert_eq!(
            v.line,
            "WARNING: last passing restore drill was 9d 1h ago (max 8d)"
        );
        o.last_drill_success = None;
        assert_eq!(check(&o).line, "WARNING: no restore drill has passed yet");
    }

    #[test]
    fn an_ignored_drill_record_is_a_warning_and_does_not_count() {
        let mut o = healthy();
        o.ignored_drills = vec![
            "damaged object drills/ab/cd:\n its MAC does not match".into(),
            "damaged object drills/ab/ef: its content hashes to 00".into(),
        ];
        let v = check(&o);
        assert_eq!(v.status, Status::Warning);
        assert_eq!(
            v.line,
            "WARNING: drill record ignored (damaged or forged, it proves nothing): damaged object \
             drills/ab/cd: its MAC does not match (and 1 more)"
        );
    }

    #[test]
    fn the_worst_wins_and_every_problem_is_named_on_one_line() {
        let mut o = healthy();
        o.newest_backup = Some(utc("2026-06-07T12:00:00Z"));
        o.last_drill_success = None;
        o.archiver.as_mut().unwrap().last_event = Some(utc("2026-06-10T10:00:00Z"));
        let v = check(&o);
        assert_eq!(v.status, Status::Critical);
        assert_eq!(
            v.line,
            "CRITICAL: newest backup is 3d old (max 26h); binlog archiver is 2h behind (max 15min): stopped or \
             falling behind; WARNING: no restore drill has passed yet"
        );
    }

    #[test]
    fn a_backup_from_the_future_is_a_warning() {
        let mut o = healthy();
        o.newest_backup = Some(utc("2026-06-10T15:00:00Z"));
        assert_eq!(
            check(&o).line,
            "WARNING: newest backup is dated 3h in the future (clock skew?)"
        );
        // A few seconds of skew are tolerated.
        o.newest_backup = Some(utc("2026-06-10T12:01:00Z"));
        assert_eq!(check(&o).status, Status::Ok);
    }

    #[test]
    fn no_limit_at_all_is_a_warning_not_a_silent_ok() {
        let v = verdict(&healthy(), &Limits::default(), &Utc);
        assert_eq!(v.status, Status::Warning);
        assert!(v.line.starts_with("WARNING: no limit given"), "{}", v.line);
    }

    #[test]
    fn calendar_limits_count_on_the_wall_clock() {
        // --max-age 1m on 2026-03-31: the limit reaches back to "2026-02-31" = 2026-03-03.
        let o = Observed {
            now: utc("2026-03-31T00:00:00Z"),
            newest_backup: Some(utc("2026-03-02T23:00:00Z")),
            ..healthy()
        };
        let l = Limits {
            max_age: dur("1m"),
            ..Limits::default()
        };
        assert_eq!(verdict(&o, &l, &Utc).status, Status::Critical);
        let o = Observed {
            newest_backup: Some(utc("2026-03-03T00:00:00Z")),
            ..o
        };
        assert_eq!(verdict(&o, &l, &Utc).status, Status::Ok);
    }

    #[test]
    fn command_line_limits_override_the_config_file_one_by_one() {
        let config = limits();
        let cli = Limits {
            max_age: dur("2d"),
            ..Limits::default()
        };
        assert_eq!(
            config.overridden_by(cli),
            Limits {
                max_age: dur("2d"),
                ..limits()
            }
        );
        assert_eq!(Limits::default().overridden_by(cli), cli);
    }

    #[test]
    fn unknown_is_exit_3_on_one_line() {
        let v = Verdict::unknown("cannot open repository s3://b/p:\n  access denied");
        assert_eq!(
            (v.status.exit_code(), v.line.as_str()),
            (3, "UNKNOWN: cannot open repository s3://b/p: access denied")
        );
    }
}
