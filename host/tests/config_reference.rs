//! README.md's "Config reference" is the one description of the config: this test parses
//! each of its blocks (commented-out keys included) with the config types and checks that
//! every table lists exactly the keys its type has, so neither can change without the
//! other.

use std::collections::BTreeSet;
use std::path::Path;

use waystream::PipelineConfig;

/// The ```toml blocks of README's "## Config reference" section, with commented-out keys
/// (`# key = value`) uncommented.
fn reference_blocks() -> Vec<toml::Table> {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .expect("README.md");
    let start = readme
        .find("\n## Config reference")
        .expect("README has a config reference");
    let section = &readme[start + 1..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    let mut blocks = Vec::new();
    let mut rest = section;
    while let Some(open) = rest.find("```toml\n") {
        let body = &rest[open + 8..];
        let close = body.find("```").expect("a closed block");
        let text: String = body[..close]
            .lines()
            .map(|line| match line.strip_prefix("# ") {
                Some(key) if is_key_line(key) => key,
                _ => line,
            })
            .map(|line| format!("{line}\n"))
            .collect();
        blocks.push(toml::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}")));
        rest = &body[close..];
    }
    blocks
}

/// Whether `text` starts like `key = …`.
fn is_key_line(text: &str) -> bool {
    text.split_once(" = ").is_some_and(|(key, _)| {
        !key.is_empty() && key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
    })
}

/// The keys of a table: for an array of tables, of all its tables together.
fn keys(value: &serde_json::Value) -> BTreeSet<String> {
    match value {
        serde_json::Value::Object(map) => map.keys().cloned().collect(),
        serde_json::Value::Array(items) => items.iter().flat_map(keys).collect(),
        _ => BTreeSet::new(),
    }
}

/// Parses `table` as a pipeline config and compares each of its tables' keys with the keys
/// of the type that read it.
fn check(table: &toml::Table, what: &str) {
    let config: PipelineConfig = table
        .clone()
        .try_into()
        .unwrap_or_else(|e| panic!("{what}: the reference does not parse: {e}"));
    let written = serde_json::to_value(&config).unwrap();
    let read = serde_json::to_value(table).unwrap();
    assert_eq!(keys(&read), keys(&written), "{what}: top-level keys");
    for (name, value) in written.as_object().unwrap() {
        assert_eq!(
            keys(&read[name]),
            keys(value),
            "{what}: the keys of [{name}] in README.md and in its type differ"
        );
    }
}

#[test]
fn the_readme_lists_every_key_of_every_table() {
    let blocks = reference_blocks();
    let (main, alternatives) = blocks.split_first().expect("a main block");
    check(main, "the main block");
    let mut tables_seen = BTreeSet::new();
    for alternative in alternatives {
        for (table, value) in alternative {
            // The Firehose block serves as [sink] and as [dead_letter].
            let targets: Vec<&str> =
                if value.get("type").and_then(|t| t.as_str()) == Some("firehose") {
                    vec!["sink", "dead_letter"]
                } else {
                    vec![table.as_str()]
                };
            for target in targets {
                if !cfg!(feature = "aws") {
                    continue; // every alternative block is an AWS part
                }
                let mut composed = main.clone();
                composed.insert(target.to_string(), value.clone());
                check(&composed, &format!("[{target}] {}", value["type"]));
                tables_seen.insert(format!("{target}.{}", value["type"]));
            }
        }
    }
    if cfg!(feature = "aws") {
        let expected = [
            "dead_letter.\"firehose\"",
            "dead_letter.\"s3\"",
            "sink.\"firehose\"",
            "sink.\"opensearch\"",
            "source.\"kinesis\"",
        ];
        assert_eq!(
            tables_seen.into_iter().collect::<Vec<_>>(),
            expected,
            "every kind of table has a block"
        );
    }
}
