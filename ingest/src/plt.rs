//! PLT files: trajectory identity from a path or key, and the point lines of a file.

use std::io::Read;

use anyhow::{Context, Result, bail};

/// Geolife files start with six header lines before the points.
pub const HEADER_LINES: usize = 6;

/// One trajectory's point lines (without terminators), `seq` = index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trajectory {
    pub user: String,
    pub id: String,
    pub lines: Vec<Vec<u8>>,
}

/// User and trajectory from an S3 key in the Geolife layout
/// `.../<user>/Trajectory/<name>.plt` (or `.plt.gz`).
pub fn trajectory_of_key(key: &str) -> Result<(String, String)> {
    let parts: Vec<&str> = key.split('/').collect();
    let n = parts.len();
    let name = parts[n - 1];
    let stem = name
        .strip_suffix(".plt.gz")
        .or_else(|| name.strip_suffix(".plt"))
        .filter(|stem| !stem.is_empty());
    match stem {
        Some(stem) if n >= 3 && parts[n - 2] == "Trajectory" && !parts[n - 3].is_empty() => {
            Ok((parts[n - 3].to_string(), stem.to_string()))
        }
        _ => bail!(
            "key {key:?} is not in the Geolife layout .../<user>/Trajectory/<name>.plt (or .plt.gz)"
        ),
    }
}

/// The point lines of a PLT file's bytes: gunzipped if they are gzip, the header
/// skipped, line ends (LF or CRLF) removed.
pub fn point_lines(bytes: &[u8]) -> Result<Vec<Vec<u8>>> {
    let plain;
    let text: &[u8] = if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::with_capacity(bytes.len() * 4);
        flate2::read::MultiGzDecoder::new(bytes)
            .read_to_end(&mut out)
            .context("gunzipping a PLT object")?;
        plain = out;
        &plain
    } else {
        bytes
    };
    let mut lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
    // A final line end leaves an empty piece; an empty line in the middle is kept (it
    // is a record, and the parser will say what is wrong with it).
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    Ok(lines
        .into_iter()
        .skip(HEADER_LINES)
        .map(|line| line.strip_suffix(b"\r").unwrap_or(line).to_vec())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

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
            let err = trajectory_of_key(bad).unwrap_err().to_string();
            assert!(err.contains("Geolife layout"), "{bad}: {err}");
        }
    }

    #[test]
    fn lines_of_plain_and_gzip_files() {
        let text = b"h1\r\nh2\r\nh3\r\nh4\r\nh5\r\nh6\r\na\r\n\r\nc\r\n";
        let want: Vec<Vec<u8>> = vec![b"a".to_vec(), b"".to_vec(), b"c".to_vec()];
        assert_eq!(point_lines(text).unwrap(), want);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(text).unwrap();
        assert_eq!(point_lines(&gz.finish().unwrap()).unwrap(), want);
        assert_eq!(
            point_lines(b"h1\nh2\nh3\nh4\nh5\nh6\nlast").unwrap(),
            vec![b"last".to_vec()]
        );
        assert!(point_lines(&[0x1f, 0x8b, 0, 1]).is_err());
    }
}
