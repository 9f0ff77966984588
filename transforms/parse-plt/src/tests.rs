use super::*;
use chrono::NaiveDate;
use waystream_guest::testing::lines_batch;

fn expected_ms(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> i64 {
    NaiveDate::from_ymd_opt(y, mo, d)
        .unwrap()
        .and_hms_opt(h, mi, s)
        .unwrap()
        .and_utc()
        .timestamp_millis()
}

#[test]
fn parses_a_geolife_line_with_crlf() {
    let f =
        parse_line(b"39.984702,116.318417,0,492,39744.1201851852,2008-10-23,02:53:04\r").unwrap();
    assert_eq!(f.lat, 39.984702);
    assert_eq!(f.lon, 116.318417);
    assert!(
        (f.alt_m.unwrap() - 149.9616).abs() < 1e-9,
        "492 ft = 149.9616 m"
    );
    assert_eq!(f.ts_ms, expected_ms(2008, 10, 23, 2, 53, 4));
}

#[test]
fn minus_777_altitude_is_none_and_flagged() {
    let out = ParsePlt
        .process(lines_batch([
            "39.9,116.3,0,-777,39744.1,2008-10-23,02:53:04",
        ]))
        .unwrap();
    assert_eq!(out.points.get(0).unwrap().alt_m, None);
    assert_eq!(out.points.get(0).unwrap().flags, flags::ALTITUDE_MISSING);
    // Other negative altitudes are real values.
    let f = parse_line(b"39.9,116.3,0,-10,39744.1,2008-10-23,02:53:04").unwrap();
    assert!((f.alt_m.unwrap() + 3.048).abs() < 1e-12);
}

#[test]
fn time_matches_chrono_across_calendar_edges() {
    for (y, mo, d, h, mi, s) in [
        (1970, 1, 1, 0, 0, 0),
        (2000, 2, 29, 23, 59, 59),
        (2008, 12, 31, 12, 0, 1),
        (2012, 3, 1, 0, 0, 0),
        (1969, 12, 31, 23, 59, 59),
        (2100, 2, 28, 6, 30, 0),
    ] {
        let date = format!("{y:04}-{mo:02}-{d:02}");
        let time = format!("{h:02}:{mi:02}:{s:02}");
        assert_eq!(
            parse_date_time_ms(&date, &time).unwrap(),
            expected_ms(y, mo, d, h, mi, s),
            "{date} {time}"
        );
    }
}

#[test]
fn rejects_each_kind_of_bad_line_with_its_reason() {
    let cases = [
        ("", "empty line"),
        ("   \r", "empty line"),
        ("39.9,116.3,0,492,39744.1,2008-10-23", "found 6"),
        ("39.9,116.3,0,492,39744.1,2008-10-23,02:53:04,x", "found 8"),
        (
            "abc,116.3,0,492,39744.1,2008-10-23,02:53:04",
            "latitude is not a number",
        ),
        (
            "39.9,116.3,0,NaN,39744.1,2008-10-23,02:53:04",
            "altitude is not a number",
        ),
        (
            "400.17,116.3,0,492,39744.1,2008-10-23,02:53:04",
            "latitude out of range",
        ),
        (
            "39.9,-180.5,0,492,39744.1,2008-10-23,02:53:04",
            "longitude out of range",
        ),
        (
            "39.9,116.3,0,492,39744.1,2008-02-30,02:53:04",
            "bad date/time",
        ),
        (
            "39.9,116.3,0,492,39744.1,2008-10-23,24:00:00",
            "bad date/time",
        ),
        (
            "39.9,116.3,0,492,39744.1,23/10/2008,02:53:04",
            "bad date/time",
        ),
        ("Geolife trajectory", "found 1"),
        (
            "39.9,116.3\0,0,492,39744.1,2008-10-23,02:53:04",
            "binary data: control byte 0x00 at byte 10",
        ),
        (
            "39.9,116.3,0,492,39744.1,2008-10-23,02:53:04\u{fffd}",
            "a non-ASCII byte 0xef at byte 44",
        ),
        (
            "39.9\t116.3,0,492,39744.1,2008-10-23,02:53:04",
            "a tab at byte 4",
        ),
        (
            "39.9,116.3,0,492,39744.1,20-01-01,02:53:04",
            "the year must have four digits",
        ),
        (
            "39.9,116.3,0,492,39744.1,08-10-23,02:53:04",
            "the year must have four digits",
        ),
        (
            "39.9,116.3,0,492,39744.1,0000-01-01,00:00:00",
            "year 0000 is no year",
        ),
        (
            "39.9,116.3,0,492,39744.1,02008-10-23,02:53:04",
            "the date is not YYYY-MM-DD",
        ),
    ];
    for (line, reason) in cases {
        let err = parse_line(line.as_bytes()).unwrap_err().to_string();
        assert!(
            err.contains(reason),
            "{line:?}: {err:?} should mention {reason:?}"
        );
    }
}

#[test]
fn a_refusal_quotes_only_the_start_of_a_long_field() {
    let long = "9".repeat(1 << 20) + "x";
    let line = format!("{long},116.3,0,492,39744.1,2008-10-23,02:53:04");
    let err = parse_line(line.as_bytes()).unwrap_err().to_string();
    assert!(err.len() < 120, "{} bytes: {err:.200}", err.len());
    assert!(err.contains("(1048577 bytes)"), "{err}");
    // Found by fuzzing: a 300-digit latitude printed whole in its refusal.
    let line = format!(
        "{},116.3,0,492,39744.1,2008-10-23,02:53:04",
        "8".repeat(300)
    );
    let err = parse_line(line.as_bytes()).unwrap_err().to_string();
    assert_eq!(err, "latitude out of range: 8.88888888888889e299");
    let date = "2".repeat(100_000);
    let line = format!("39.9,116.3,0,492,39744.1,{date},02:53:04");
    let err = parse_line(line.as_bytes()).unwrap_err().to_string();
    assert!(err.len() < 200, "{} bytes: {err:.300}", err.len());
}

#[test]
fn poles_and_the_antimeridian_are_valid() {
    for (lat, lon) in [(90.0, 180.0), (-90.0, -180.0), (89.9999, 179.9999)] {
        let line = format!("{lat},{lon},0,0,39744.1,2008-10-23,02:53:04");
        let f = parse_line(line.as_bytes()).unwrap();
        assert_eq!((f.lat, f.lon), (lat, lon));
    }
}

#[test]
fn every_line_is_a_point_or_a_rejection_in_order() {
    let batch = lines_batch([
        "39.9,116.3,0,492,39744.1,2008-10-23,02:53:04\r",
        "garbage",
        "39.91,116.31,0,492,39744.1,2008-10-23,02:53:05",
        "",
    ]);
    let out = ParsePlt.process(batch).unwrap();
    assert_eq!(out.points.iter().map(|p| p.seq).collect::<Vec<_>>(), [0, 2]);
    assert_eq!(
        out.rejected.iter().map(|r| r.index).collect::<Vec<_>>(),
        [1, 3]
    );
}

#[test]
fn points_input_fails_the_batch() {
    let batch = waystream_guest::testing::points_batch(vec![]);
    assert!(ParsePlt.process(batch).is_err());
}
