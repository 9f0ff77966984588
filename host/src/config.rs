//! The pipeline config: one TOML file.
//!
//! README.md's "Config reference" is the one description of every key, with examples; a
//! test (`host/tests/config_reference.rs`) parses it against these types, so the two
//! cannot drift. Each table is a type here: [`PipelineConfig`] (the top level),
//! [`ModuleConfig`] (`[[transforms]]`), [`SourceConfig`], [`SinkConfig`],
//! [`DeadLetterConfig`], [`Limits`] and [`StateConfig`](crate::chain::StateConfig). Relative paths are relative to the config file's
//! folder (for the embedded default: the current directory).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::engine::{CacheConfig, Limits};
use crate::sinks::{DeadLetterConfig, SinkConfig};
use crate::sources::SourceConfig;

/// The config `waystream run` uses without `--config`: the demo of `cargo xtask demo`.
pub const EMBEDDED_DEFAULT: &str = include_str!("default.toml");

/// A whole pipeline.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Records per batch: a call into a module carries one batch.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// `[source]`: where records come from.
    pub source: SourceConfig,
    /// The chain of modules, in order.
    pub transforms: Vec<ModuleConfig>,
    /// `[sink]`: where documents go.
    pub sink: SinkConfig,
    /// `[dead_letter]`: where dead letters go.
    pub dead_letter: DeadLetterConfig,
    /// `[limits]`: what every module instance may use.
    #[serde(default)]
    pub limits: Limits,
    /// `[cache]`: where compiled modules are kept between runs.
    #[serde(default)]
    pub cache: CacheConfig,
    /// `[state]`: how much per-trajectory state the modules keep.
    #[serde(default)]
    pub state: crate::chain::StateConfig,
    /// `[http]`: the HTTP server (metrics, health, status, live page); off by default.
    #[serde(default)]
    pub http: crate::http::HttpConfig,
    /// Refuse any module version whose digest its `allowed_digests` does not list.
    #[serde(default)]
    pub require_pinned_digests: bool,
    /// The folder relative paths are resolved against.
    #[serde(skip)]
    pub base: PathBuf,
}

fn default_batch_size() -> usize {
    1024
}

/// One module of the chain.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ModuleConfig {
    /// The module's name in logs, metrics and dead letters.
    pub name: String,
    /// The component file.
    pub path: PathBuf,
    /// Handed to the module's `init` as a JSON document.
    #[serde(default)]
    pub config: toml::Table,
    /// Config keys filled from files: JSON files (`.json`, `.geojson`) as JSON values,
    /// anything else as a string. Guests cannot read files themselves.
    #[serde(default)]
    pub config_files: BTreeMap<String, PathBuf>,
    /// The versions (`sha256:<hex>`) allowed when the pipeline requires pinned digests.
    #[serde(default)]
    pub allowed_digests: Vec<String>,
}

impl PipelineConfig {
    /// The geofence zones for the live page's map: the GeoJSON of the first module's
    /// `zones` config file, when one has such a file and it parses.
    pub fn zones(&self) -> Option<serde_json::Value> {
        let file = self
            .transforms
            .iter()
            .find_map(|m| m.config_files.get("zones"))?;
        let path = self.base.join(file);
        let read = std::fs::read(&path)
            .map_err(anyhow::Error::from)
            .and_then(|bytes| Ok(serde_json::from_slice(&bytes)?));
        match read {
            Ok(zones) => Some(zones),
            Err(e) => {
                tracing::warn!(path = %path.display(), "the live page shows no zones: {e:#}");
                None
            }
        }
    }

    /// Parses a config; relative paths will resolve against `base`.
    pub fn parse(text: &str, base: &Path) -> Result<Self> {
        let mut config: PipelineConfig = toml::from_str(text)?;
        config.base = base.to_path_buf();
        anyhow::ensure!(config.batch_size > 0, "batch_size must be at least 1");
        anyhow::ensure!(
            !config.transforms.is_empty(),
            "the chain ([[transforms]]) is empty"
        );
        let mut names: Vec<&str> = config.transforms.iter().map(|m| m.name.as_str()).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            anyhow::bail!("module name {:?} is used twice in the chain", w[0]);
        }
        Ok(config)
    }

    /// Reads a config file.
    pub fn load(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, base).with_context(|| format!("config {}", path.display()))
    }

    /// The embedded default (the demo pipeline), relative to the current directory.
    pub fn embedded_default() -> Result<Self> {
        Self::parse(EMBEDDED_DEFAULT, Path::new(".")).context("the embedded default config")
    }
}

impl ModuleConfig {
    /// Checks a version's digest against `allowed_digests` when pinning is `required`.
    pub fn check_pinned(&self, digest: &str, required: bool) -> Result<()> {
        if required
            && !self
                .allowed_digests
                .iter()
                .any(|d| d.eq_ignore_ascii_case(digest))
        {
            anyhow::bail!(
                "module {}: digest {digest} is not in its allowed_digests and the pipeline requires pinned digests",
                self.name
            );
        }
        Ok(())
    }

    /// The module's config as the JSON document its `init` receives.
    pub fn config_json(&self, base: &Path) -> Result<String> {
        let mut value = serde_json::to_value(&self.config)?;
        let object = value
            .as_object_mut()
            .context("module config must be a table")?;
        for (key, path) in &self.config_files {
            let path = base.join(path);
            let text = std::fs::read_to_string(&path).with_context(|| {
                format!(
                    "module {}: reading {key} from {}",
                    self.name,
                    path.display()
                )
            })?;
            let is_json = path
                .extension()
                .is_some_and(|e| e == "json" || e == "geojson");
            let entry = if is_json {
                serde_json::from_str(&text).with_context(|| {
                    format!("module {}: {} is not JSON", self.name, path.display())
                })?
            } else {
                serde_json::Value::String(text)
            };
            object.insert(key.clone(), entry);
        }
        Ok(value.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_default_parses() {
        let config = PipelineConfig::embedded_default().unwrap();
        let names: Vec<&str> = config.transforms.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["parse-plt", "geofence", "speed"]);
    }

    #[test]
    fn mistakes_are_reported() {
        let base = Path::new(".");
        let minimal = |extra: &str| {
            format!(
                "{extra}\n[source]\ntype='files'\npath='x'\n[[transforms]]\nname='a'\npath='a.wasm'\n[sink]\ntype='ndjson'\npath='o'\n[dead_letter]\ntype='ndjson'\npath='d'\n"
            )
        };
        assert!(PipelineConfig::parse(&minimal(""), base).is_ok());
        let err = PipelineConfig::parse(&minimal("batch_sise = 3"), base).unwrap_err();
        assert!(format!("{err:#}").contains("batch_sise"), "{err:#}");
        let err = PipelineConfig::parse(&minimal("batch_size = 0"), base).unwrap_err();
        assert!(format!("{err:#}").contains("batch_size"));
        let dup = minimal("").replace("[sink]", "[[transforms]]\nname='a'\npath='b.wasm'\n[sink]");
        assert!(
            format!("{:#}", PipelineConfig::parse(&dup, base).unwrap_err()).contains("used twice")
        );
    }

    #[test]
    fn pinning_refuses_unlisted_digests_only_when_required() {
        let module: ModuleConfig =
            toml::from_str("name='g'\npath='g.wasm'\nallowed_digests=['sha256:AB12']").unwrap();
        assert!(module.check_pinned("sha256:ab12", true).is_ok());
        assert!(module.check_pinned("sha256:ffff", false).is_ok());
        let err = module.check_pinned("sha256:ffff", true).unwrap_err();
        assert!(format!("{err}").contains("sha256:ffff"), "{err}");
    }

    #[test]
    fn module_config_merges_inline_values_and_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("z.geojson"),
            r#"{"type":"FeatureCollection","features":[]}"#,
        )
        .unwrap();
        std::fs::write(dir.path().join("note.txt"), "hello").unwrap();
        let module: ModuleConfig = toml::from_str(
            "name='g'\npath='g.wasm'\nconfig={limit=5}\nconfig_files={zones='z.geojson', note='note.txt'}",
        )
        .unwrap();
        let json: serde_json::Value =
            serde_json::from_str(&module.config_json(dir.path()).unwrap()).unwrap();
        assert_eq!(json["limit"], 5);
        assert_eq!(json["zones"]["type"], "FeatureCollection");
        assert_eq!(json["note"], "hello");
        let missing: ModuleConfig =
            toml::from_str("name='g'\npath='g.wasm'\nconfig_files={zones='nope.json'}").unwrap();
        assert!(
            format!("{:#}", missing.config_json(dir.path()).unwrap_err()).contains("nope.json")
        );
    }
}
