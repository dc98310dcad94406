//! Many series in one long-format table, for a global forecaster (one model over all series).
//!
//! A panel file has one row per (series, time): an optional id column, an optional time
//! column, the target, and known covariates (values known in advance, such as prices or
//! holidays). Rows of a series may be grouped or interleaved with other series; series keep
//! the order in which their ids first appear, and each is sorted by time. The frequency is
//! inferred from the most common time step; gaps are filled with missing (NaN) targets. Dates
//! that are all weekdays, a day apart and three days over a weekend, are business days
//! ([`Freq::BusinessDaily`]): weekends are not steps, and a missing weekday (a holiday) is a gap.
//!
//! ```
//! use lstm::data::panel::{parse_panel, Freq, PanelSpec};
//! let text = "series,t,value\nA,1,10\nA,2,11\nA,3,12\nB,5,1\nB,6,\n";
//! let spec = PanelSpec {
//!     id_column: Some("series".into()),
//!     time_column: Some("t".into()),
//!     target: "value".into(),
//!     known: vec![],
//!     freq: None,
//! };
//! let panel = parse_panel(text, "m4.csv", &spec).unwrap();
//! assert_eq!(panel.series.len(), 2);
//! assert_eq!(panel.freq, Freq::Integer(1));
//! // B's empty last cell is after its last value (a forecast's row), not a missing target
//! assert_eq!((panel.summary().missing, panel.summary().after_last), (0, 1));
//! let next = panel.series[1].future_times(2, panel.freq);
//! assert_eq!(next[0].to_string(), "7");
//! ```

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use crate::data::tabular::Delimited;
use crate::error::{Error, Result};

/// Which columns of a long-format file hold what.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PanelSpec {
    /// The series id column; `None`: the whole file is one series, named after the target.
    pub id_column: Option<String>,
    /// The time column; `None`: each series is indexed 1, 2, ... in file order.
    pub time_column: Option<String>,
    /// The column to forecast. Empty cells and `NaN`/`nan`/`NA` are missing values.
    pub target: String,
    /// Known covariates: numeric columns known in advance; no cell may be empty.
    pub known: Vec<String>,
    /// The frequency the data is known to have (a trained model's), which decides what the
    /// times alone leave open: weekdays are read as business days when this is
    /// [`Freq::BusinessDaily`] (those of one week too, with no weekend between them), and as
    /// daily data with the weekends missing when it is another frequency. `None`: inferred.
    pub freq: Option<Freq>,
}

/// How the times of a file are written; every time of a file is written the same way.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TimeKind {
    /// An integer index (`1`, `2`, ...; a bare year is read as an index too).
    Index,
    /// A month, `YYYY-MM`.
    Month,
    /// A date, `YYYY-MM-DD`.
    Date,
    /// A date and time, `YYYY-MM-DD HH:MM[:SS]` or with `T` between them, and an optional
    /// UTC offset.
    DateTime {
        /// The seconds are written (`HH:MM:SS`).
        seconds: bool,
        /// Digits of a zero fraction of a second written after the seconds (`.000`, as
        /// JavaScript's `toISOString` writes; 0: none). Times are whole seconds: another
        /// fraction is not a time this reads.
        fraction: u8,
        /// A `T` separates date and time (else a space).
        t_separator: bool,
        /// The UTC offset written after the time (every time of a file has the same one).
        zone: Zone,
    },
}

/// The UTC offset written after a date and time (ISO 8601), kept to write the times back as
/// the file did. The times are read as written (wall-clock time at that offset), which the
/// calendar features (hour of day, day of week) then describe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Zone {
    /// None written.
    None,
    /// `Z` (UTC).
    Utc,
    /// `+HH:MM` or `-HH:MM`: minutes east of UTC.
    Offset(i16),
    /// `-00:00`: UTC, with the local offset unknown (RFC 3339).
    UnknownLocal,
}

impl Zone {
    /// Splits a trailing `Z`, `+HH:MM` or `-HH:MM` off a date and time (of at least 16
    /// characters before it, which the caller reads); `None` for a malformed offset (hours
    /// past 23, minutes past 59).
    fn split(s: &str) -> Option<(&str, Zone)> {
        let n = s.len();
        // RFC 3339 allows a lowercase `z` (and `t`); written back in capitals
        if n >= 17 && (s.ends_with('Z') || s.ends_with('z')) {
            return Some((&s[..n - 1], Zone::Utc));
        }
        if n >= 22 && matches!(&s[n - 6..n - 5], "+" | "-") && &s[n - 3..n - 2] == ":" {
            let (h, m) = (digits(&s[n - 5..n - 3])?, digits(&s[n - 2..])?);
            if h > 23 || m > 59 {
                return None;
            }
            let minutes = (h * 60 + m) as i16;
            let minus = &s[n - 6..n - 5] == "-";
            if minus && minutes == 0 {
                return Some((&s[..n - 6], Zone::UnknownLocal));
            }
            let sign = if minus { -1 } else { 1 };
            return Some((&s[..n - 6], Zone::Offset(sign * minutes)));
        }
        Some((s, Zone::None))
    }

    /// Whether two zones put the same clock at the same instant (`Z`, `+00:00` and `-00:00`
    /// are all UTC; no offset is only itself).
    pub fn same_offset(self, other: Zone) -> bool {
        let minutes = |z: Zone| match z {
            Zone::None => None,
            Zone::Utc | Zone::UnknownLocal => Some(0),
            Zone::Offset(m) => Some(m),
        };
        self == other || (self != Zone::None && minutes(self) == minutes(other))
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Zone::None => Ok(()),
            Zone::Utc => write!(f, "Z"),
            Zone::UnknownLocal => write!(f, "-00:00"),
            Zone::Offset(m) => write!(
                f,
                "{}{:02}:{:02}",
                if m < 0 { '-' } else { '+' },
                m.unsigned_abs() / 60,
                m.unsigned_abs() % 60
            ),
        }
    }
}

/// One point in time, printed back as its file wrote it.
///
/// The value counts the kind's unit: the index itself, months since year 0 for
/// [`TimeKind::Month`], days since 1970-01-01 for [`TimeKind::Date`], seconds since
/// 1970-01-01 00:00 for [`TimeKind::DateTime`]. Times of the same kind compare by value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Time {
    value: i64,
    kind: TimeKind,
}

/// The spacing of consecutive times.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Freq {
    /// An integer index advancing by this step.
    Integer(i64),
    /// A number of seconds that is not a whole number of minutes.
    Seconds(i64),
    /// A number of minutes other than 60 and whole days.
    Minutes(i64),
    /// One hour.
    Hourly,
    /// One day.
    Daily,
    /// A number of days other than 1 and 7.
    Days(i64),
    /// One business day: Monday to Friday, the weekend skipped (a Friday's next step is the
    /// Monday). Dates only; a missing weekday (a holiday) is a gap.
    BusinessDaily,
    /// Seven days.
    Weekly,
    /// One calendar month.
    Monthly,
    /// Three calendar months.
    Quarterly,
    /// Twelve calendar months.
    Yearly,
    /// A number of calendar months other than 1, 3 and 12.
    Months(i64),
}

/// One series of a panel; `times`, `target` and every `known[k]` have the same length.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// The id, as written in the id column (or the target's name without one).
    pub id: String,
    /// The times, increasing and regularly spaced (gaps filled).
    pub times: Vec<Time>,
    /// The target; NaN where missing (an empty or NaN cell, or a filled gap).
    pub target: Vec<f32>,
    /// One vector per known covariate, in [`PanelSpec::known`] order.
    pub known: Vec<Vec<f32>>,
    /// The line of the file where the series first appears.
    pub first_line: usize,
    /// How many time steps were added to fill gaps (their targets are NaN).
    pub filled: usize,
}

/// Many series with one frequency.
#[derive(Clone, Debug, PartialEq)]
pub struct Panel {
    /// The series, in order of first appearance of their ids.
    pub series: Vec<Series>,
    /// The inferred frequency (the most common step across all series).
    pub freq: Freq,
    /// How the file writes its times ([`TimeKind::Index`] without a time column).
    pub time_kind: TimeKind,
    /// Warnings about the file's values that do not stop it being read (a column whose values
    /// 32 bits round by much of their spread).
    pub notes: Vec<String>,
}

/// Counts for a one-line summary of a panel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PanelSummary {
    /// Number of series.
    pub series: usize,
    /// Time steps over all series, filled gaps included.
    pub rows: usize,
    /// Missing targets up to each series' last value: empty or NaN cells plus filled gaps.
    pub missing: usize,
    /// Of `missing`, the steps added to fill gaps.
    pub filled: usize,
    /// Rows after each series' last value (the known columns of a later forecast): not
    /// history, and not counted in `missing` (a probe, 2026-12-08: they were, as "missing
    /// targets ... masked").
    pub after_last: usize,
}

impl fmt::Display for PanelSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} series, {} time steps", self.series, self.rows)?;
        if self.after_last > 0 {
            write!(
                f,
                " ({} of them after the series' last values: known columns for a forecast)",
                self.after_last
            )?;
        }
        write!(
            f,
            ", {} missing targets ({} in filled gaps)",
            self.missing, self.filled
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Calendar arithmetic (proleptic Gregorian; days counted from 1970-01-01).

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    days_from_civil(ny, nm, 1) - days_from_civil(y, m, 1)
}

/// Day of the week, Monday 0 .. Sunday 6.
fn weekday(days: i64) -> i64 {
    (days + 3).rem_euclid(7)
}

/// Business days (Monday to Friday) since Monday 1970-01-05 (day 4); a Saturday or Sunday
/// counts as the Friday before it.
fn business_index(days: i64) -> i64 {
    let w = weekday(days);
    (days - w - 4).div_euclid(7) * 5 + w.min(4)
}

/// The day of business day `index` ([`business_index`]'s inverse on weekdays); `None` past
/// `i64`.
fn business_day(index: i64) -> Option<i64> {
    index
        .div_euclid(5)
        .checked_mul(7)?
        .checked_add(index.rem_euclid(5) + 4)
}

/// The day `k` business days after `days` (before, for negative `k`; `days` itself for 0),
/// from a weekend day as from the Friday before it; `None` past `i64`.
fn add_business_days(days: i64, k: i64) -> Option<i64> {
    if k == 0 {
        return Some(days);
    }
    business_day(business_index(days).checked_add(k)?)
}

/// ISO 8601 week of the year, 1..=53.
fn iso_week(days: i64) -> i64 {
    let thursday = days - weekday(days) + 3;
    let (ty, _, _) = civil_from_days(thursday);
    let jan1 = days_from_civil(ty, 1, 1);
    (thursday - jan1) / 7 + 1
}

/// Adds `k` calendar months to a day; a day past the new month's end becomes its last day, and
/// the last day of a month stays the last day.
fn add_months(days: i64, k: i64) -> i64 {
    let (y, m, d) = civil_from_days(days);
    let t = y * 12 + (m - 1) + k;
    let (yy, mm) = (t.div_euclid(12), t.rem_euclid(12) + 1);
    let len = days_in_month(yy, mm);
    let dd = if d == days_in_month(y, m) {
        len
    } else {
        d.min(len)
    };
    days_from_civil(yy, mm, dd)
}

fn digits(s: &str) -> Option<i64> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

/// What to do when two times of a file differ only in their UTC offset (summer time: a clock
/// that moves is not a regular series; an offset on some rows only; one offset written two
/// ways); empty for times that differ otherwise.
pub fn offset_change_hint(a: TimeKind, b: TimeKind) -> &'static str {
    match (a, b) {
        (
            TimeKind::DateTime {
                seconds: s1,
                fraction: f1,
                t_separator: t1,
                zone: z1,
            },
            TimeKind::DateTime {
                seconds: s2,
                fraction: f2,
                t_separator: t2,
                zone: z2,
            },
        ) if s1 == s2 && f1 == f2 && t1 == t2 && z1 != z2 => {
            if z1 == Zone::None || z2 == Zone::None {
                " (a UTC offset after some times and not after others: write it after every time, or after none)"
            } else if z1.same_offset(z2) {
                " (the same offset written two ways, such as Z and +00:00: write it one way)"
            } else {
                " (one UTC offset for all: a change of offset, as summer time makes, repeats or skips an hour; convert the times to UTC)"
            }
        }
        _ => "",
    }
}

/// Parses `YYYY-MM-DD` into days, checking the month and day.
fn parse_date(s: &str) -> Option<i64> {
    if s.len() != 10 || &s[4..5] != "-" || &s[7..8] != "-" {
        return None;
    }
    let (y, m, d) = (digits(&s[..4])?, digits(&s[5..7])?, digits(&s[8..10])?);
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return None;
    }
    Some(days_from_civil(y, m, d))
}

impl Time {
    /// The order of two times of one kind of time (two indices, months, dates or date-times,
    /// however each is written); `None` for two kinds.
    pub fn cmp_same_kind(&self, other: &Time) -> Option<std::cmp::Ordering> {
        (std::mem::discriminant(&self.kind) == std::mem::discriminant(&other.kind))
            .then(|| self.value.cmp(&other.value))
    }

    /// The integer index `i`.
    pub fn index(i: i64) -> Time {
        Time {
            value: i,
            kind: TimeKind::Index,
        }
    }

    /// Reads an integer index, `YYYY-MM`, `YYYY-MM-DD`, or `YYYY-MM-DD HH:MM[:SS[.000]]` (also
    /// with `T` instead of the space, and a UTC offset after it); surrounding blanks are
    /// ignored. `None` for anything else, including impossible dates (2023-02-29) and times
    /// (24:00), and a fraction of a second that is not zero.
    pub fn parse(s: &str) -> Option<Time> {
        let s = s.trim();
        if let Ok(i) = s.parse::<i64>() {
            return Some(Time::index(i));
        }
        if !s.is_ascii() {
            return None;
        }
        if s.len() == 7 && &s[4..5] == "-" {
            let (y, m) = (digits(&s[..4])?, digits(&s[5..])?);
            if !(1..=12).contains(&m) {
                return None;
            }
            return Some(Time {
                value: y * 12 + m - 1,
                kind: TimeKind::Month,
            });
        }
        if s.len() == 10 {
            return Some(Time {
                value: parse_date(s)?,
                kind: TimeKind::Date,
            });
        }
        let (s, zone) = Zone::split(s)?;
        // a fraction of a second of zeros only (`.000`), kept to be written back
        let (s, fraction) = match s.get(19..) {
            Some(f) if f.starts_with('.') => {
                let digits = &f[1..];
                if digits.is_empty() || digits.len() > 9 || digits.bytes().any(|b| b != b'0') {
                    return None;
                }
                (&s[..19], digits.len() as u8)
            }
            _ => (s, 0),
        };
        if s.len() != 16 && s.len() != 19 {
            return None;
        }
        let day = parse_date(&s[..10])?;
        let sep = &s[10..11];
        if !matches!(sep, " " | "T" | "t") || &s[13..14] != ":" {
            return None;
        }
        let (h, mi) = (digits(&s[11..13])?, digits(&s[14..16])?);
        let sec = if s.len() == 19 {
            if &s[16..17] != ":" {
                return None;
            }
            digits(&s[17..19])?
        } else {
            0
        };
        if h > 23 || mi > 59 || sec > 59 {
            return None;
        }
        Some(Time {
            value: day * 86_400 + h * 3600 + mi * 60 + sec,
            kind: TimeKind::DateTime {
                seconds: s.len() == 19,
                fraction,
                t_separator: sep != " ",
                zone,
            },
        })
    }

    /// How this time is written.
    pub fn kind(&self) -> TimeKind {
        self.kind
    }

    /// The value in the kind's unit (see [`Time`]).
    pub fn value(&self) -> i64 {
        self.value
    }

    /// Days since 1970-01-01 and seconds into the day; `None` for an index.
    fn day_and_seconds(&self) -> Option<(i64, i64)> {
        match self.kind {
            TimeKind::Index => None,
            TimeKind::Month => Some((
                days_from_civil(self.value.div_euclid(12), self.value.rem_euclid(12) + 1, 1),
                0,
            )),
            TimeKind::Date => Some((self.value, 0)),
            TimeKind::DateTime { .. } => {
                Some((self.value.div_euclid(86_400), self.value.rem_euclid(86_400)))
            }
        }
    }

    /// `(year, month 1..=12, day 1..=31)`; a month is on its 1st; `None` for an index.
    pub fn date(&self) -> Option<(i64, u32, u32)> {
        let (days, _) = self.day_and_seconds()?;
        let (y, m, d) = civil_from_days(days);
        Some((y, m as u32, d as u32))
    }

    /// The time `k` steps of `freq` later (earlier for negative `k`).
    ///
    /// Calendar-month frequencies keep the day of the month (the last day of a month stays the
    /// last day; a day the new month lacks becomes its last day) and the time of day. A
    /// frequency the kind cannot express steps by the kind's own unit: an index by 1 (or by
    /// `n` for [`Freq::Integer`]`(n)`), a month by 1 month for a fixed-length frequency, a date
    /// by whole days (at least 1), a date-time by `n` seconds for [`Freq::Integer`]`(n)`.
    pub fn advance(&self, freq: Freq, k: i64) -> Time {
        let value = match self.kind {
            TimeKind::Index => {
                let n = match freq {
                    Freq::Integer(n) => n,
                    _ => 1,
                };
                self.value + k * n
            }
            TimeKind::Month => self.value + k * freq.months().unwrap_or(1),
            TimeKind::Date => match (freq.months(), freq.seconds(), freq) {
                (Some(m), _, _) => add_months(self.value, k * m),
                (_, Some(s), _) => self.value + k * (s / 86_400).max(1),
                (_, _, Freq::Integer(n)) => self.value + k * n,
                (_, _, Freq::BusinessDaily) => add_business_days(self.value, k).unwrap_or(i64::MAX),
                _ => self.value + k,
            },
            TimeKind::DateTime { .. } => match (freq.months(), freq.seconds(), freq) {
                (Some(m), _, _) => {
                    let (day, sec) = (self.value.div_euclid(86_400), self.value.rem_euclid(86_400));
                    add_months(day, k * m) * 86_400 + sec
                }
                (_, Some(s), _) => self.value + k * s,
                (_, _, Freq::Integer(n)) => self.value + k * n,
                (_, _, Freq::BusinessDaily) => {
                    let (day, sec) = (self.value.div_euclid(86_400), self.value.rem_euclid(86_400));
                    add_business_days(day, k).unwrap_or(i64::MAX / 86_400) * 86_400 + sec
                }
                _ => self.value + k,
            },
        };
        Time {
            value,
            kind: self.kind,
        }
    }
}

/// The most missing steps gap filling adds to one file: a few such steps cost what a row
/// costs, so a handful of far-apart times must not become hundreds of millions of steps.
pub const MAX_FILLED: usize = 10_000_000;

/// The last month a file can write (`9999-12`, as months since year 0).
const LAST_MONTH: i64 = 9999 * 12 + 11;

impl Time {
    /// [`Time::advance`] without overflow: `None` when the result does not fit (an index past
    /// `i64`'s range, a date after the year 9999 or before the year 0, which cannot be written
    /// as `YYYY`).
    pub fn checked_advance(&self, freq: Freq, k: i64) -> Option<Time> {
        let lin = |v: i64, n: i64| v.checked_add(k.checked_mul(n)?);
        // a calendar-month step from a day: its month index first, so that the day arithmetic
        // only ever sees writable years
        let months = |days: i64, m: i64| -> Option<i64> {
            let (y, mo, _) = civil_from_days(days);
            let to = (y * 12 + mo - 1).checked_add(k.checked_mul(m)?)?;
            (0..=LAST_MONTH)
                .contains(&to)
                .then(|| add_months(days, k * m))
        };
        let value = match self.kind {
            TimeKind::Index => lin(
                self.value,
                match freq {
                    Freq::Integer(n) => n,
                    _ => 1,
                },
            )?,
            TimeKind::Month => {
                let v = lin(self.value, freq.months().unwrap_or(1))?;
                (0..=LAST_MONTH).contains(&v).then_some(v)?
            }
            TimeKind::Date => match (freq.months(), freq.seconds(), freq) {
                (Some(m), _, _) => months(self.value, m)?,
                (_, Some(s), _) => lin(self.value, (s / 86_400).max(1))?,
                (_, _, Freq::Integer(n)) => lin(self.value, n)?,
                (_, _, Freq::BusinessDaily) => add_business_days(self.value, k)?,
                _ => lin(self.value, 1)?,
            },
            TimeKind::DateTime { .. } => match (freq.months(), freq.seconds(), freq) {
                (Some(m), _, _) => {
                    let (day, sec) = (self.value.div_euclid(86_400), self.value.rem_euclid(86_400));
                    months(day, m)?.checked_mul(86_400)?.checked_add(sec)?
                }
                (_, Some(s), _) => lin(self.value, s)?,
                (_, _, Freq::Integer(n)) => lin(self.value, n)?,
                (_, _, Freq::BusinessDaily) => {
                    let (day, sec) = (self.value.div_euclid(86_400), self.value.rem_euclid(86_400));
                    add_business_days(day, k)?
                        .checked_mul(86_400)?
                        .checked_add(sec)?
                }
                _ => lin(self.value, 1)?,
            },
        };
        let t = Time {
            value,
            kind: self.kind,
        };
        match self.kind {
            TimeKind::Index | TimeKind::Month => Some(t),
            _ => {
                let days = match self.kind {
                    TimeKind::Date => value,
                    _ => value.div_euclid(86_400),
                };
                // days of the years 0 to 9999
                (-719_528..=2_932_896).contains(&days).then_some(t)
            }
        }
    }
}

impl fmt::Display for Time {
    /// Writes the time as the file did: `7`, `2024-02`, `2024-02-29`, `2024-02-29 13:05`,
    /// `2024-02-29T13:05:09`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            TimeKind::Index => write!(f, "{}", self.value),
            TimeKind::Month => write!(
                f,
                "{:04}-{:02}",
                self.value.div_euclid(12),
                self.value.rem_euclid(12) + 1
            ),
            TimeKind::Date => {
                let (y, m, d) = civil_from_days(self.value);
                write!(f, "{y:04}-{m:02}-{d:02}")
            }
            TimeKind::DateTime {
                seconds,
                fraction,
                t_separator,
                zone,
            } => {
                let (day, sec) = (self.value.div_euclid(86_400), self.value.rem_euclid(86_400));
                let (y, m, d) = civil_from_days(day);
                let sep = if t_separator { 'T' } else { ' ' };
                write!(
                    f,
                    "{y:04}-{m:02}-{d:02}{sep}{:02}:{:02}",
                    sec / 3600,
                    sec % 3600 / 60
                )?;
                if seconds {
                    write!(f, ":{:02}", sec % 60)?;
                }
                if fraction > 0 {
                    write!(f, ".{:0>1$}", "", fraction as usize)?;
                }
                write!(f, "{zone}")
            }
        }
    }
}

impl Freq {
    /// The seasonal period in steps, `1` meaning none. The rule: Hourly 24, Daily 7,
    /// BusinessDaily 5 (the week), Weekly 52, Monthly 12, Quarterly 4, Yearly 1, Integer 1; `Minutes(n)` the steps in a
    /// day when `n` divides 1440 (else 1), `Months(n)` the steps in a year when `n` divides 12
    /// (else 1), `Days(n)` and `Seconds(n)` 1. A user's `--season N` overrides it in the caller.
    pub fn season(&self) -> usize {
        match *self {
            Freq::Hourly => 24,
            Freq::Daily => 7,
            Freq::BusinessDaily => 5,
            Freq::Weekly => 52,
            Freq::Monthly => 12,
            Freq::Quarterly => 4,
            Freq::Minutes(n) if n > 0 && 1440 % n == 0 => (1440 / n) as usize,
            Freq::Months(n) if n > 0 && 12 % n == 0 => (12 / n) as usize,
            _ => 1,
        }
    }

    /// The step in calendar months, for the month-based frequencies.
    pub fn months(&self) -> Option<i64> {
        match *self {
            Freq::Monthly => Some(1),
            Freq::Quarterly => Some(3),
            Freq::Yearly => Some(12),
            Freq::Months(n) => Some(n),
            _ => None,
        }
    }

    /// The step in seconds, for the fixed-length frequencies.
    pub fn seconds(&self) -> Option<i64> {
        match *self {
            Freq::Seconds(n) => Some(n),
            Freq::Minutes(n) => Some(60 * n),
            Freq::Hourly => Some(3600),
            Freq::Daily => Some(86_400),
            Freq::Days(n) => Some(86_400 * n),
            Freq::Weekly => Some(7 * 86_400),
            _ => None,
        }
    }

    pub(crate) fn from_seconds(s: i64) -> Freq {
        match s {
            3600 => Freq::Hourly,
            86_400 => Freq::Daily,
            604_800 => Freq::Weekly,
            s if s % 86_400 == 0 => Freq::Days(s / 86_400),
            s if s % 60 == 0 => Freq::Minutes(s / 60),
            s => Freq::Seconds(s),
        }
    }

    fn from_months(m: i64) -> Freq {
        match m {
            1 => Freq::Monthly,
            3 => Freq::Quarterly,
            12 => Freq::Yearly,
            m => Freq::Months(m),
        }
    }
}

impl Freq {
    /// A frequency back from its debug name (`Hourly`, `Days(2)`), as model directories
    /// record it.
    pub fn from_name(s: &str) -> Option<Freq> {
        let num = |p: &str| -> Option<i64> { s.strip_prefix(p)?.strip_suffix(')')?.parse().ok() };
        Some(match s {
            "Hourly" => Freq::Hourly,
            "Daily" => Freq::Daily,
            "BusinessDaily" => Freq::BusinessDaily,
            "Weekly" => Freq::Weekly,
            "Monthly" => Freq::Monthly,
            "Quarterly" => Freq::Quarterly,
            "Yearly" => Freq::Yearly,
            _ => {
                if let Some(n) = num("Integer(") {
                    Freq::Integer(n)
                } else if let Some(n) = num("Seconds(") {
                    Freq::Seconds(n)
                } else if let Some(n) = num("Minutes(") {
                    Freq::Minutes(n)
                } else if let Some(n) = num("Days(") {
                    Freq::Days(n)
                } else if let Some(n) = num("Months(") {
                    Freq::Months(n)
                } else {
                    return None;
                }
            }
        })
    }
}

impl fmt::Display for Freq {
    /// `hourly`, `daily`, `every 15 minutes`, `integer step 1`, ...
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Freq::Integer(n) => write!(f, "integer step {n}"),
            Freq::Seconds(n) => write!(f, "every {n} seconds"),
            Freq::Minutes(n) => write!(f, "every {n} minutes"),
            Freq::Hourly => write!(f, "hourly"),
            Freq::Daily => write!(f, "daily"),
            Freq::BusinessDaily => write!(f, "business daily"),
            Freq::Days(n) => write!(f, "every {n} days"),
            Freq::Weekly => write!(f, "weekly"),
            Freq::Monthly => write!(f, "monthly"),
            Freq::Quarterly => write!(f, "quarterly"),
            Freq::Yearly => write!(f, "yearly"),
            Freq::Months(n) => write!(f, "every {n} months"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Calendar features.

/// The frequency of one series' times (increasing, all of one kind), inferred as a panel's
/// is; `hint` is a model's frequency (business days). Daily for fewer than two dates, hourly
/// for fewer than two date-times, one step of an index.
pub fn freq_of(times: &[Time], hint: Option<Freq>) -> Freq {
    let kind = times.first().map_or(TimeKind::Index, |t| t.kind());
    if times.len() < 2 {
        return match kind {
            TimeKind::Index => Freq::Integer(1),
            TimeKind::Month => Freq::Monthly,
            TimeKind::Date => hint
                .filter(|h| *h == Freq::BusinessDaily)
                .unwrap_or(Freq::Daily),
            TimeKind::DateTime { .. } => Freq::Hourly,
        };
    }
    let rows: Vec<Row> = times
        .iter()
        .map(|&time| Row {
            time,
            target: 0.0,
            known: Vec::new(),
            line: 0,
        })
        .collect();
    infer_freq(&[&rows], kind, hint)
}

/// Number of values [`calendar_features`] returns for `freq` (and, for an integer index, the
/// `season`).
pub fn calendar_feature_count(freq: Freq, season: usize) -> usize {
    match freq {
        Freq::Integer(_) => usize::from(season > 1),
        Freq::Seconds(_) | Freq::Minutes(_) => 5,
        Freq::Hourly => 4,
        Freq::Daily | Freq::Days(_) | Freq::BusinessDaily => 3,
        Freq::Weekly | Freq::Monthly | Freq::Quarterly | Freq::Months(_) => 1,
        Freq::Yearly => 0,
    }
}

/// Calendar features of `time`, each in `[-0.5, 0.5]` as in GluonTS (`(x - min)/(max - min)
/// - 0.5`), by frequency:
///
/// - minutes and seconds: minute of hour, hour of day, day of week, day of month, day of year;
/// - hourly: hour of day, day of week, day of month, day of year;
/// - daily (and every n days): day of week (Monday lowest), day of month, day of year;
/// - business daily: the same, the day of the week over Monday to Friday;
/// - weekly: ISO week of year (1..=53 over 52);
/// - monthly (and every n months): month of year;
/// - quarterly: quarter of the year;
/// - yearly: none;
/// - integer index with `season` s > 1: the position `(t mod s)/(s - 1) - 0.5`; none when
///   s <= 1. `season` is used only here (the caller passes [`Freq::season`] or the user's).
///
/// A time written as an index under a calendar frequency has no calendar; its features are 0.
/// The length is always [`calendar_feature_count`]`(freq, season)`.
pub fn calendar_features(time: &Time, freq: Freq, season: usize) -> Vec<f32> {
    let n = calendar_feature_count(freq, season);
    let scale = |x: i64, max: i64| (x as f32 / max as f32 - 0.5).clamp(-0.5, 0.5);
    if let Freq::Integer(_) = freq {
        if n == 0 {
            return Vec::new();
        }
        let s = season as i64;
        return vec![scale(time.value.rem_euclid(s), s - 1)];
    }
    let Some((days, sec)) = time.day_and_seconds() else {
        return vec![0.0; n];
    };
    let (y, m, d) = civil_from_days(days);
    let day_of_year = days - days_from_civil(y, 1, 1);
    let day_feats = [
        scale(weekday(days), 6),
        scale(d - 1, 30),
        scale(day_of_year, 365),
    ];
    let hour = scale(sec / 3600, 23);
    match freq {
        Freq::Seconds(_) | Freq::Minutes(_) => {
            let mut v = vec![scale(sec % 3600 / 60, 59), hour];
            v.extend(day_feats);
            v
        }
        Freq::Hourly => {
            let mut v = vec![hour];
            v.extend(day_feats);
            v
        }
        Freq::Daily | Freq::Days(_) => day_feats.to_vec(),
        Freq::BusinessDaily => vec![scale(weekday(days).min(4), 4), day_feats[1], day_feats[2]],
        Freq::Weekly => vec![scale(iso_week(days) - 1, 52)],
        Freq::Monthly | Freq::Months(_) => vec![scale(m - 1, 11)],
        Freq::Quarterly => vec![scale((m - 1) / 3, 3)],
        Freq::Yearly | Freq::Integer(_) => Vec::new(),
    }
}

// ---------------------------------------------------------------------------------------------
// Series and panel.

impl Series {
    /// Number of time steps.
    pub fn len(&self) -> usize {
        self.times.len()
    }

    /// Whether the series has no time step (never, for a series read from a file).
    pub fn is_empty(&self) -> bool {
        self.times.is_empty()
    }

    /// [`Series::future_times`], or `None` if a time would not fit (see
    /// [`Time::checked_advance`]).
    pub fn checked_future_times(&self, n: usize, freq: Freq) -> Option<Vec<Time>> {
        match self.times.last() {
            Some(last) => (1..=n as i64)
                .map(|k| last.checked_advance(freq, k))
                .collect(),
            None => Some(Vec::new()),
        }
    }

    /// Rows up to the last value (a target that is not NaN): the series' history, without the
    /// rows after it that carry a later forecast's known columns.
    pub fn history_len(&self) -> usize {
        self.target
            .iter()
            .rposition(|v| !v.is_nan())
            .map_or(0, |i| i + 1)
    }

    /// Missing targets (NaN), filled gaps included.
    pub fn missing(&self) -> usize {
        self.target.iter().filter(|v| v.is_nan()).count()
    }

    /// The `n` times after the last one, `freq` apart (see [`Time::advance`]); empty for an
    /// empty series.
    pub fn future_times(&self, n: usize, freq: Freq) -> Vec<Time> {
        match self.times.last() {
            Some(last) => (1..=n as i64).map(|k| last.advance(freq, k)).collect(),
            None => Vec::new(),
        }
    }
}

impl Panel {
    /// Counts of series, time steps and missing targets.
    pub fn summary(&self) -> PanelSummary {
        let history = Series::history_len;
        PanelSummary {
            series: self.series.len(),
            rows: self.series.iter().map(Series::len).sum(),
            missing: self
                .series
                .iter()
                .map(|s| s.target[..history(s)].iter().filter(|v| v.is_nan()).count())
                .sum(),
            filled: self.series.iter().map(|s| s.filled).sum(),
            after_last: self.series.iter().map(|s| s.len() - history(s)).sum(),
        }
    }
}

/// Reads a long-format panel from a CSV file (TSV for `.tsv`/`.tab`, or when the header has
/// tabs and no commas).
///
/// # Errors
/// [`Error::Io`] if unreadable; [`Error::Format`] naming the file for: a missing column (with
/// the header listed); a duplicated (id, time) pair, a time that cannot be read or is written
/// unlike the first, a non-numeric target, or an empty or non-numeric known covariate (naming
/// line and column); a series with fewer than 2 rows (naming it and its first line); a gap in a
/// series with known covariates, or a step that is not a whole number of the frequency (naming
/// the line after it).
pub fn read_panel(path: &Path, spec: &PanelSpec) -> Result<Panel> {
    let name = path.display().to_string();
    if path.is_dir() {
        // the shared reader words the directory error
        Delimited::open(path, b',', true, true)?;
    }
    let bytes = std::fs::read(path).map_err(|source| Error::read(&name, source))?;
    let tab_ext = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("tsv") || e.eq_ignore_ascii_case("tab"));
    panel_from_bytes(bytes, name, tab_ext, spec)
}

/// As [`read_panel`] on the text of a file; `name` names it in errors (and a `.tsv`/`.tab`
/// name means tab-separated).
///
/// # Errors
/// As [`read_panel`].
pub fn parse_panel(text: &str, name: &str, spec: &PanelSpec) -> Result<Panel> {
    let tab_ext = name.ends_with(".tsv") || name.ends_with(".tab");
    panel_from_bytes(text.as_bytes().to_vec(), name.to_string(), tab_ext, spec)
}

fn panel_from_bytes(
    bytes: Vec<u8>,
    name: String,
    tab_ext: bool,
    spec: &PanelSpec,
) -> Result<Panel> {
    let header = bytes.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let tsv = tab_ext || (header.contains(&b'\t') && !header.contains(&b','));
    let file = Delimited::from_bytes(name, bytes, if tsv { b'\t' } else { b',' }, true, true)?;
    panel_from(file, spec)
}

/// One data row of a series, before sorting and gap filling.
struct Row {
    time: Time,
    target: f32,
    known: Vec<f32>,
    line: usize,
}

/// A cell as an error quotes it: at most 60 characters (an unclosed quote makes one cell of
/// the rest of the file).
pub(crate) fn shown(cell: &str) -> String {
    match cell.char_indices().nth(60) {
        Some((at, _)) => format!("{}…", &cell[..at]),
        None => cell.to_string(),
    }
}

/// A missing value: an empty cell, NaN in any case and sign, or one of the spellings pandas'
/// `read_csv` reads as missing (`NA`, `N/A`, `n/a`, `#N/A`, `NULL`, `null`, `None`, `<NA>`...).
pub(crate) fn is_missing(cell: &str) -> bool {
    const PANDAS: [&str; 14] = [
        "NA", "N/A", "n/a", "#N/A", "#N/A N/A", "#NA", "NULL", "null", "None", "<NA>", "-1.#IND",
        "-1.#QNAN", "1.#IND", "1.#QNAN",
    ];
    let c = cell.strip_prefix(['-', '+']).unwrap_or(cell);
    cell.is_empty() || c.eq_ignore_ascii_case("nan") || PANDAS.contains(&cell)
}

/// A numeric column's values in one series as written (in 64 bits) against the 32 bits the model
/// holds them in: the largest rounding, with an example, and the spread it is measured against.
#[derive(Clone)]
struct Rounding {
    min: f64,
    max: f64,
    /// The largest `|written - held|`, the cell and the value held.
    worst: Option<(f64, String, f32)>,
}

impl Rounding {
    fn new() -> Self {
        Rounding {
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            worst: None,
        }
    }

    /// Records `cell`, read as `held`.
    fn add(&mut self, cell: &str, held: f32) {
        let Ok(v) = cell.parse::<f64>() else {
            return;
        };
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        let err = (v - held as f64).abs();
        if self.worst.as_ref().is_none_or(|w| err > w.0) {
            self.worst = Some((err, shown(cell), held));
        }
    }

    /// The rounding as a fraction of the spread, when it is more than 1/1,000 of it: an offset
    /// (a year written as 1e8 + x, a flag of 1e9 and 1e9 + 1) that leaves too few of the 32
    /// bits' 7 digits for the part that changes.
    fn excess(&self) -> Option<f64> {
        let (err, ..) = self.worst.as_ref()?;
        let spread = self.max - self.min;
        (spread > 0.0 && *err > 1e-3 * spread).then(|| err / spread)
    }

    /// The warning for `column`, of the series `series` (a panel's id, or none).
    fn warning(&self, column: &str, series: Option<&str>) -> Option<String> {
        self.excess()?;
        let (err, cell, held) = self.worst.as_ref()?;
        Some(format!(
            "warning: column `{column}`{} is held in 32 bits (about 7 significant digits): `{cell}` \
             is read as {}, {err} away, while its values range over only {} (from {} to {}); \
             subtract an offset or rescale the column",
            series.map_or(String::new(), |s| format!(" (series `{s}`)")),
            // the value held, in full (f32's shortest spelling, 100000130, is not it)
            *held as f64,
            self.max - self.min,
            self.min,
            self.max
        ))
    }
}

fn panel_from(mut file: Delimited, spec: &PanelSpec) -> Result<Panel> {
    // one column, one role: a target that is also a known covariate (or the time) trains but
    // can never be forecast
    let mut roles: Vec<(&str, &str)> = vec![("--column", spec.target.as_str())];
    roles.extend(spec.id_column.as_deref().map(|c| ("--id-column", c)));
    roles.extend(spec.time_column.as_deref().map(|c| ("--time-column", c)));
    roles.extend(spec.known.iter().map(|c| ("--known-columns", c.as_str())));
    for (i, (flag, col)) in roles.iter().enumerate() {
        if let Some((other, _)) = roles[..i].iter().find(|(_, c)| c.trim() == col.trim()) {
            return Err(Error::Config(if other == flag {
                format!("{flag} names `{col}` twice")
            } else {
                format!("`{col}` is given as both {other} and {flag}; a column has one role")
            }));
        }
    }
    let id_idx = spec
        .id_column
        .as_deref()
        .map(|c| file.column(c))
        .transpose()?;
    let time_idx = spec
        .time_column
        .as_deref()
        .map(|c| file.column(c))
        .transpose()?;
    let target_idx = file.column(&spec.target)?;
    let known_idx: Vec<usize> = spec
        .known
        .iter()
        .map(|c| file.column(c))
        .collect::<Result<_>>()?;
    let time_name = spec.time_column.as_deref().unwrap_or("");
    let name = file.name.clone();
    let fmt = |reason: String| Error::Format {
        path: name.clone(),
        reason,
    };

    let mut order: HashMap<String, usize> = HashMap::new();
    let mut groups: Vec<(String, Vec<Row>)> = Vec::new();
    let mut first_time: Option<(Time, usize)> = None;
    // per series: the target's, then each known column's
    let mut rounding: Vec<Vec<Rounding>> = Vec::new();
    let one_line = file.one_line();
    for (r, rec) in file.reader.records().enumerate() {
        let rec = rec.map_err(|e| match e.kind() {
            csv::ErrorKind::UnequalLengths {
                expected_len, len, ..
            } => fmt(format!(
                "line {}: {len} field(s) where the header has {expected_len}; a value with a \
                 comma needs quotes",
                e.position().map_or(r + 2, |p| p.line() as usize)
            )),
            _ => fmt(format!("line {}: {e}", r + 2)),
        })?;
        let line = rec.position().map_or(r + 2, |p| p.line() as usize);
        one_line.check(&rec, line, id_idx)?;
        let cell = |i: usize| rec.get(i).unwrap_or("").trim();
        let id = match id_idx {
            Some(i) => {
                let id = cell(i);
                if id.is_empty() {
                    return Err(fmt(format!(
                        "line {line}, column `{}`: empty series id",
                        spec.id_column.as_deref().unwrap_or("")
                    )));
                }
                id.to_string()
            }
            None => spec.target.clone(),
        };
        let g = *order.entry(id.clone()).or_insert_with(|| {
            groups.push((id, Vec::new()));
            rounding.push(vec![Rounding::new(); known_idx.len() + 1]);
            groups.len() - 1
        });
        let time = match time_idx {
            Some(i) => {
                let c = cell(i);
                if c.is_empty() {
                    return Err(fmt(format!(
                        "line {line}, column `{time_name}`: empty time"
                    )));
                }
                let t = Time::parse(c).ok_or_else(|| {
                    fmt(format!(
                        "line {line}, column `{time_name}`: `{}` is not a time; write an \
                         integer, YYYY-MM, YYYY-MM-DD or YYYY-MM-DD HH:MM[:SS] (with T for the \
                         space, and Z or +HH:MM after it, as ISO 8601 allows; a fraction of a \
                         second only as zeros, .000: times are whole seconds)",
                        shown(c)
                    ))
                })?;
                match first_time {
                    None => first_time = Some((t, line)),
                    Some((f, fl)) if f.kind != t.kind => {
                        return Err(fmt(format!(
                            "line {line}, column `{time_name}`: `{}` is written unlike the \
                             first time `{f}` (line {fl}); write all times the same way{}",
                            shown(c),
                            offset_change_hint(f.kind, t.kind)
                        )))
                    }
                    _ => {}
                }
                t
            }
            None => Time::index(groups[g].1.len() as i64 + 1),
        };
        let c = cell(target_idx);
        let target = if is_missing(c) {
            f32::NAN
        } else {
            match c.parse::<f32>() {
                Ok(v) if v.is_finite() => {
                    rounding[g][0].add(c, v);
                    v
                }
                Ok(_) => {
                    return Err(fmt(format!(
                        "line {line}, column `{}`: `{}` is not a finite 32-bit number{}",
                        spec.target,
                        shown(c),
                        if c.parse::<f64>().is_ok_and(f64::is_finite) {
                            " (at most 3.4e38 in size): rescale the column"
                        } else {
                            ""
                        }
                    )))
                }
                Err(_) => {
                    return Err(fmt(format!(
                        "line {line}, column `{}`: `{}` is not a number (leave the cell empty \
                         or write NaN for a missing value)",
                        spec.target,
                        shown(c)
                    )))
                }
            }
        };
        let mut known = Vec::with_capacity(known_idx.len());
        for (k, &i) in known_idx.iter().enumerate() {
            let c = cell(i);
            let col = &spec.known[k];
            if is_missing(c) {
                let what = if c.is_empty() {
                    "empty cell".to_string()
                } else {
                    format!("missing value `{}`", shown(c))
                };
                return Err(fmt(format!(
                    "line {line}, column `{col}`: {what}; a known covariate must be given on \
                     every row"
                )));
            }
            // a flag written as a boolean (pandas writes `True`/`False`) is 1 or 0
            let flag = match c.trim() {
                t if t.eq_ignore_ascii_case("true") => Some(1.0),
                t if t.eq_ignore_ascii_case("false") => Some(0.0),
                _ => None,
            };
            match flag.map_or_else(|| c.parse::<f32>(), Ok) {
                Ok(v) if v.is_finite() => {
                    if flag.is_none() {
                        rounding[g][k + 1].add(c, v);
                    }
                    known.push(v)
                }
                _ => {
                    // a word: most likely a category (a store type, a region)
                    let category = c.trim().parse::<f64>().is_err();
                    return Err(fmt(format!(
                        "line {line}, column `{col}`: `{}` is not a finite number (nor true or false); a known covariate is a number on every row{}",
                        shown(c),
                        if category {
                            " (a category: give it as one 0/1 column per value, or leave it out; a per-series category is learned from the series id already)"
                        } else {
                            ""
                        }
                    )));
                }
            }
        }
        groups[g].1.push(Row {
            time,
            target,
            known,
            line,
        });
    }
    if groups.is_empty() {
        return Err(fmt("the file has no data rows".into()));
    }

    // sort each series, refuse duplicates and too-short series
    for (id, rows) in &mut groups {
        if rows.len() < 2 {
            return Err(fmt(format!(
                "series `{id}` (first on line {}) has {} row; a series needs at least 2",
                rows[0].line,
                rows.len()
            )));
        }
        if rows.iter().all(|r| r.target.is_nan()) {
            return Err(fmt(format!(
                "column `{}`: series `{id}` (first on line {}) has no value, every cell is empty or NaN; leave it out",
                spec.target, rows[0].line
            )));
        }
        rows.sort_by_key(|r| r.time);
        for w in rows.windows(2) {
            if w[0].time == w[1].time {
                let (a, b) = (w[0].line.min(w[1].line), w[0].line.max(w[1].line));
                // a clock time between midnight and 4 o'clock: where clocks go back
                let night = matches!(w[1].time.kind, TimeKind::DateTime { .. })
                    && w[1]
                        .time
                        .day_and_seconds()
                        .is_some_and(|(_, s)| s < 4 * 3600);
                return Err(fmt(format!(
                    "line {b}, column `{time_name}`: series `{id}` has the time `{}` twice \
                     (also on line {a}){}",
                    w[1].time,
                    match (spec.id_column.is_none(), night) {
                        (true, true) => "; a file of several series needs --id-column, and local clock times repeat an hour when daylight saving time ends: write the times in UTC",
                        (false, true) => "; local clock times repeat an hour when daylight saving time ends: write the times in UTC",
                        (true, _) => "; a file of several series needs --id-column",
                        (false, _) => "",
                    }
                )));
            }
        }
    }

    let time_kind = first_time.map_or(TimeKind::Index, |(t, _)| t.kind);
    if time_kind == TimeKind::Index {
        let times: Vec<Vec<i64>> = groups
            .iter()
            .map(|(_, rows)| rows.iter().map(|r| r.time.value).collect())
            .collect();
        if let Some(format) = compact_dates(&times) {
            return Err(fmt(format!(
                "column `{time_name}`: its times look like dates written without dashes ({format}, such as `{}`); read as an integer index they would jump from one month or year to the next and the steps between would be filled as missing; write them {}",
                times[0][0],
                if format == "YYYYMM" { "YYYY-MM" } else { "YYYY-MM-DD" }
            )));
        }
    }
    let all: Vec<&[Row]> = groups.iter().map(|(_, rows)| rows.as_slice()).collect();
    let freq = infer_freq(&all, time_kind, spec.freq);
    // one model reads one frequency: a series that steps otherwise (monthly beside daily,
    // trading days beside calendar days) would be read at the file's step, its time between
    // filled as missing and its forecast at the wrong times
    if groups.len() > 1 {
        for (id, rows) in &groups {
            if rows.len() < 4 {
                continue;
            }
            let own = infer_freq(&[rows.as_slice()], time_kind, spec.freq);
            let weekdays_of_business_days = freq == Freq::BusinessDaily && own == Freq::Daily;
            // every step one of its own: a regular series of another frequency; one whose
            // steps vary (rows absent on some days, intermittent sales) is the file's
            // frequency with gaps, filled and masked as before
            let regular = rows
                .windows(2)
                .all(|w| w[0].time.checked_advance(own, 1) == Some(w[1].time));
            if own != freq && regular && !weekdays_of_business_days {
                return Err(fmt(format!(
                    "series `{id}` (first on line {}) is {own}, but the file's series are {freq} (its most common step); one model reads one frequency: give series of another frequency to a model of their own (or, if `{id}` is {freq} data with most of its steps missing, write the missing steps as rows with an empty target)",
                    rows.iter().map(|r| r.line).min().unwrap_or(0)
                )));
            }
        }
    }

    let mut series = Vec::with_capacity(groups.len());
    let mut filled_total = 0usize;
    for (id, rows) in groups {
        let first_line = rows.iter().map(|r| r.line).min().unwrap_or(0);
        let mut s = Series {
            id,
            times: Vec::with_capacity(rows.len()),
            target: Vec::with_capacity(rows.len()),
            known: vec![Vec::with_capacity(rows.len()); known_idx.len()],
            first_line,
            filled: 0,
        };
        let mut prev: Option<(Time, usize)> = None;
        for row in rows {
            if let Some((p, pline)) = prev {
                // times from the file are in range, so a step past them only fails at the
                // edges of an integer index
                let at = |k: i64| {
                    p.checked_advance(freq, k).ok_or_else(|| {
                        fmt(format!(
                            "line {}: series `{}` cannot step {freq} from `{p}` without leaving the range of times",
                            row.line, s.id
                        ))
                    })
                };
                let mut k = 1;
                let mut t = at(1)?;
                while t < row.time {
                    if k > 1_000_000 {
                        return Err(fmt(format!(
                            "line {}: series `{}` has a gap of over a million {freq} steps \
                             before `{}`",
                            row.line, s.id, row.time
                        )));
                    }
                    k += 1;
                    t = at(k)?;
                }
                if t != row.time {
                    // a month apart but on another day of the month: monthly data written
                    // on a day some months do not have (the 30th, the 29th in February)
                    let days = (row.time.value - p.value)
                        / if time_kind == TimeKind::Date {
                            1
                        } else {
                            86_400
                        };
                    let monthly_hint = if matches!(
                        time_kind,
                        TimeKind::Date | TimeKind::DateTime { .. }
                    ) && (28..=31).contains(&days)
                        && matches!(freq, Freq::Days(28..=31))
                    {
                        "; dates a month apart are read as monthly when they all fall on the same day of the month (or on each month's last day): write them as YYYY-MM, or on one day such as the 1st"
                    } else {
                        ""
                    };
                    return Err(fmt(format!(
                        "line {}, column `{time_name}`: `{}` is not a whole number of {freq} \
                         steps after `{p}` (line {pline}) in series `{}`{monthly_hint}",
                        row.line, row.time, s.id
                    )));
                }
                if k > 1 {
                    if !spec.known.is_empty() {
                        return Err(fmt(format!(
                            "line {}: series `{}` misses {} time step(s) between `{p}` and `{}`; \
                             the known covariates ({}) cannot be filled, add the rows",
                            row.line,
                            s.id,
                            k - 1,
                            row.time,
                            spec.known
                                .iter()
                                .map(|c| format!("`{c}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        )));
                    }
                    filled_total += (k - 1) as usize;
                    if filled_total > MAX_FILLED {
                        return Err(fmt(format!(
                            "line {}: series `{}` misses {} {freq} step(s) between `{p}` and `{}`, and the gaps of the file add up to over {MAX_FILLED} missing steps; check the time column (its step is read as {freq}, the most common one)",
                            row.line,
                            s.id,
                            k - 1,
                            row.time
                        )));
                    }
                    for j in 1..k {
                        s.times.push(at(j)?);
                        s.target.push(f32::NAN);
                    }
                    s.filled += (k - 1) as usize;
                }
            }
            prev = Some((row.time, row.line));
            s.times.push(row.time);
            s.target.push(row.target);
            for (col, v) in s.known.iter_mut().zip(row.known) {
                col.push(v);
            }
        }
        series.push(s);
    }
    // each column's worst series, named when the file has several
    let columns = std::iter::once(&spec.target).chain(&spec.known);
    let notes = columns
        .enumerate()
        .filter_map(|(c, col)| {
            let (_, g) = rounding
                .iter()
                .enumerate()
                .filter_map(|(g, r)| r[c].excess().map(|x| (x, g)))
                .max_by(|a, b| a.0.total_cmp(&b.0))?;
            rounding[g][c].warning(col, spec.id_column.as_ref().map(|_| series[g].id.as_str()))
        })
        .collect();
    Ok(Panel {
        series,
        freq,
        time_kind,
        notes,
    })
}

/// Whether integer times (each series' in order) are dates written without dashes, `YYYYMM`
/// or `YYYYMMDD`, that cross the end of a month or year somewhere (where, read as an index,
/// they jump): that format's name.
pub(crate) fn compact_dates(series: &[Vec<i64>]) -> Option<&'static str> {
    let yyyymm = |v: i64| (100_001..=999_912).contains(&v) && (1..=12).contains(&(v % 100));
    let yyyymmdd = |v: i64| {
        let (y, m, d) = (v / 10_000, v / 100 % 100, v % 100);
        (10_000_101..=99_991_231).contains(&v)
            && (1..=12).contains(&m)
            && (1..=days_in_month(y, m)).contains(&d)
    };
    let step = |a: i64, b: i64| i128::from(b) - i128::from(a);
    let jumps = series
        .iter()
        .any(|t| t.windows(2).any(|w| step(w[0], w[1]) != step(t[0], t[1])));
    let all = |f: &dyn Fn(i64) -> bool| series.iter().flatten().all(|&v| f(v));
    if !jumps {
        None
    } else if all(&yyyymm) {
        Some("YYYYMM")
    } else if all(&yyyymmdd) {
        Some("YYYYMMDD")
    } else {
        None
    }
}

/// The most common step between consecutive times over all series (ties: the smallest).
/// Dates and date-times whose every step keeps the day of the month (or the month's last day)
/// and the time of day are counted in calendar months. Dates read as daily that are all
/// weekdays, with at least one step from a Friday to the Monday after it, are business days;
/// with `hint` business daily (a model's), weekdays a few days apart are, weekend or not.
fn infer_freq(groups: &[&[Row]], kind: TimeKind, hint: Option<Freq>) -> Freq {
    let pairs = || {
        groups
            .iter()
            .flat_map(|rows| rows.windows(2).map(|w| (w[0].time, w[1].time)))
    };
    let monthly = match kind {
        TimeKind::Index => false,
        TimeKind::Month => true,
        TimeKind::Date | TimeKind::DateTime { .. } => pairs().all(|(a, b)| {
            let ((da, sa), (db, sb)) = (
                a.day_and_seconds().unwrap_or((0, 0)),
                b.day_and_seconds().unwrap_or((0, 0)),
            );
            let ((ya, ma, ka), (yb, mb, kb)) = (civil_from_days(da), civil_from_days(db));
            let same_day = ka == kb || (ka == days_in_month(ya, ma) && kb == days_in_month(yb, mb));
            sa == sb && same_day && (yb * 12 + mb) > (ya * 12 + ma)
        }),
    };
    // saturating: an integer index may span the whole 64-bit range
    let step = |(a, b): (Time, Time)| -> i64 {
        if kind == TimeKind::Month {
            b.value.saturating_sub(a.value)
        } else if monthly {
            let (ya, ma, _) = civil_from_days(a.day_and_seconds().unwrap_or((0, 0)).0);
            let (yb, mb, _) = civil_from_days(b.day_and_seconds().unwrap_or((0, 0)).0);
            (yb * 12 + mb) - (ya * 12 + ma)
        } else if kind == TimeKind::Date {
            b.value.saturating_sub(a.value).saturating_mul(86_400)
        } else {
            b.value.saturating_sub(a.value)
        }
    };
    let mut counts: HashMap<i64, usize> = HashMap::new();
    for p in pairs() {
        *counts.entry(step(p)).or_default() += 1;
    }
    let mode = counts
        .into_iter()
        .max_by_key(|&(s, c)| (c, std::cmp::Reverse(s)))
        .map_or(1, |(s, _)| s);
    let freq = match kind {
        TimeKind::Index => Freq::Integer(mode),
        _ if monthly => Freq::from_months(mode),
        _ => Freq::from_seconds(mode),
    };
    // a model's frequency decides: business days for a business-daily model, none for any
    // other (a daily model, trained before business days were told apart or on calendar days,
    // reads weekdays as daily data with the weekends missing, as it was trained)
    let hinted = hint == Some(Freq::BusinessDaily);
    let dailyish = freq == Freq::Daily || (hinted && matches!(freq, Freq::Days(2..=4)));
    if kind == TimeKind::Date && dailyish && (hint.is_none() || hinted) {
        let weekdays = groups
            .iter()
            .flat_map(|rows| rows.iter())
            .all(|r| weekday(r.time.value) < 5);
        let over_weekend = || pairs().any(|(a, b)| weekday(a.value) == 4 && b.value - a.value == 3);
        if weekdays && (hinted || over_weekend()) {
            return Freq::BusinessDaily;
        }
    }
    freq
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_days_round_trip_and_weekdays() {
        for z in [-800_000, -1, 0, 1, 19_782, 2_000_000] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
        assert_eq!(weekday(days_from_civil(2024, 2, 29)), 3); // Thursday
        assert_eq!(weekday(days_from_civil(1970, 1, 1)), 3);
        assert_eq!(weekday(days_from_civil(2024, 1, 1)), 0); // Monday
        assert_eq!(days_in_month(2024, 2), 29);
        assert_eq!(days_in_month(2023, 2), 28);
    }

    #[test]
    fn iso_weeks() {
        // 2021-01-03 is a Sunday in week 53 of 2020; 2021-01-04 starts week 1
        assert_eq!(iso_week(days_from_civil(2021, 1, 3)), 53);
        assert_eq!(iso_week(days_from_civil(2021, 1, 4)), 1);
        assert_eq!(iso_week(days_from_civil(2024, 12, 30)), 1);
        assert_eq!(iso_week(days_from_civil(2024, 2, 29)), 9);
    }

    #[test]
    fn add_months_keeps_month_ends() {
        let d = days_from_civil(2020, 1, 31);
        assert_eq!(civil_from_days(add_months(d, 1)), (2020, 2, 29));
        assert_eq!(civil_from_days(add_months(d, 2)), (2020, 3, 31));
        let d = days_from_civil(2020, 2, 29);
        assert_eq!(civil_from_days(add_months(d, 1)), (2020, 3, 31));
        assert_eq!(civil_from_days(add_months(d, -12)), (2019, 2, 28));
        let d = days_from_civil(2020, 1, 15);
        assert_eq!(civil_from_days(add_months(d, 13)), (2021, 2, 15));
    }

    #[test]
    fn freq_from_steps() {
        assert_eq!(Freq::from_seconds(3600), Freq::Hourly);
        assert_eq!(Freq::from_seconds(900), Freq::Minutes(15));
        assert_eq!(Freq::from_seconds(2 * 86_400), Freq::Days(2));
        assert_eq!(Freq::from_seconds(30), Freq::Seconds(30));
        assert_eq!(Freq::from_months(6), Freq::Months(6));
        assert_eq!(Freq::Minutes(15).season(), 96);
        assert_eq!(Freq::Months(6).season(), 2);
    }
}
