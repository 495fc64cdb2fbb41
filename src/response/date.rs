//! The `Date` header value (IMF-fixdate, RFC 9110 §5.6.7), formatted at most once a second per
//! thread.
//!
//! Each worker thread keeps its own copy, so reading it takes no lock; it is refreshed when the
//! wall clock's second has changed since it was formatted.

use std::cell::RefCell;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Length of an IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`.
pub const DATE_LEN: usize = 29;

struct CachedDate {
    second: u64,
    text: [u8; DATE_LEN],
    /// The monotonic moment the wall clock's next second starts, as far as we know: until then
    /// [`with_date_at`] needs no clock read at all.
    valid_until: Option<Instant>,
}

thread_local! {
    static DATE: RefCell<CachedDate> = const {
        RefCell::new(CachedDate { second: u64::MAX, text: [b' '; DATE_LEN], valid_until: None })
    };
}

/// Calls `f` with the date as an IMF-fixdate, given the caller's idea of the current monotonic
/// time (the executor's clock for this turn). Within the same wall-clock second this reads no
/// clock: the hot path of a response costs one comparison.
pub fn with_date_at<R>(now: Instant, f: impl FnOnce(&[u8]) -> R) -> R {
    DATE.with(|cell| {
        let mut cached = cell.borrow_mut();
        if cached.valid_until.is_none_or(|until| now >= until) {
            let wall = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            if cached.second != wall.as_secs() {
                cached.text = format_imf_fixdate(wall.as_secs());
                cached.second = wall.as_secs();
            }
            let to_next_second =
                Duration::from_secs(1) - Duration::from_nanos(wall.subsec_nanos().into());
            cached.valid_until = Some(now + to_next_second);
        }
        f(&cached.text)
    })
}

/// Calls `f` with the current date as an IMF-fixdate.
pub fn with_date<R>(f: impl FnOnce(&[u8]) -> R) -> R {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    DATE.with(|cell| {
        let mut cached = cell.borrow_mut();
        if cached.second != now {
            cached.text = format_imf_fixdate(now);
            cached.second = now;
        }
        f(&cached.text)
    })
}

/// Formats seconds since the Unix epoch as an IMF-fixdate.
pub fn format_imf_fixdate(secs: u64) -> [u8; DATE_LEN] {
    const DAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (hour, minute, second) = (rem / 3600, rem / 60 % 60, rem % 60);
    let (year, month, day) = civil_from_days(days as i64);
    let mut out = *b"Thu, 01 Jan 1970 00:00:00 GMT";
    out[..3].copy_from_slice(DAYS[(days % 7) as usize]);
    let two = |v: u64| [b'0' + (v / 10) as u8, b'0' + (v % 10) as u8];
    out[5..7].copy_from_slice(&two(day));
    out[8..11].copy_from_slice(MONTHS[(month - 1) as usize]);
    let y = year as u64;
    out[12..16].copy_from_slice(&[
        b'0' + (y / 1000 % 10) as u8,
        b'0' + (y / 100 % 10) as u8,
        b'0' + (y / 10 % 10) as u8,
        b'0' + (y % 10) as u8,
    ]);
    out[17..19].copy_from_slice(&two(hour));
    out[20..22].copy_from_slice(&two(minute));
    out[23..25].copy_from_slice(&two(second));
    out
}

/// Year, month (1–12) and day (1–31) of a day count since 1970-01-01 (Howard Hinnant's
/// days-to-civil algorithm).
pub(crate) fn civil_from_days(days: i64) -> (i64, u64, u64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u64;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u64;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_dates() {
        assert_eq!(&format_imf_fixdate(0), b"Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(
            &format_imf_fixdate(784_111_777),
            b"Sun, 06 Nov 1994 08:49:37 GMT"
        );
        assert_eq!(
            &format_imf_fixdate(951_782_400),
            b"Tue, 29 Feb 2000 00:00:00 GMT"
        );
        assert_eq!(
            &format_imf_fixdate(1_795_046_400),
            b"Thu, 19 Nov 2026 00:00:00 GMT"
        );
    }

    #[test]
    fn the_cached_date_has_the_right_shape() {
        with_date(|d| {
            assert_eq!(d.len(), DATE_LEN);
            assert!(d.ends_with(b" GMT"));
        });
    }
}
