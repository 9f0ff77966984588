//! {{name}}: a waystream transform. It passes points through unchanged; change
//! `process` to do more (see the waystream README, "Writing a transform").

use waystream_guest::{Batch, Output, Records, Transform};

/// The transform; its fields are its state and configuration, kept between batches.
pub struct Passthrough {
    /// A setting from the module's config (`config = { note = "…" }` in the pipeline).
    note: String,
}

impl Transform for Passthrough {
    fn init(config: &str) -> Result<Self, String> {
        let config: serde_json::Value = serde_json::from_str(config).map_err(|e| e.to_string())?;
        Ok(Passthrough {
            note: config["note"].as_str().unwrap_or("").to_string(),
        })
    }

    fn process(&mut self, batch: Batch) -> Result<Output, String> {
        let Records::Points(points) = batch.records else {
            return Err("{{name}} needs points: put it after parse-plt".into());
        };
        if !self.note.is_empty() {
            waystream_guest::debug!("{}: {} points", self.note, points.len());
        }
        Ok(Output::points(points))
    }
}

waystream_guest::export_transform!(Passthrough);

#[cfg(test)]
mod tests {
    use super::*;
    use waystream_guest::testing::{point, points_batch};

    #[test]
    fn points_come_out_unchanged() {
        let mut transform = Passthrough::init("{}").unwrap();
        let batch = points_batch(vec![point(0, 0, 1_000, 39.9, 116.4), point(0, 1, 2_000, 39.91, 116.4)]);
        let out = transform.process(batch).unwrap();
        assert_eq!(out.points.lat, [39.9, 39.91]);
        assert!(out.rejected.is_empty());
    }
}
