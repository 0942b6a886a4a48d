//! Durations as the user writes them for `--keep-within`, `--max-age`, `--max-binlog-lag`
//! and `--max-drill-age` ("1y2m3d4h", "36h", "7d", "15min"), and how they are subtracted
//! from a point in time.
//!
//! Owns: parsing, printing, and "this instant minus that duration" in a time zone. Not for:
//! deciding what to keep (`retention`) or what is too old (`check`).
//!
//! The units are restic's (`y` years, `m` months, `d` days, `h` hours), so a restic
//! `--keep-within` value means the same here, plus two of our own for the lags a binlog
//! archiver has: `min` minutes and `s` seconds. Note `m` is months, as in restic; minutes are
//! `min`. Stricter than restic: no sign, no empty string, each unit at most once.
//!
//! Subtraction follows restic (Go's `AddDate` then `Add`): years, months and days move the
//! wall-clock date in the given time zone and overflow normalises the way Go does
//! (2024-03-31 minus 1m is "2024-02-31", that is 2024-03-02; minus 1y from 2024-02-29 is
//! 2023-03-01), then hours, minutes and seconds are taken off as elapsed time. A wall-clock
//! time that falls in a DST gap or overlap is resolved as Go's `time.Date` does it.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Days, NaiveDate, NaiveDateTime, Offset, TimeZone, Utc};

/// A duration made of calendar parts (years, months, days) and elapsed parts (hours,
/// minutes, seconds). All zero is a valid value ("0h") but never produced by parsing an
/// empty string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CalendarDuration {
    pub years: u32,
    pub months: u32,
    pub days: u32,
    pub hours: u32,
    pub minutes: u32,
    pub seconds: u32,
}

/// Why a duration string was refused; its `Display` names the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {input:?}: {why} (expected e.g. 7d, 36h, 1y2m3d4h, 15min, 90s)")]
pub struct DurationError {
    pub input: String,
    pub why: String,
}

impl CalendarDuration {
    pub fn is_zero(&self) -> bool {
        *self == CalendarDuration::default()
    }

    /// The instant `self` before `t`, with the calendar parts counted on the wall clock of
    /// `tz` (see the module doc for the exact rule).
    pub fn before<Tz: TimeZone>(&self, t: DateTime<Utc>, tz: &Tz) -> DateTime<Utc> {
        // Durations so long that they reach before chrono's first date mean "since ever".
        self.checked_before(t, tz)
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }

    fn checked_before<Tz: TimeZone>(&self, t: DateTime<Utc>, tz: &Tz) -> Option<DateTime<Utc>> {
        let local = t.with_timezone(tz).naive_local();
        let total_months = local.year() as i64 * 12 + local.month0() as i64
            - self.years as i64 * 12
            - self.months as i64;
        let (y, m0) = (total_months.div_euclid(12), total_months.rem_euclid(12));
        let first = NaiveDate::from_ymd_opt(i32::try_from(y).ok()?, m0 as u32 + 1, 1)?;
        // Go normalises day overflow by counting days from the first of the month.
        let day_offset = local.day() as i64 - 1 - self.days as i64;
        let date = if day_offset >= 0 {
            first.checked_add_days(Days::new(day_offset as u64))?
        } else {
            first.checked_sub_days(Days::new(day_offset.unsigned_abs()))?
        };
        let wall = NaiveDateTime::new(date, local.time());
        let elapsed = chrono::Duration::hours(self.hours as i64)
            + chrono::Duration::minutes(self.minutes as i64)
            + chrono::Duration::seconds(self.seconds as i64);
        resolve_like_go(wall, tz)?.checked_sub_signed(elapsed)
    }

    /// Whether an age (elapsed time since `then`, at `now`) exceeds this duration, counted
    /// back from `now` on the wall clock of `tz`. An age exactly equal to the limit does not.
    pub fn exceeded_by<Tz: TimeZone>(
        &self,
        then: DateTime<Utc>,
        now: DateTime<Utc>,
        tz: &Tz,
    ) -> bool {
        then < self.before(now, tz)
    }
}

/// Go's `time.Date` for a wall-clock time: take the offset in force at the wall time read as
/// UTC; if that offset does not hold at the resulting instant, take the one that does.
fn resolve_like_go<Tz: TimeZone>(wall: NaiveDateTime, tz: &Tz) -> Option<DateTime<Utc>> {
    let offset_at =
        |utc: NaiveDateTime| tz.offset_from_utc_datetime(&utc).fix().local_minus_utc() as i64;
    let first = offset_at(wall);
    let guess = wall.checked_sub_signed(chrono::Duration::seconds(first))?;
    let second = offset_at(guess);
    let offset = if second == first { first } else { second };
    Some(
        wall.checked_sub_signed(chrono::Duration::seconds(offset))?
            .and_utc(),
    )
}

impl FromStr for CalendarDuration {
    type Err = DurationError;

    fn from_str(input: &str) -> Result<Self, DurationError> {
        let err = |why: &str| DurationError {
            input: input.to_string(),
            why: why.to_string(),
        };
        let s = input.trim();
        if s.is_empty() {
            return Err(err("empty"));
        }
        let mut d = CalendarDuration::default();
        let mut seen: Vec<&str> = Vec::new();
        let mut rest = s;
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(err("expected a number"));
            }
            let n: u32 = rest[..digits]
                .parse()
                .map_err(|_| err("number too large"))?;
            rest = &rest[digits..];
            let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
            if unit_len == 0 {
                return Err(err(&format!("no unit after {n}")));
            }
            let unit = &rest[..unit_len];
            rest = &rest[unit_len..];
            let slot = match unit {
                "y" => &mut d.years,
                "m" => &mut d.months,
                "d" => &mut d.days,
                "h" => &mut d.hours,
                "min" => &mut d.minutes,
                "s" => &mut d.seconds,
                other => {
                    return Err(err(&format!(
                        "unknown unit {other:?} (units: y, m = months, d, h, min, s)"
                    )));
                }
            };
            if seen.contains(&unit) {
                return Err(err(&format!("unit {unit:?} given twice")));
            }
            seen.push(unit);
            *slot = n;
        }
        Ok(d)
    }
}

impl fmt::Display for CalendarDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_zero() {
            return f.write_str("0h");
        }
        for (n, unit) in [
            (self.years, "y"),
            (self.months, "m"),
            (self.days, "d"),
            (self.hours, "h"),
            (self.minutes, "min"),
            (self.seconds, "s"),
        ] {
            if n != 0 {
                write!(f, "{n}{unit}")?;
            }
        }
        Ok(())
    }
}

/// An elapsed time for messages: "2d 3h", "41min 5s", "12s". Negative ages (a time in the
/// future) print with a leading "-".
pub fn human_age(age: chrono::Duration) -> String {
    let total = age.num_seconds();
    let sign = if total < 0 { "-" } else { "" };
    let s = total.unsigned_abs();
    let (d, h, m, sec) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    let parts: Vec<String> = [(d, "d"), (h, "h"), (m, "min"), (sec, "s")]
        .into_iter()
        .filter(|(n, _)| *n != 0)
        .take(2)
        .map(|(n, u)| format!("{n}{u}"))
        .collect();
    if parts.is_empty() {
        "0s".to_string()
    } else {
        format!("{sign}{}", parts.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::Europe::Berlin;

    fn d(s: &str) -> CalendarDuration {
        s.parse().unwrap()
    }
    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn parses_restic_forms_and_ours() {
        assert_eq!(
            d("1y2m3d4h"),
            CalendarDuration {
                years: 1,
                months: 2,
                days: 3,
                hours: 4,
                ..Default::default()
            }
        );
        assert_eq!(
            d("36h"),
            CalendarDuration {
                hours: 36,
                ..Default::default()
            }
        );
        assert_eq!(
            d("7d"),
            CalendarDuration {
                days: 7,
                ..Default::default()
            }
        );
        assert_eq!(
            d("15min"),
            CalendarDuration {
                minutes: 15,
                ..Default::default()
            }
        );
        assert_eq!(
            d("1h30min"),
            CalendarDuration {
                hours: 1,
                minutes: 30,
                ..Default::default()
            }
        );
        assert_eq!(
            d(" 90s "),
            CalendarDuration {
                seconds: 90,
                ..Default::default()
            }
        );
        // Order is free, as in restic.
        assert_eq!(
            d("4h1y"),
            CalendarDuration {
                years: 1,
                hours: 4,
                ..Default::default()
            }
        );
    }

    #[test]
    fn refuses_bad_input_naming_it() {
        for bad in [
            "",
            "  ",
            "7",
            "d",
            "7w",
            "-1d",
            "1d2d",
            "7 d",
            "1.5h",
            "99999999999h",
            "7D",
        ] {
            let e = bad.parse::<CalendarDuration>().unwrap_err();
            assert!(e.to_string().contains(&format!("{bad:?}")), "{e}");
        }
        assert!(
            "7w".parse::<CalendarDuration>()
                .unwrap_err()
                .to_string()
                .contains("unknown unit \"w\"")
        );
    }

    #[test]
    fn prints_back_what_it_parsed() {
        for s in ["1y2m3d4h", "36h", "7d", "15min", "2d30s"] {
            assert_eq!(d(s).to_string(), s);
        }
        assert_eq!(CalendarDuration::default().to_string(), "0h");
    }

    #[test]
    fn months_overflow_like_go() {
        // 2024-03-31 minus one month: "February 31st" normalises to 2024-03-02.
        assert_eq!(
            d("1m").before(utc("2024-03-31T12:00:00Z"), &Utc),
            utc("2024-03-02T12:00:00Z")
        );
        // Leap day minus one year: "2023-02-29" is 2023-03-01.
        assert_eq!(
            d("1y").before(utc("2024-02-29T00:00:00Z"), &Utc),
            utc("2023-03-01T00:00:00Z")
        );
        // Days cross a year boundary backwards.
        assert_eq!(
            d("3d").before(utc("2021-01-01T06:00:00Z"), &Utc),
            utc("2020-12-29T06:00:00Z")
        );
        // Hours are elapsed time, after the calendar part.
        assert_eq!(
            d("1d2h").before(utc("2021-01-01T01:00:00Z"), &Utc),
            utc("2020-12-30T23:00:00Z")
        );
    }

    #[test]
    fn days_are_wall_clock_days_across_dst() {
        // Berlin springs forward on 2026-03-29 at 02:00 CET: that day has 23 hours, so one
        // day before 2026-03-29 12:00 CEST (10:00Z) is 2026-03-28 12:00 CET (11:00Z).
        assert_eq!(
            d("1d").before(utc("2026-03-29T10:00:00Z"), &Berlin),
            utc("2026-03-28T11:00:00Z")
        );
        // 24h is elapsed time.
        assert_eq!(
            d("24h").before(utc("2026-03-29T10:00:00Z"), &Berlin),
            utc("2026-03-28T10:00:00Z")
        );
        // Falling back on 2026-10-25 (03:00 CEST -> 02:00 CET): a 25-hour day.
        assert_eq!(
            d("1d").before(utc("2026-10-25T11:00:00Z"), &Berlin),
            utc("2026-10-24T10:00:00Z")
        );
    }

    #[test]
    fn wall_times_in_a_dst_gap_or_overlap_resolve_like_go() {
        // One day before 2026-03-30 02:30 CEST is 2026-03-29 02:30, which does not exist in
        // Berlin; Go reads it at the offset before the gap (+01:00): 01:30Z.
        assert_eq!(
            d("1d").before(utc("2026-03-30T00:30:00Z"), &Berlin),
            utc("2026-03-29T01:30:00Z")
        );
        // One day before 2026-10-26 02:30 CET is 2026-10-25 02:30, which happens twice; Go
        // takes the second (CET, 01:30Z).
        assert_eq!(
            d("1d").before(utc("2026-10-26T01:30:00Z"), &Berlin),
            utc("2026-10-25T01:30:00Z")
        );
    }

    #[test]
    fn exceeded_only_strictly_past_the_limit() {
        let now = utc("2026-01-10T12:00:00Z");
        let limit = d("26h");
        assert!(!limit.exceeded_by(utc("2026-01-09T10:00:00Z"), now, &Utc));
        assert!(limit.exceeded_by(utc("2026-01-09T09:59:59Z"), now, &Utc));
    }

    #[test]
    fn durations_longer_than_the_calendar_mean_since_ever() {
        let now = utc("2026-01-10T12:00:00Z");
        for huge in ["4000000000y", "4000000000m", "4000000000d", "4000000000h"] {
            assert_eq!(
                d(huge).before(now, &Utc),
                DateTime::<Utc>::MIN_UTC,
                "{huge}"
            );
            assert!(!d(huge).exceeded_by(utc("1970-01-01T00:00:00Z"), now, &Utc));
        }
    }

    #[test]
    fn human_ages() {
        assert_eq!(human_age(chrono::Duration::seconds(0)), "0s");
        assert_eq!(human_age(chrono::Duration::seconds(12)), "12s");
        assert_eq!(
            human_age(chrono::Duration::seconds(2 * 86_400 + 3 * 3600 + 7)),
            "2d 3h"
        );
        assert_eq!(
            human_age(chrono::Duration::seconds(41 * 60 + 5)),
            "41min 5s"
        );
        assert_eq!(human_age(chrono::Duration::seconds(-90)), "-1min 30s");
    }
}
