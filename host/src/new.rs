//! `waystream new NAME --lang rust|python|js`: a transform project to start from.
//!
//! The templates under `templates/<lang>/` are built into the binary: a transform that
//! passes points through, a unit test in its language, a `waystream test` case, and a
//! README of three commands. `{{name}}` becomes the project's name (`{{name_snake}}` with
//! `-` as `_`, as Cargo names the built file) and `{{sdk}}` the path of the language's
//! SDK in this checkout (`guest-sdk/`, `guest-sdk/python`, `guest-sdk/js`), or `--sdk`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

const RUST: &[(&str, &str)] = &[
    (
        ".gitignore",
        include_str!("../../templates/rust/.gitignore"),
    ),
    (
        "Cargo.toml",
        include_str!("../../templates/rust/Cargo.toml"),
    ),
    ("README.md", include_str!("../../templates/rust/README.md")),
    (
        "src/lib.rs",
        include_str!("../../templates/rust/src/lib.rs"),
    ),
    (
        "tests/passthrough/case.toml",
        include_str!("../../templates/rust/tests/passthrough/case.toml"),
    ),
    (
        "tests/passthrough/expected.ndjson",
        include_str!("../../templates/rust/tests/passthrough/expected.ndjson"),
    ),
    (
        "tests/passthrough/input.ndjson",
        include_str!("../../templates/rust/tests/passthrough/input.ndjson"),
    ),
];

const PYTHON: &[(&str, &str)] = &[
    (
        ".gitignore",
        include_str!("../../templates/python/.gitignore"),
    ),
    (
        "README.md",
        include_str!("../../templates/python/README.md"),
    ),
    (
        "requirements.txt",
        include_str!("../../templates/python/requirements.txt"),
    ),
    (
        "test_transform.py",
        include_str!("../../templates/python/test_transform.py"),
    ),
    (
        "tests/passthrough/case.toml",
        include_str!("../../templates/python/tests/passthrough/case.toml"),
    ),
    (
        "tests/passthrough/expected.ndjson",
        include_str!("../../templates/python/tests/passthrough/expected.ndjson"),
    ),
    (
        "tests/passthrough/input.ndjson",
        include_str!("../../templates/python/tests/passthrough/input.ndjson"),
    ),
    (
        "transform.py",
        include_str!("../../templates/python/transform.py"),
    ),
];

const JS: &[(&str, &str)] = &[
    (".gitignore", include_str!("../../templates/js/.gitignore")),
    (".npmrc", include_str!("../../templates/js/.npmrc")),
    ("README.md", include_str!("../../templates/js/README.md")),
    (
        "package.json",
        include_str!("../../templates/js/package.json"),
    ),
    (
        "tests/passthrough/case.toml",
        include_str!("../../templates/js/tests/passthrough/case.toml"),
    ),
    (
        "tests/passthrough/expected.ndjson",
        include_str!("../../templates/js/tests/passthrough/expected.ndjson"),
    ),
    (
        "tests/passthrough/input.ndjson",
        include_str!("../../templates/js/tests/passthrough/input.ndjson"),
    ),
    (
        "transform.js",
        include_str!("../../templates/js/transform.js"),
    ),
    (
        "transform.test.js",
        include_str!("../../templates/js/transform.test.js"),
    ),
];

/// The template files of `lang`: (path in the project, contents).
fn template(lang: &str) -> Result<&'static [(&'static str, &'static str)]> {
    Ok(match lang {
        "rust" => RUST,
        "python" => PYTHON,
        "js" | "javascript" => JS,
        other => bail!("no template for {other:?}: rust, python or js"),
    })
}

/// Where the SDK of `lang` is in the checkout this binary was built from.
fn default_sdk(lang: &str) -> PathBuf {
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../guest-sdk");
    match lang {
        "rust" => sdk,
        "python" => sdk.join("python"),
        _ => sdk.join("js"),
    }
}

/// Writes a new project named `name` in `lang` into `dir` (which must not exist yet, or be
/// empty); `sdk` overrides where the SDK is. Returns the files written.
pub fn new_project(name: &str, lang: &str, dir: &Path, sdk: Option<&Path>) -> Result<Vec<PathBuf>> {
    let valid = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && name.as_bytes()[0].is_ascii_lowercase();
    anyhow::ensure!(
        valid,
        "{name:?}: a name is lower-case letters, digits, - and _, starting with a letter (it names the module and its file)"
    );
    let files = template(lang)?;
    if dir.exists() && std::fs::read_dir(dir)?.next().is_some() {
        bail!("{} exists and is not empty", dir.display());
    }
    let sdk = match sdk {
        Some(path) => path.to_path_buf(),
        None => default_sdk(lang),
    };
    let sdk = sdk.canonicalize().with_context(|| {
        format!(
            "the {lang} SDK is not at {} (pass --sdk PATH)",
            sdk.display()
        )
    })?;
    let mut written = Vec::new();
    for (path, text) in files {
        let text = text
            .replace("{{name_snake}}", &name.replace('-', "_"))
            .replace("{{name}}", name)
            .replace("{{sdk}}", &sdk.display().to_string());
        let target = dir.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&target, text).with_context(|| format!("writing {}", target.display()))?;
        written.push(target);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_templates_are_every_file_of_templates() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../templates");
        for lang in ["rust", "python", "js"] {
            let mut on_disk: Vec<String> = walkdir::WalkDir::new(root.join(lang))
                .into_iter()
                .filter_map(|e| e.ok())
                .filter(|e| e.file_type().is_file())
                .map(|e| {
                    e.path()
                        .strip_prefix(root.join(lang))
                        .unwrap()
                        .display()
                        .to_string()
                })
                .collect();
            on_disk.sort();
            let mut built_in: Vec<String> = template(lang)
                .unwrap()
                .iter()
                .map(|(p, _)| p.to_string())
                .collect();
            built_in.sort();
            assert_eq!(
                built_in, on_disk,
                "templates/{lang}: update the list in new.rs"
            );
        }
    }

    #[test]
    fn a_project_has_no_placeholder_left_and_refuses_bad_names() {
        let dir = tempfile::tempdir().unwrap();
        for lang in ["rust", "python", "js"] {
            let project = dir.path().join(lang);
            let files = new_project("my-stops", lang, &project, None).unwrap();
            for file in files {
                let text = std::fs::read_to_string(&file).unwrap();
                assert!(!text.contains("{{"), "{}: {text}", file.display());
            }
        }
        assert!(new_project("My Stops", "rust", &dir.path().join("x"), None).is_err());
        assert!(new_project("ok", "cobol", &dir.path().join("y"), None).is_err());
        assert!(
            new_project("ok", "rust", &dir.path().join("rust"), None).is_err(),
            "not empty"
        );
    }
}
