//! Model prices and limits in the models.dev `api.json` shape (reference §5.4).
//!
//! The bundled table (`prices.json`, as of the date in its `_meta`) ships with the binary;
//! `--pricing FILE` loads a models.dev `api.json` instead. Unknown fields are ignored, so a
//! full models.dev dump loads as is.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::event::Usage;

/// The bundled table's source text.
pub const BUNDLED_PRICES: &str = include_str!("prices.json");

/// Input + cache-read tokens above which the over-200K tier applies (reference §5.4).
pub const TIER_THRESHOLD_TOKENS: u64 = 200_000;

#[derive(Debug, thiserror::Error)]
pub enum PricingError {
    #[error("reading price table {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("price table is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("price table: {0}")]
    Shape(String),
}

/// Per-million-token rates of one tier.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TierCost {
    pub input: f64,
    pub output: f64,
    pub cache_read: f64,
    pub cache_write: f64,
}

impl TierCost {
    /// input·in + output·out + reasoning·out + cache_read·cr + cache_write·cw, per million.
    /// Reasoning is billed once at the output price: the adapters already removed it from
    /// `output` (reference §5.3).
    pub fn cost_usd(&self, u: &Usage) -> f64 {
        (u.input as f64 * self.input
            + u.output as f64 * self.output
            + u.reasoning as f64 * self.output
            + u.cache_read as f64 * self.cache_read
            + u.cache_write as f64 * self.cache_write)
            / 1_000_000.0
    }
}

/// A model's prices (models.dev `cost`). Missing rates are 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModelCost {
    pub input: f64,
    pub output: f64,
    pub cache_read: f64,
    pub cache_write: f64,
    /// Rates that replace **all** of the above for a request whose input + cache read exceeds
    /// 200K tokens (`experimentalOver200K`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context_over_200k: Option<TierCost>,
}

impl ModelCost {
    fn base(&self) -> TierCost {
        TierCost {
            input: self.input,
            output: self.output,
            cache_read: self.cache_read,
            cache_write: self.cache_write,
        }
    }

    /// The rates that apply to one request: the over-200K tier replaces every rate when it
    /// exists and `input + cache_read > 200_000` (cache write is not part of the test).
    pub fn tier_for(&self, u: &Usage) -> TierCost {
        match self.context_over_200k {
            Some(tier) if u.input + u.cache_read > TIER_THRESHOLD_TOKENS => tier,
            _ => self.base(),
        }
    }

    /// The cost of one request's usage in USD.
    pub fn cost_usd(&self, u: &Usage) -> f64 {
        self.tier_for(u).cost_usd(u)
    }
}

/// Token limits (models.dev `limit`). 0 means unknown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModelLimit {
    pub context: u64,
    pub output: u64,
    /// A separate input limit, when the provider has one (used by the overflow check).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<u64>,
}

/// One model entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    pub id: String,
    pub provider: String,
    pub cost: ModelCost,
    pub limit: ModelLimit,
}

#[derive(Deserialize)]
struct RawModel {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    cost: Option<ModelCost>,
    #[serde(default)]
    limit: Option<ModelLimit>,
}

/// Models by provider, in file order (so lookups across providers are deterministic).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PriceTable {
    providers: Vec<(String, Vec<ModelInfo>)>,
    /// `_meta.as_of` of the bundled table, when present.
    pub as_of: Option<String>,
}

impl PriceTable {
    /// The table shipped with tapeloop, parsed once per process.
    pub fn bundled() -> Arc<PriceTable> {
        static TABLE: OnceLock<Arc<PriceTable>> = OnceLock::new();
        TABLE
            .get_or_init(|| {
                Arc::new(
                    PriceTable::from_json(BUNDLED_PRICES)
                        .expect("the bundled prices.json is valid (checked by unit tests)"),
                )
            })
            .clone()
    }

    /// Parse a models.dev `api.json`: `{provider: {id, models: {model: {id, cost, limit}}}}`.
    /// Top-level entries that are not provider objects (such as `_meta`) and unknown fields
    /// are ignored; a model whose `cost`/`limit` has the wrong shape is an error.
    pub fn from_json(text: &str) -> Result<Self, PricingError> {
        let root: Value = serde_json::from_str(text)?;
        let Value::Object(root) = root else {
            return Err(PricingError::Shape(
                "expected an object of providers (models.dev api.json)".into(),
            ));
        };
        let mut table = PriceTable::default();
        for (key, provider) in &root {
            if key == "_meta" {
                table.as_of = provider
                    .get("as_of")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                continue;
            }
            let Some(models) = provider.get("models").and_then(Value::as_object) else {
                continue;
            };
            let provider_id = provider
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or(key)
                .to_string();
            let mut list = Vec::with_capacity(models.len());
            for (model_key, model) in models {
                let raw: RawModel = serde_json::from_value(model.clone())
                    .map_err(|e| PricingError::Shape(format!("{provider_id}/{model_key}: {e}")))?;
                list.push(ModelInfo {
                    id: raw.id.unwrap_or_else(|| model_key.clone()),
                    provider: provider_id.clone(),
                    cost: raw.cost.unwrap_or_default(),
                    limit: raw.limit.unwrap_or_default(),
                });
            }
            table.providers.push((provider_id, list));
        }
        Ok(table)
    }

    /// Read a models.dev `api.json` file.
    pub fn load(path: &Path) -> Result<Self, PricingError> {
        let text = std::fs::read_to_string(path).map_err(|source| PricingError::Io {
            path: path.display().to_string(),
            source,
        })?;
        PriceTable::from_json(&text)
    }

    /// Number of models in the table.
    pub fn len(&self) -> usize {
        self.providers.iter().map(|(_, m)| m.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every model, provider by provider, in file order.
    pub fn models(&self) -> impl Iterator<Item = &ModelInfo> {
        self.providers.iter().flat_map(|(_, m)| m.iter())
    }

    fn provider_models<'a, 'b>(
        &'a self,
        provider: Option<&'b str>,
    ) -> impl Iterator<Item = &'a ModelInfo> + use<'a, 'b> {
        self.providers
            .iter()
            .filter(move |(p, _)| provider.is_none_or(|want| p == want))
            .flat_map(|(_, m)| m.iter())
    }

    /// Find a model: exact id under `provider`, then exact id under any provider, then the
    /// same two passes with a date/`-latest` suffix stripped, then the longest id that is a
    /// prefix of the name ending at a `-` (under `provider` first). A `vendor/` prefix on the
    /// name (OpenRouter style) is dropped when the full name does not match.
    pub fn lookup(&self, provider: Option<&str>, model: &str) -> Option<&ModelInfo> {
        let mut names: Vec<&str> = vec![model];
        if let Some((_, tail)) = model.rsplit_once('/') {
            names.push(tail);
        }
        let exact = |name: &str| {
            [provider, None]
                .into_iter()
                .find_map(|scope| self.provider_models(scope).find(|m| m.id == name))
        };
        if let Some(m) = names.iter().find_map(|n| exact(n)) {
            return Some(m);
        }
        let stripped: Vec<String> = names
            .iter()
            .filter_map(|n| strip_version_suffix(n))
            .collect();
        if let Some(m) = stripped.iter().find_map(|n| exact(n)) {
            return Some(m);
        }
        names.iter().find_map(|name| {
            [provider, None].into_iter().find_map(|scope| {
                self.provider_models(scope)
                    .filter(|m| {
                        !m.id.is_empty()
                            && name.len() > m.id.len()
                            && name.starts_with(m.id.as_str())
                            && name.as_bytes()[m.id.len()] == b'-'
                    })
                    .max_by_key(|m| m.id.len())
            })
        })
    }
}

/// Strip a trailing release tag: `-20250514`, `-2024-07-18`, `@20250514`, `-latest`.
fn strip_version_suffix(name: &str) -> Option<String> {
    if let Some(base) = name.strip_suffix("-latest") {
        return Some(base.to_string());
    }
    let bytes = name.as_bytes();
    // -YYYY-MM-DD
    if bytes.len() > 11 {
        let tail = &name[name.len() - 11..];
        let t = tail.as_bytes();
        if t[0] == b'-'
            && t[5] == b'-'
            && t[8] == b'-'
            && t[1..5]
                .iter()
                .chain(&t[6..8])
                .chain(&t[9..])
                .all(u8::is_ascii_digit)
        {
            return Some(name[..name.len() - 11].to_string());
        }
    }
    // -YYYYMMDD or @YYYYMMDD
    if bytes.len() > 9 {
        let tail = &name[name.len() - 9..];
        let t = tail.as_bytes();
        if (t[0] == b'-' || t[0] == b'@') && t[1..].iter().all(u8::is_ascii_digit) {
            return Some(name[..name.len() - 9].to_string());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_table_parses_and_covers_the_providers() {
        let table = PriceTable::bundled();
        assert!(table.as_of.is_some());
        for provider in [
            "openai",
            "anthropic",
            "google",
            "deepseek",
            "mistral",
            "xai",
        ] {
            assert!(
                table.provider_models(Some(provider)).count() >= 2,
                "{provider} has models"
            );
        }
        for m in table.models().filter(|m| !m.id.ends_with(":free")) {
            assert!(m.cost.input > 0.0 && m.cost.output > 0.0, "{} priced", m.id);
            assert!(
                m.limit.context > 0 && m.limit.output > 0,
                "{} limited",
                m.id
            );
        }
    }

    #[test]
    fn suffixes_strip() {
        for (name, base) in [
            ("claude-sonnet-4-20250514", Some("claude-sonnet-4")),
            ("gpt-4o-mini-2024-07-18", Some("gpt-4o-mini")),
            ("claude-3-5-haiku-latest", Some("claude-3-5-haiku")),
            ("claude-sonnet-4@20250514", Some("claude-sonnet-4")),
            ("gpt-4o", None),
        ] {
            assert_eq!(strip_version_suffix(name).as_deref(), base, "{name}");
        }
    }
}
