//! PLT objects and files as producers read them: whole, plain or gzip, into point lines.

use std::io::Read;

use anyhow::{Context, Result, bail};
use waystream_contract::plt::{self, LineSplitter};

/// One trajectory's point lines (without terminators), `seq` = index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trajectory {
    /// The user (Geolife: the `NNN` folder).
    pub user: String,
    /// The trajectory (the file name without `.plt`).
    pub id: String,
    /// The point lines, without line ends.
    pub lines: Vec<Vec<u8>>,
}

/// User and trajectory from an S3 key in the Geolife layout
/// `.../<user>/Trajectory/<name>.plt` (or `.plt.gz`).
pub fn trajectory_of_key(key: &str) -> Result<(String, String)> {
    plt::trajectory_of_key(key).map_err(anyhow::Error::msg)
}

/// The point lines of a PLT file's bytes: gunzipped if they are gzip, the header
/// skipped, line ends (any of LF, CRLF, CR) removed. A file that ends inside its header
/// is an error; one with a header and no points has no lines.
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
    let mut lines = LineSplitter::new(text);
    let header = lines.skip_lines(plt::HEADER_LINES);
    if header < plt::HEADER_LINES {
        bail!(
            "the file ends inside its header ({header} of {} lines): it holds no point",
            plt::HEADER_LINES
        );
    }
    let splitter = lines.clone();
    Ok(lines.map(|line| splitter.text(line).to_vec()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

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
        // Old Mac line ends split the same way.
        assert_eq!(
            point_lines(b"h1\rh2\rh3\rh4\rh5\rh6\ra\r\rc\r").unwrap(),
            want
        );
        let short = point_lines(b"h1\nh2\n").unwrap_err().to_string();
        assert!(
            short.contains("ends inside its header (2 of 6 lines)"),
            "{short}"
        );
    }
}
