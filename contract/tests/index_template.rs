//! The OpenSearch index template (`deploy/opensearch/index-template.json`) maps exactly the
//! fields the document encoder writes, each with a type that takes its values: derived
//! from a document the encoder writes with every field present, so a field added to the
//! document without the template (or the other way round) fails here.

use std::collections::BTreeMap;

use serde_json::Value;
use waystream_contract::Point;
use waystream_contract::document::{DocumentEncoder, Encoded};
use waystream_contract::flags;

/// Every field of a document, by dotted path, with the JSON type of its value.
fn fields(value: &Value, prefix: &str, out: &mut BTreeMap<String, &'static str>) {
    let Value::Object(map) = value else { return };
    for (key, value) in map {
        let path = format!("{prefix}{key}");
        let kind = match value {
            Value::String(_) => "string",
            Value::Number(n) if n.is_f64() => "float",
            Value::Number(_) => "integer",
            Value::Array(items) => match items.first() {
                Some(Value::String(_)) => "strings",
                _ => "array",
            },
            Value::Object(_) => "object",
            Value::Bool(_) => "bool",
            Value::Null => "null",
        };
        out.insert(path, kind);
    }
}

#[test]
fn the_template_maps_every_field_of_the_document_with_a_fitting_type() {
    let point = Point {
        alt_m: Some(49.5),
        zones: Some(0),
        dist_m: Some(12.25),
        speed_mps: Some(3.5),
        heading_deg: Some(90.5),
        flags: flags::ZONE_ENTER | flags::IMPLAUSIBLE_SPEED,
        ..Point::at(0, 7, 1_224_730_384_007, 39.984702, 116.318417)
    };
    let mut encoded = Encoded::default();
    DocumentEncoder::default().encode(
        &[("021", "20081023025304")],
        &[vec!["tsinghua".to_string()]],
        [point].into_iter(),
        &mut encoded,
    );
    let document: Value = serde_json::from_slice(encoded.iter().next().unwrap()).unwrap();
    let mut written = BTreeMap::new();
    fields(&document, "", &mut written);

    let template: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../deploy/opensearch/index-template.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let mappings = &template["template"]["mappings"];
    assert_eq!(
        mappings["dynamic"], "strict",
        "a field the template lacks is an error"
    );
    let properties = mappings["properties"].as_object().unwrap();
    let mapped: BTreeMap<&str, &str> = properties
        .iter()
        .map(|(name, m)| (name.as_str(), m["type"].as_str().unwrap_or("object")))
        .collect();
    let written_top: Vec<&str> = written
        .keys()
        .map(String::as_str)
        .filter(|k| !k.contains('.'))
        .collect();
    assert_eq!(
        mapped.keys().copied().collect::<Vec<_>>(),
        written_top,
        "the template's fields and the document's"
    );
    for (field, kind) in &written {
        let mapping = mapped[field.as_str()];
        let fits = match (*kind, mapping) {
            ("string", "keyword" | "date") => true,
            ("strings", "keyword") => true,
            ("integer", "long" | "integer") => true,
            ("float", "double" | "float") => true,
            ("object", "geo_point") => field == "location",
            _ => false,
        };
        assert!(fits, "{field}: a {kind} value mapped as {mapping}");
    }
    assert_eq!(mapped["ts"], "date");
    assert_eq!(mapped["location"], "geo_point");
    assert_eq!(mapped["point_id"], "keyword");
}
