//! The Geolife PLT file layout.
//!
//! A PLT file is six header lines, then one point per line:
//!
//! ```text
//! Geolife trajectory
//! WGS 84
//! Altitude is in Feet
//! Reserved 3
//! 0,2,255,My Track,0,0,2,8421376
//! 0
//! 39.984702,116.318417,0,492,39744.1201851852,2008-10-23,02:53:04
//! ```
//!
//! Geolife writes CRLF, but files that went through other tools end their lines in LF,
//! CR alone (old Mac tools) or `\r\r\n` (a CRLF file converted once more). Every reader
//! here splits with [`LineSplitter`], which takes all of them as one line end, so the
//! same points come out of a file whatever its line ends, with the same `seq`.
//!
//! In the Geolife layout a file is `Data/<user>/Trajectory/<trajectory>.plt`; the user
//! and trajectory of a point come from that path ([`trajectory_of_path`]) or, for an
//! object in S3, from its key ([`trajectory_of_key`]).

use std::path::Path;

/// Header lines at the top of every Geolife file, before the points.
pub const HEADER_LINES: usize = 6;

/// The six header lines as Geolife writes them (with CRLF), for generators and tests.
pub const HEADER: &str = "Geolife trajectory\r\nWGS 84\r\nAltitude is in Feet\r\nReserved 3\r\n0,2,255,My Track,0,0,2,8421376\r\n0\r\n";

/// One line of a file: `bytes[start..end]` is its text, `bytes[end..next]` its line end
/// (empty for a last line without one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line {
    /// Where the line starts.
    pub start: usize,
    /// Where its text ends (its line end starts).
    pub end: usize,
    /// Where the next line starts.
    pub next: usize,
}

/// Splits bytes into lines. A line ends at `\n`, at `\r\n`, at `\r\r\n` (any run of CRs
/// followed by LF) or at a CR alone; the line end is not part of the line. A last line
/// without a line end is a line; an empty input has no lines.
///
/// One sequence is ambiguous: in a file that mixes CR-only and LF line ends, a line ending
/// in CR followed by an empty line ending in LF reads as one CRLF. Files in any one
/// convention (and files mixing LF, CRLF and CR CR LF) split as their LF twins do.
///
/// Linear in the input whatever it holds: a run of CRs without an LF after it is looked
/// at once, not once per CR.
#[derive(Debug, Clone)]
pub struct LineSplitter<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// Where a run of CRs known to have no LF after it ends: each CR before it is a line
    /// end of its own.
    lone_crs_until: usize,
}

impl<'a> LineSplitter<'a> {
    /// A splitter at the start of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        LineSplitter {
            bytes,
            pos: 0,
            lone_crs_until: 0,
        }
    }

    /// Where the next line starts (the length of the input once every line was read).
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Continues from `position`, a [`LineSplitter::position`] of a splitter over the same
    /// bytes.
    pub fn seek(&mut self, position: usize) {
        self.pos = position.min(self.bytes.len());
        self.lone_crs_until = 0;
    }

    /// The text of a line this splitter returned.
    pub fn text(&self, line: Line) -> &'a [u8] {
        &self.bytes[line.start..line.end]
    }

    /// Skips up to `lines` lines (a header). Returns how many there were: fewer than
    /// `lines` when the input ends first.
    pub fn skip_lines(&mut self, lines: usize) -> usize {
        (0..lines).take_while(|_| self.next().is_some()).count()
    }
}

impl Iterator for LineSplitter<'_> {
    type Item = Line;

    #[inline]
    fn next(&mut self) -> Option<Line> {
        let (bytes, start) = (self.bytes, self.pos);
        if start >= bytes.len() {
            return None;
        }
        let Some(found) = memchr::memchr2(b'\n', b'\r', &bytes[start..]) else {
            self.pos = bytes.len();
            return Some(Line {
                start,
                end: bytes.len(),
                next: bytes.len(),
            });
        };
        let end = start + found;
        let next = if bytes[end] == b'\n' || end < self.lone_crs_until {
            end + 1
        } else {
            let crs = bytes[end..].iter().take_while(|&&b| b == b'\r').count();
            if bytes.get(end + crs) == Some(&b'\n') {
                end + crs + 1
            } else {
                self.lone_crs_until = end + crs;
                end + 1
            }
        };
        self.pos = next;
        Some(Line { start, end, next })
    }
}

/// User and trajectory of a PLT file from its path: in the Geolife layout
/// `.../<user>/Trajectory/<trajectory>.plt`; elsewhere the user is the file's folder name.
pub fn trajectory_of_path(path: &Path) -> (String, String) {
    let name = |p: Option<&Path>| {
        p.and_then(Path::file_name)
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let parent = path.parent();
    let user = if parent
        .and_then(Path::file_name)
        .is_some_and(|n| n == "Trajectory")
    {
        name(parent.and_then(Path::parent))
    } else {
        name(parent)
    };
    let id = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    (user, id)
}

/// User and trajectory from an S3 key in the Geolife layout
/// `.../<user>/Trajectory/<name>.plt` (or `.plt.gz`); the error says what is expected.
pub fn trajectory_of_key(key: &str) -> Result<(String, String), String> {
    let parts: Vec<&str> = key.split('/').collect();
    let n = parts.len();
    let stem = parts[n - 1]
        .strip_suffix(".plt.gz")
        .or_else(|| parts[n - 1].strip_suffix(".plt"))
        .filter(|stem| !stem.is_empty());
    match stem {
        Some(stem) if n >= 3 && parts[n - 2] == "Trajectory" && !parts[n - 3].is_empty() => {
            Ok((parts[n - 3].to_string(), stem.to_string()))
        }
        _ => Err(format!(
            "key {key:?} is not in the Geolife layout .../<user>/Trajectory/<name>.plt (or .plt.gz)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(bytes: &[u8]) -> Vec<&[u8]> {
        let splitter = LineSplitter::new(bytes);
        let text = splitter.clone();
        splitter.map(|l| text.text(l)).collect()
    }

    #[test]
    fn every_line_end_is_one_line_end() {
        let want: Vec<&[u8]> = vec![b"a", b"", b"c"];
        for text in [
            &b"a\n\nc\n"[..],
            b"a\r\n\r\nc\r\n",
            b"a\r\rc\r",
            b"a\r\r\n\r\r\nc\r\r\n",
            b"a\n\r\nc",
            b"a\r\n\rc\n",
        ] {
            assert_eq!(lines(text), want, "{:?}", String::from_utf8_lossy(text));
        }
        assert!(lines(b"").is_empty());
        assert_eq!(lines(b"x"), vec![b"x"]);
        assert_eq!(lines(b"\n"), vec![b""]);
        assert_eq!(lines(b"\r\r\r"), vec![&b""[..], b"", b""]);
        assert_eq!(lines(b"a\r\r\rb\r\n"), vec![&b"a"[..], b"", b"", b"b"]);
    }

    #[test]
    fn lines_and_line_ends_cover_the_input() {
        let text = b"h\r\n\rx\r\r\ny\rz\n\n\r\r";
        let mut covered = 0;
        for line in LineSplitter::new(text) {
            assert_eq!(line.start, covered);
            assert!(line.start <= line.end && line.end <= line.next);
            assert!(!text[line.start..line.end].contains(&b'\n'));
            assert!(!text[line.start..line.end].contains(&b'\r'));
            covered = line.next;
        }
        assert_eq!(covered, text.len());
    }

    #[test]
    fn a_long_run_of_crs_is_split_in_linear_time() {
        let text = vec![b'\r'; 1_000_000];
        let started = std::time::Instant::now();
        assert_eq!(LineSplitter::new(&text).count(), 1_000_000);
        // Quadratic would be 5·10^11 byte reads; linear is well under a second even in debug.
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
    }

    #[test]
    fn skipping_a_header_says_how_many_lines_there_were() {
        let mut splitter = LineSplitter::new(HEADER.as_bytes());
        assert_eq!(splitter.skip_lines(HEADER_LINES), HEADER_LINES);
        assert_eq!(splitter.next(), None);
        let mut short = LineSplitter::new(b"h1\nh2\n");
        assert_eq!(short.skip_lines(HEADER_LINES), 2);
    }

    #[test]
    fn user_and_trajectory_from_a_path() {
        let p = Path::new("/x/Data/021/Trajectory/20081023025304.plt");
        assert_eq!(
            trajectory_of_path(p),
            ("021".into(), "20081023025304".into())
        );
        let p = Path::new("/x/walks/morning.plt");
        assert_eq!(trajectory_of_path(p), ("walks".into(), "morning".into()));
    }

    #[test]
    fn geolife_keys_and_clear_errors_for_others() {
        let key = "raw/Data/021/Trajectory/20081023025304.plt";
        assert_eq!(
            trajectory_of_key(key).unwrap(),
            ("021".into(), "20081023025304".into())
        );
        assert_eq!(trajectory_of_key("021/Trajectory/x.plt.gz").unwrap().1, "x");
        for bad in [
            "x.plt",
            "021/x.plt",
            "021/Trajectory/.plt",
            "021/Trajectory/x.csv",
            "/Trajectory/x.plt",
        ] {
            let err = trajectory_of_key(bad).unwrap_err();
            assert!(err.contains("Geolife layout"), "{bad}: {err}");
        }
    }
}
