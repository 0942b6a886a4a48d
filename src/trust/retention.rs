//! The prune policy: which backups to keep, given their times, as restic's `forget` decides
//! it. Small pure functions over times; no repository, no I/O.
//!
//! Owns: the policy (`Policy`), its evaluation (`apply`) and the reasons each kept backup was
//! kept (for `prune --dry-run`). Not for: what pruning a backup deletes (blobs, binlog
//! segments) or locking: that is the repository's.
//!
//! The rules, exactly those of restic's `forget` (its `ApplyPolicy`):
//!
//! - Backups are taken newest first (ties keep the caller's order, so pass them in a
//!   deterministic order, e.g. by ID).
//! - `--keep-last N` keeps the N newest. `--keep-hourly/daily/weekly/monthly/yearly N` put
//!   each backup in a calendar bucket (hour, day, ISO 8601 week (Monday to Sunday, weeks of
//!   the ISO week-numbering year, so 2021-01-03 is in 2020-W53), month, year) on the wall
//!   clock of the time zone given, and keep the newest backup of each of the N newest
//!   buckets that hold a backup. A backup may fill buckets of several rules; it is kept if
//!   any rule keeps it (rules are ORed), and carries every reason. `unlimited` instead of N
//!   keeps one per bucket for ever.
//! - When a rule still has buckets left at the oldest backup, the oldest backup is kept too
//!   ("oldest daily"), even if its bucket was already filled: the history kept is as long
//!   as it can be.
//! - `--keep-within D` keeps every backup made after "the newest backup minus D" (strictly
//!   after; see `duration` for how D is subtracted). The newest backup here is the newest
//!   one not in the future of `now`, so a backup with a clock-skewed future time cannot
//!   make `--keep-within` drop everything else; backups in the future are kept by it.
//! - An empty policy (every count 0, no `--keep-within`) removes nothing (restic refuses
//!   to act on one; here every backup is kept with the reason "empty policy").
//!
//! DST: buckets are taken on the local wall clock, so the hour repeated when clocks fall
//! back is one hourly bucket (restic's behaviour: the key is the wall-clock hour), and a
//! 23- or 25-hour day is one daily bucket. Production passes `chrono::Local` (the host's
//! zone, as restic uses Go's `time.Local`); the tests pass `chrono_tz` zones.
//!
//! Checked against restic itself (Debian's 0.14.0, `forget --dry-run --json`, TZ=Europe/Berlin)
//! on 28 backups spanning 2020-W53, leap days, both 2026 DST changes and a tie, for 17
//! policies: the same backups kept for 15; the other 2 (`--keep-monthly 100`,
//! `--keep-yearly 100`) differ only by the oldest backup, which restic keeps since 0.16
//! ("oldest" rule) and 0.14 does not.
//!
//! Not taken from restic: `--keep-tag` and `--keep-within-{hourly,...}` (the interface of
//! issue 14 has none of them). Grouping (restic's `--group-by host,paths`) is prune's:
//! it calls `apply` once per group of backups (`backup::prune::group_of`: per source and
//! scope), so every rule here, `--keep-within` included, counts within one group.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, TimeZone, Timelike, Utc};

use super::duration::CalendarDuration;

/// How many buckets a rule keeps: `N(0)` turns the rule off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Count {
    N(u32),
    #[default]
    Off,
    /// `unlimited`: one per bucket, for ever.
    Unlimited,
}

impl Count {
    fn active(self) -> bool {
        matches!(self, Count::N(n) if n > 0) || self == Count::Unlimited
    }
}

impl FromStr for Count {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "unlimited" => Ok(Count::Unlimited),
            t => match t.parse::<u32>() {
                Ok(0) => Ok(Count::Off),
                Ok(n) => Ok(Count::N(n)),
                Err(_) => Err(format!(
                    "invalid count {s:?}: expected a number or \"unlimited\""
                )),
            },
        }
    }
}

/// `rbackup prune --help`'s description of the policy (for clap's `long_about`), the
/// module doc's rules in the user's words.
pub const PRUNE_POLICY_HELP: &str = "\
Which backups prune keeps (the rules of restic's `forget`):

  The policy is applied to each group of backups on its own (as restic groups by host and
  paths): one group per source and scope. The source is the backup's binlog source (the
  server's identity, or `backup --source`, as `list` shows it), else its recorded source,
  else its host; the scope is what the backup selected: the whole server, which databases,
  which tables, what it leaves out (--ignore-table, --where: shown as a hash, --no-data...),
  not the databases that existed that night. So two servers, or nightly whole-server and
  hourly one-database backups, each keep their own --keep-* counts. Backups made before
  the scope was recorded form groups of their own (scope \"(not recorded) ...\", by what
  they record: whole server or which databases, partial or not), never mixed with newer
  backups: up to the policy's counts of them are kept too.
  Within a group, backups are taken newest first. --keep-last N keeps the N newest.
  --keep-hourly/--keep-daily/--keep-weekly/--keep-monthly/--keep-yearly N put each backup
  in a calendar bucket (hour, day, ISO week from Monday to Sunday, month, year) in the local
  time zone and keep the newest backup of each of the N newest buckets that hold one. A
  backup may fill buckets of several rules; it is kept if any rule keeps it. N may be
  `unlimited`. While a rule still has buckets left at the oldest backup, the oldest backup
  is kept too.
  --keep-within D keeps every backup made after the newest backup of its group minus D,
  where D is like 1y2m3d4h (y years, m months, d days, h hours; also min and s); days,
  months and years count on the calendar, hours as elapsed time. Backups dated in the
  future are kept and do not count as the newest.
  With no --keep-* option (and no [retention] in the config file) nothing is removed.
  Archived binlogs are pruned only where no kept backup of their source (of any
  group) needs them. --dry-run lists each group (source, scope) and its backups with the
  reasons each is kept, or that it would be removed; with --log-format json each backup's
  fate is also a log line with its source and scope.";

/// One `--keep-*` rule that counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    Last,
    Hourly,
    Daily,
    Weekly,
    Monthly,
    Yearly,
}

impl Rule {
    pub const ALL: [Rule; 6] = [
        Rule::Last,
        Rule::Hourly,
        Rule::Daily,
        Rule::Weekly,
        Rule::Monthly,
        Rule::Yearly,
    ];

    fn name(self) -> &'static str {
        match self {
            Rule::Last => "last",
            Rule::Hourly => "hourly",
            Rule::Daily => "daily",
            Rule::Weekly => "weekly",
            Rule::Monthly => "monthly",
            Rule::Yearly => "yearly",
        }
    }
}

/// The policy, as `prune --keep-*` or the config file's `[retention]` give it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Policy {
    pub last: Count,
    pub hourly: Count,
    pub daily: Count,
    pub weekly: Count,
    pub monthly: Count,
    pub yearly: Count,
    pub within: Option<CalendarDuration>,
}

impl Policy {
    pub fn count(&self, rule: Rule) -> Count {
        match rule {
            Rule::Last => self.last,
            Rule::Hourly => self.hourly,
            Rule::Daily => self.daily,
            Rule::Weekly => self.weekly,
            Rule::Monthly => self.monthly,
            Rule::Yearly => self.yearly,
        }
    }

    /// The policy to apply: the command line's when it has any `--keep-*` option (it then
    /// replaces the config file's `[retention]` whole, never field by field, so what runs is
    /// what was typed), otherwise the config file's.
    pub fn from_cli_or_config(cli: Policy, config: Policy) -> Policy {
        if cli == Policy::default() {
            config
        } else {
            cli
        }
    }

    /// No rule given: `apply` keeps everything.
    pub fn is_empty(&self) -> bool {
        Rule::ALL.iter().all(|r| !self.count(*r).active())
            && self.within.is_none_or(|d| d.is_zero())
    }
}

/// "keep 7 daily, all monthly backups and all backups within 2d of the newest", or
/// "empty policy: keep everything".
impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("empty policy: keep everything");
        }
        let counts: Vec<String> = Rule::ALL
            .iter()
            .filter_map(|r| match self.count(*r) {
                Count::N(n) if n > 0 => Some(format!("{n} {}", r.name())),
                Count::Unlimited => Some(format!("all {}", r.name())),
                _ => None,
            })
            .collect();
        f.write_str("keep ")?;
        if !counts.is_empty() {
            write!(f, "{} backups", counts.join(", "))?;
        }
        if let Some(d) = self.within.filter(|d| !d.is_zero()) {
            if !counts.is_empty() {
                f.write_str(" and ")?;
            }
            write!(f, "all backups within {d} of the newest")?;
        }
        Ok(())
    }
}

/// Why a backup is kept; `Display` is the phrase `--dry-run` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The newest of its bucket for this rule (or one of the N newest for `Last`).
    Bucket(Rule),
    /// The oldest backup, kept because this rule still had buckets left.
    Oldest(Rule),
    /// Made within the duration of the newest backup.
    Within(CalendarDuration),
    /// The policy has no rule.
    EmptyPolicy,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Bucket(Rule::Last) => f.write_str("last backup"),
            Reason::Bucket(r) => write!(f, "{} backup", r.name()),
            Reason::Oldest(r) => write!(f, "oldest {} backup", r.name()),
            Reason::Within(d) => write!(f, "within {d}"),
            Reason::EmptyPolicy => f.write_str("empty policy"),
        }
    }
}

/// A kept backup: its index in the slice given to `apply`, and every reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    pub index: usize,
    pub reasons: Vec<Reason>,
}

impl Kept {
    /// The reasons for `--dry-run`: "daily backup, weekly backup".
    pub fn reasons_text(&self) -> String {
        self.reasons
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// What `apply` decided; both lists newest first, indices into the slice given.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Decision {
    pub keep: Vec<Kept>,
    pub remove: Vec<usize>,
}

/// The calendar bucket of `t` for `rule` on the wall clock of `tz`; `Last` has a bucket per
/// backup (its position newest first).
fn bucket<Tz: TimeZone>(rule: Rule, t: DateTime<Utc>, position: usize, tz: &Tz) -> i64 {
    let l = t.with_timezone(tz);
    let (y, m, d, h) = (
        l.year() as i64,
        l.month() as i64,
        l.day() as i64,
        l.hour() as i64,
    );
    match rule {
        Rule::Last => position as i64,
        Rule::Hourly => ((y * 100 + m) * 100 + d) * 100 + h,
        Rule::Daily => (y * 100 + m) * 100 + d,
        Rule::Weekly => {
            let w = l.iso_week();
            w.year() as i64 * 100 + w.week() as i64
        }
        Rule::Monthly => y * 100 + m,
        Rule::Yearly => y,
    }
}

/// Applies `policy` to backups made at `times` (any order), with calendar buckets in `tz`
/// and `now` to recognise backups from the future (see the module doc).
pub fn apply<Tz: TimeZone>(
    times: &[DateTime<Utc>],
    policy: &Policy,
    tz: &Tz,
    now: DateTime<Utc>,
) -> Decision {
    let mut order: Vec<usize> = (0..times.len()).collect();
    order.sort_by(|a, b| times[*b].cmp(&times[*a])); // stable: ties keep the caller's order
    if policy.is_empty() {
        return Decision {
            keep: order
                .iter()
                .map(|&index| Kept {
                    index,
                    reasons: vec![Reason::EmptyPolicy],
                })
                .collect(),
            remove: Vec::new(),
        };
    }
    let within_cutoff = policy.within.filter(|d| !d.is_zero()).map(|d| {
        // The newest backup not in the future; with none, every backup counts as within.
        let newest = order.iter().map(|&i| times[i]).find(|t| *t < now);
        (d, newest.map(|n| d.before(n, tz)))
    });
    struct State {
        rule: Rule,
        left: Count,
        last: Option<i64>,
    }
    let mut states: Vec<State> = Rule::ALL
        .iter()
        .map(|&rule| State {
            rule,
            left: policy.count(rule),
            last: None,
        })
        .filter(|s| s.left.active())
        .collect();
    let mut decision = Decision::default();
    for (position, &index) in order.iter().enumerate() {
        let t = times[index];
        let oldest = position + 1 == order.len();
        let mut reasons = Vec::new();
        if let Some((d, cutoff)) = within_cutoff
            && cutoff.is_none_or(|c| t > c)
        {
            reasons.push(Reason::Within(d));
        }
        for s in states.iter_mut().filter(|s| s.left.active()) {
            let key = bucket(s.rule, t, position, tz);
            let new_bucket = s.last != Some(key);
            if new_bucket || oldest {
                reasons.push(if new_bucket {
                    Reason::Bucket(s.rule)
                } else {
                    Reason::Oldest(s.rule)
                });
                s.last = Some(key);
                if let Count::N(n) = s.left {
                    s.left = if n > 1 { Count::N(n - 1) } else { Count::Off };
                }
            }
        }
        if reasons.is_empty() {
            decision.remove.push(index);
        } else {
            decision.keep.push(Kept { index, reasons });
        }
    }
    decision
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, NaiveDate};
    use chrono_tz::Europe::Berlin;
    use chrono_tz::Tz;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }
    /// A wall-clock time in `tz` ("2026-03-29 01:30"); panics if it does not exist or is
    /// ambiguous, so tests say exactly which instant they mean.
    fn at(tz: &Tz, s: &str) -> DateTime<Utc> {
        let naive = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap();
        tz.from_local_datetime(&naive)
            .single()
            .unwrap()
            .with_timezone(&Utc)
    }
    fn far_future() -> DateTime<Utc> {
        utc("2100-01-01T00:00:00Z")
    }
    fn kept_times(times: &[DateTime<Utc>], d: &Decision) -> Vec<DateTime<Utc>> {
        d.keep.iter().map(|k| times[k.index]).collect()
    }
    fn policy(f: impl FnOnce(&mut Policy)) -> Policy {
        let mut p = Policy::default();
        f(&mut p);
        p
    }
    /// One backup a day at 23:30 UTC from `from` for `n` days, oldest first.
    fn nightly(from: &str, n: i64) -> Vec<DateTime<Utc>> {
        let start = NaiveDate::parse_from_str(from, "%Y-%m-%d")
            .unwrap()
            .and_hms_opt(23, 30, 0)
            .unwrap()
            .and_utc();
        (0..n).map(|i| start + Duration::days(i)).collect()
    }

    #[test]
    fn empty_policy_removes_nothing() {
        let times = nightly("2026-01-01", 10);
        let d = apply(&times, &Policy::default(), &Utc, far_future());
        assert!(d.remove.is_empty());
        assert_eq!(d.keep.len(), 10);
        assert!(
            d.keep
                .iter()
                .all(|k| k.reasons == vec![Reason::EmptyPolicy])
        );
        // Zero counts and a zero duration are still empty.
        let zero = policy(|p| {
            p.daily = "0".parse().unwrap();
            p.within = Some("0h".parse().unwrap());
        });
        assert!(zero.is_empty());
        assert!(apply(&times, &zero, &Utc, far_future()).remove.is_empty());
        assert_eq!(apply(&[], &zero, &Utc, far_future()), Decision::default());
    }

    #[test]
    fn keep_last_keeps_the_newest_n_newest_first() {
        let times = nightly("2026-01-01", 5);
        let d = apply(
            &times,
            &policy(|p| p.last = Count::N(2)),
            &Utc,
            far_future(),
        );
        assert_eq!(
            d.keep.iter().map(|k| k.index).collect::<Vec<_>>(),
            vec![4, 3]
        );
        assert_eq!(d.remove, vec![2, 1, 0]);
        assert_eq!(d.keep[0].reasons, vec![Reason::Bucket(Rule::Last)]);
    }

    #[test]
    fn restic_documented_example_four_sundays() {
        // restic's doc: a backup every Sunday for 12 weeks, --keep-daily 4 keeps the last four.
        let times: Vec<_> = (0..12)
            .map(|i| utc("2019-09-01T11:00:00Z") + Duration::weeks(i))
            .collect();
        let d = apply(
            &times,
            &policy(|p| p.daily = Count::N(4)),
            &Utc,
            far_future(),
        );
        assert_eq!(
            kept_times(&times, &d),
            vec![times[11], times[10], times[9], times[8]]
        );
        assert_eq!(d.remove.len(), 8);
    }

    #[test]
    fn the_newest_of_each_bucket_is_kept_and_rules_are_ored() {
        // Three backups a day for 3 days.
        let mut times = Vec::new();
        for day in 1..=3 {
            for hour in [1, 9, 17] {
                times.push(utc(&format!("2026-05-0{day}T{hour:02}:00:00Z")));
            }
        }
        let d = apply(
            &times,
            &policy(|p| {
                p.last = Count::N(2);
                p.daily = Count::N(2);
            }),
            &Utc,
            far_future(),
        );
        let kept: Vec<_> = d
            .keep
            .iter()
            .map(|k| (times[k.index], k.reasons.clone()))
            .collect();
        assert_eq!(
            kept,
            vec![
                (
                    utc("2026-05-03T17:00:00Z"),
                    vec![Reason::Bucket(Rule::Last), Reason::Bucket(Rule::Daily)]
                ),
                (
                    utc("2026-05-03T09:00:00Z"),
                    vec![Reason::Bucket(Rule::Last)]
                ),
                (
                    utc("2026-05-02T17:00:00Z"),
                    vec![Reason::Bucket(Rule::Daily)]
                ),
            ]
        );
    }

    #[test]
    fn the_oldest_backup_is_kept_while_a_rule_has_buckets_left() {
        // Two backups on one day, --keep-daily 5: the day's newest as "daily", and the
        // oldest as "oldest daily" since four buckets are left unfilled.
        let times = vec![utc("2026-05-01T01:00:00Z"), utc("2026-05-01T20:00:00Z")];
        let d = apply(
            &times,
            &policy(|p| p.daily = Count::N(5)),
            &Utc,
            far_future(),
        );
        assert_eq!(d.keep[0].reasons, vec![Reason::Bucket(Rule::Daily)]);
        assert_eq!(
            d.keep[1],
            Kept {
                index: 0,
                reasons: vec![Reason::Oldest(Rule::Daily)]
            }
        );
        assert_eq!(d.keep[1].reasons[0].to_string(), "oldest daily backup");
        // With the count used up, it goes.
        let d = apply(
            &times,
            &policy(|p| p.daily = Count::N(1)),
            &Utc,
            far_future(),
        );
        assert_eq!(d.remove, vec![0]);
    }

    #[test]
    fn unlimited_keeps_one_per_bucket_for_ever() {
        let times = nightly("2000-01-01", 366 + 365 + 365); // to 2002-12-31
        let d = apply(
            &times,
            &policy(|p| p.monthly = Count::Unlimited),
            &Utc,
            far_future(),
        );
        // 36 months, plus the oldest (2000-01-01) as "oldest monthly".
        assert_eq!(d.keep.len(), 37);
        assert_eq!(
            d.keep.last().unwrap().reasons,
            vec![Reason::Oldest(Rule::Monthly)]
        );
    }

    #[test]
    fn ties_keep_the_callers_order() {
        let t = utc("2026-05-01T01:00:00Z");
        let times = vec![t, t, utc("2026-04-01T01:00:00Z")];
        let d = apply(
            &times,
            &policy(|p| p.last = Count::N(1)),
            &Utc,
            far_future(),
        );
        assert_eq!(d.keep.iter().map(|k| k.index).collect::<Vec<_>>(), vec![0]);
        assert_eq!(d.remove, vec![1, 2]);
        // Equal times are in one daily bucket: the first given fills it.
        let d = apply(
            &times,
            &policy(|p| p.daily = Count::N(1)),
            &Utc,
            far_future(),
        );
        assert_eq!(d.keep.iter().map(|k| k.index).collect::<Vec<_>>(), vec![0]);
    }

    #[test]
    fn iso_week_53_is_one_weekly_bucket_across_new_year() {
        // 2020-W53 runs from Monday 2020-12-28 to Sunday 2021-01-03; 2021-W01 starts on
        // Monday 2021-01-04. Nightly backups 2020-12-20 .. 2021-01-10.
        let times = nightly("2020-12-20", 22);
        let d = apply(
            &times,
            &policy(|p| p.weekly = Count::N(3)),
            &Utc,
            far_future(),
        );
        assert_eq!(
            kept_times(&times, &d),
            vec![
                utc("2021-01-10T23:30:00Z"), // Sunday of 2021-W01
                utc("2021-01-03T23:30:00Z"), // Sunday of 2020-W53, a day of 2021
                utc("2020-12-27T23:30:00Z"), // Sunday of 2020-W52
            ]
        );
        // Yearly buckets are calendar years: the 2020 bucket's newest is 2020-12-31.
        let d = apply(
            &times,
            &policy(|p| p.yearly = Count::N(1)),
            &Utc,
            far_future(),
        );
        assert_eq!(kept_times(&times, &d), vec![utc("2021-01-10T23:30:00Z")]);
        let d = apply(
            &times,
            &policy(|p| p.yearly = Count::N(2)),
            &Utc,
            far_future(),
        );
        assert_eq!(
            kept_times(&times, &d),
            vec![utc("2021-01-10T23:30:00Z"), utc("2020-12-31T23:30:00Z")]
        );
    }

    #[test]
    fn a_leap_day_is_its_own_daily_bucket_and_in_february() {
        let times = nightly("2024-02-27", 4); // 27, 28, 29 Feb, 1 Mar
        let d = apply(
            &times,
            &policy(|p| p.daily = Count::N(3)),
            &Utc,
            far_future(),
        );
        assert_eq!(
            kept_times(&times, &d),
            vec![
                utc("2024-03-01T23:30:00Z"),
                utc("2024-02-29T23:30:00Z"),
                utc("2024-02-28T23:30:00Z")
            ]
        );
        let d = apply(
            &times,
            &policy(|p| p.monthly = Count::N(2)),
            &Utc,
            far_future(),
        );
        assert_eq!(
            kept_times(&times, &d),
            vec![utc("2024-03-01T23:30:00Z"), utc("2024-02-29T23:30:00Z")]
        );
        // --keep-within 1y from the leap day reaches back to 2023-03-01 (Go's normalisation
        // of "2023-02-29"): a backup at 2023-03-01 00:00 is not strictly after it.
        let times = vec![
            utc("2023-02-28T12:00:00Z"),
            utc("2023-03-01T00:00:00Z"),
            utc("2023-03-01T00:00:01Z"),
            utc("2024-02-29T00:00:00Z"),
        ];
        let d = apply(
            &times,
            &policy(|p| p.within = Some("1y".parse().unwrap())),
            &Utc,
            far_future(),
        );
        assert_eq!(
            d.keep.iter().map(|k| k.index).collect::<Vec<_>>(),
            vec![3, 2]
        );
    }

    #[test]
    fn days_follow_the_zone_not_utc() {
        // 23:30 UTC is already the next day in Berlin: nightly backups at 23:30Z fall in
        // Berlin days one later, so a backup at 2026-06-01 21:30Z and one at 23:30Z are in
        // different Berlin days (23:30 and 01:30) but the same UTC day.
        let times = vec![utc("2026-06-01T21:30:00Z"), utc("2026-06-01T23:30:00Z")];
        let p = policy(|p| p.daily = Count::N(1));
        assert_eq!(apply(&times, &p, &Utc, far_future()).remove, vec![0]);
        let d = apply(
            &times,
            &policy(|p| p.daily = Count::N(2)),
            &Berlin,
            far_future(),
        );
        assert_eq!(d.keep[1].reasons, vec![Reason::Bucket(Rule::Daily)]);
    }

    #[test]
    fn dst_fall_back_repeated_hour_is_one_hourly_bucket() {
        // Berlin 2026-10-25: 02:00-03:00 happens twice (CEST 00:00Z-01:00Z, CET 01:00Z-02:00Z).
        let times = vec![
            utc("2026-10-24T23:30:00Z"), // 01:30 CEST
            utc("2026-10-25T00:15:00Z"), // 02:15 CEST
            utc("2026-10-25T00:45:00Z"), // 02:45 CEST
            utc("2026-10-25T01:15:00Z"), // 02:15 CET
            utc("2026-10-25T02:15:00Z"), // 03:15 CET
        ];
        let d = apply(
            &times,
            &policy(|p| p.hourly = Count::N(3)),
            &Berlin,
            far_future(),
        );
        // Buckets 03h, 02h (both occurrences: the newest, 02:15 CET), 01h.
        assert_eq!(
            d.keep.iter().map(|k| k.index).collect::<Vec<_>>(),
            vec![4, 3, 0]
        );
        assert_eq!(d.remove, vec![2, 1]);
        // In UTC the same backups fill four hours (23h, 0h, 1h, 2h).
        let d = apply(
            &times,
            &policy(|p| p.hourly = Count::N(5)),
            &Utc,
            far_future(),
        );
        assert_eq!(
            d.keep.iter().map(|k| k.index).collect::<Vec<_>>(),
            vec![4, 3, 2, 0]
        );
        // The 25-hour day is one daily bucket.
        let d = apply(
            &times,
            &policy(|p| p.daily = Count::N(1)),
            &Berlin,
            far_future(),
        );
        assert_eq!(d.keep.iter().map(|k| k.index).collect::<Vec<_>>(), vec![4]);
    }

    #[test]
    fn dst_spring_forward_day_is_one_daily_bucket() {
        let tz = Berlin;
        // 2026-03-29 has no 02:xx in Berlin. Backups at 00:30, 01:59 and 03:00 that day, and
        // 23:30 the day before.
        let times = vec![
            at(&tz, "2026-03-28 23:30"),
            at(&tz, "2026-03-29 00:30"),
            at(&tz, "2026-03-29 01:59"),
            at(&tz, "2026-03-29 03:00"),
        ];
        let d = apply(
            &times,
            &policy(|p| p.daily = Count::N(2)),
            &tz,
            far_future(),
        );
        assert_eq!(
            d.keep.iter().map(|k| k.index).collect::<Vec<_>>(),
            vec![3, 0]
        );
        // 01:59 CET and 03:00 CEST are one minute apart but different hours.
        let d = apply(
            &times,
            &policy(|p| p.hourly = Count::N(2)),
            &tz,
            far_future(),
        );
        assert_eq!(
            d.keep.iter().map(|k| k.index).collect::<Vec<_>>(),
            vec![3, 2]
        );
    }

    #[test]
    fn keep_within_is_strictly_after_the_newest_minus_the_duration() {
        let times = vec![
            utc("2026-05-01T12:00:00Z"),
            utc("2026-05-01T12:00:01Z"),
            utc("2026-05-03T12:00:00Z"),
        ];
        let d = apply(
            &times,
            &policy(|p| p.within = Some("2d".parse().unwrap())),
            &Utc,
            far_future(),
        );
        assert_eq!(
            d.keep.iter().map(|k| k.index).collect::<Vec<_>>(),
            vec![2, 1]
        );
        assert_eq!(d.remove, vec![0]);
        assert_eq!(
            d.keep[0].reasons,
            vec![Reason::Within("2d".parse().unwrap())]
        );
        assert_eq!(d.keep[0].reasons[0].to_string(), "within 2d");
        let both = apply(
            &times,
            &policy(|p| {
                p.within = Some("2d".parse().unwrap());
                p.last = Count::N(1);
            }),
            &Utc,
            far_future(),
        );
        assert_eq!(both.keep[0].reasons_text(), "within 2d, last backup");
    }

    #[test]
    fn keep_within_counts_days_on_the_wall_clock_across_dst() {
        // Newest: 2026-03-29 12:00 CEST (10:00Z). One day before on the wall clock is
        // 2026-03-28 12:00 CET (11:00Z), only 23 hours earlier.
        let times = vec![
            utc("2026-03-28T10:30:00Z"),
            utc("2026-03-28T11:30:00Z"),
            utc("2026-03-29T10:00:00Z"),
        ];
        let d = apply(
            &times,
            &policy(|p| p.within = Some("1d".parse().unwrap())),
            &Berlin,
            far_future(),
        );
        assert_eq!(d.remove, vec![0]);
        // 24h is elapsed time: both stay.
        let d = apply(
            &times,
            &policy(|p| p.within = Some("24h".parse().unwrap())),
            &Berlin,
            far_future(),
        );
        assert!(d.remove.is_empty());
    }

    #[test]
    fn keep_within_is_relative_to_the_newest_backup_not_in_the_future() {
        let now = utc("2026-05-10T00:00:00Z");
        let times = vec![
            utc("2026-05-01T00:00:00Z"),
            utc("2026-05-08T00:00:00Z"),
            utc("2026-05-09T00:00:00Z"),
            utc("2027-01-01T00:00:00Z"), // a clock-skewed backup from the future
        ];
        let d = apply(
            &times,
            &policy(|p| p.within = Some("2d".parse().unwrap())),
            &Utc,
            now,
        );
        assert_eq!(
            d.keep.iter().map(|k| k.index).collect::<Vec<_>>(),
            vec![3, 2, 1]
        );
        assert_eq!(d.remove, vec![0]);
        // All in the future: nothing is older than "the newest", so all are kept.
        let d = apply(
            &times,
            &policy(|p| p.within = Some("2d".parse().unwrap())),
            &Utc,
            utc("2000-01-01T00:00:00Z"),
        );
        assert!(d.remove.is_empty());
    }

    #[test]
    fn a_gfs_history_over_years() {
        // Nightly from 2023-01-01 to Thursday 2026-01-01, as restic's doc counts them.
        let times = nightly("2023-01-01", 3 * 365 + 2);
        let p = policy(|p| {
            p.daily = Count::N(7);
            p.weekly = Count::N(5);
            p.monthly = Count::N(12);
            p.yearly = Count::N(3);
        });
        let d = apply(&times, &p, &Utc, far_future());
        let kept = kept_times(&times, &d);
        assert_eq!(kept[0], utc("2026-01-01T23:30:00Z"));
        // Dailies 2025-12-26 .. 2026-01-01. Weeklies: 2026-W01 (01-01) and 2025-W52 (12-28)
        // are dailies already; then 12-21, 12-14, 12-07. Monthlies: 01-01 and 12-31 are
        // dailies; then the last day of each month back to 2025-02-28. Yearlies: 2026 and
        // 2025 are kept already, then 2024-12-31; the count is used up, so 2023 goes.
        for t in ["2025-12-07", "2025-11-30", "2025-02-28", "2024-12-31"] {
            assert!(kept.contains(&utc(&format!("{t}T23:30:00Z"))), "{t}");
        }
        for t in [
            "2025-11-23",
            "2025-12-01",
            "2025-01-31",
            "2024-12-30",
            "2023-01-01",
        ] {
            assert!(!kept.contains(&utc(&format!("{t}T23:30:00Z"))), "{t}");
        }
        assert_eq!(kept.len(), 7 + 3 + 10 + 1);
        let ny = d
            .keep
            .iter()
            .find(|k| times[k.index] == utc("2026-01-01T23:30:00Z"))
            .unwrap();
        assert_eq!(
            ny.reasons,
            vec![
                Reason::Bucket(Rule::Daily),
                Reason::Bucket(Rule::Weekly),
                Reason::Bucket(Rule::Monthly),
                Reason::Bucket(Rule::Yearly)
            ]
        );
        assert_eq!(
            p.to_string(),
            "keep 7 daily, 5 weekly, 12 monthly, 3 yearly backups"
        );
    }

    #[test]
    fn a_command_line_policy_replaces_the_config_file_whole() {
        let config = policy(|p| {
            p.daily = Count::N(7);
            p.monthly = Count::N(12);
        });
        let cli = policy(|p| p.last = Count::N(3));
        assert_eq!(Policy::from_cli_or_config(cli, config), cli);
        assert_eq!(
            Policy::from_cli_or_config(Policy::default(), config),
            config
        );
    }

    #[test]
    fn the_help_names_every_option() {
        for flag in [
            "--keep-last",
            "--keep-hourly",
            "--keep-daily",
            "--keep-weekly",
            "--keep-monthly",
            "--keep-yearly",
            "--keep-within",
            "unlimited",
            "ISO week",
            "--dry-run",
        ] {
            assert!(PRUNE_POLICY_HELP.contains(flag), "{flag}");
        }
    }

    #[test]
    fn policy_prints_for_dry_run() {
        let p = policy(|p| {
            p.last = Count::N(3);
            p.monthly = Count::Unlimited;
            p.within = Some("2d".parse().unwrap());
        });
        assert_eq!(
            p.to_string(),
            "keep 3 last, all monthly backups and all backups within 2d of the newest"
        );
        assert_eq!(
            Policy::default().to_string(),
            "empty policy: keep everything"
        );
        assert_eq!("unlimited".parse::<Count>(), Ok(Count::Unlimited));
        assert!("-1".parse::<Count>().unwrap_err().contains("\"-1\""));
    }
}
