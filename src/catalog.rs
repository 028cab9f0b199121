//! The model catalog: `provider/model` references, the configured default model and
//! fallbacks, the allowlist and aliases (DESIGN §3–4). Pure: no I/O.

use crate::config::Config;
use std::collections::BTreeMap;
use std::fmt;

/// Used when the config names no default model.
pub const DEFAULT_MODEL: &str = "anthropic/claude-sonnet-4-5";

/// A model on a provider, e.g. `anthropic/claude-sonnet-4-5`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModelRef {
    pub provider: String,
    pub model: String,
}

impl fmt::Display for ModelRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.provider, self.model)
    }
}

/// Canonical provider id: lower-cased, with well-known spellings folded (`z.ai` → `zai`).
pub fn normalize_provider(raw: &str) -> String {
    let p = raw.trim().to_ascii_lowercase();
    match p.as_str() {
        "z.ai" | "z-ai" => "zai".into(),
        "gemini" => "google".into(),
        _ => p,
    }
}

impl ModelRef {
    /// Parse `provider/model`; a bare id gets `default_provider`. The provider is the text
    /// before the first `/`, so `openrouter/meta-llama/llama-3` keeps its slashes.
    pub fn parse(raw: &str, default_provider: &str) -> Result<ModelRef, String> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err("a model reference is empty".into());
        }
        // Model ids have no spaces. (`@` they may have: `claude-haiku@20251001`,
        // `openai/@cf/openai/gpt-oss-20b`, DESIGN §4.)
        if let Some(c) = raw.chars().find(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "model reference \"{}\" contains {}; write provider/model, e.g. anthropic/claude-sonnet-4-5",
                raw.escape_debug(),
                if c.is_whitespace() {
                    "a space"
                } else {
                    "a control character"
                }
            ));
        }
        match raw.split_once('/') {
            Some((p, m)) => {
                let provider = normalize_provider(p);
                if provider.is_empty() || m.trim().is_empty() {
                    return Err(format!(
                        "model reference \"{raw}\" needs the form provider/model, e.g. anthropic/claude-sonnet-4-5"
                    ));
                }
                Ok(ModelRef {
                    provider,
                    model: m.trim().to_string(),
                })
            }
            None => Ok(ModelRef {
                provider: default_provider.to_string(),
                model: raw.to_string(),
            }),
        }
    }
}

/// What a session may choose from, built from config.
#[derive(Debug, Clone)]
pub struct Catalog {
    pub default: ModelRef,
    pub fallbacks: Vec<ModelRef>,
    /// Allowlisted models with their alias (empty = every model allowed).
    pub allowed: BTreeMap<ModelRef, Option<String>>,
    /// Lower-cased alias → model.
    pub aliases: BTreeMap<String, ModelRef>,
    /// Providers a model may name: the built-in ones and those configured with an endpoint.
    pub providers: std::collections::BTreeSet<String>,
    /// Lower-cased aliases, for `/<alias>` shortcuts in the directive parser.
    pub alias_words: std::collections::BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    #[error("Model \"{input}\" is not valid: {reason}")]
    Invalid { input: String, reason: String },
    #[error("Model \"{input}\": unknown provider \"{provider}\".{} Known providers: {}.", did_you_mean(suggestion), known.join(", "))]
    UnknownProvider {
        input: String,
        provider: String,
        known: Vec<String>,
        suggestion: Option<String>,
    },
    #[error("Model \"{input}\" is not allowed here.{} Allowed: {}.", did_you_mean(suggestion), allowed.join(", "))]
    NotAllowed {
        input: String,
        allowed: Vec<String>,
        suggestion: Option<String>,
    },
}

fn did_you_mean(s: &Option<String>) -> String {
    s.as_ref()
        .map(|s| format!(" Did you mean \"{s}\"?"))
        .unwrap_or_default()
}

/// The candidate most like `input` (Jaro-Winkler ≥ 0.8), if any.
pub fn closest<'a>(input: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let input = input.to_lowercase();
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(&input, &c.to_lowercase()), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c.to_string())
}

impl Catalog {
    /// Providers the default model, its fallbacks and the allowlist use, each with the
    /// first model that needs it (`default model anthropic/claude-sonnet-4-5`).
    pub fn providers_in_use(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        let models = std::iter::once((&self.default, "default model"))
            .chain(self.fallbacks.iter().map(|m| (m, "fallback model")))
            .chain(self.allowed.keys().map(|m| (m, "allowlisted model")));
        for (m, role) in models {
            if !out.iter().any(|(p, _)| *p == m.provider) {
                out.push((m.provider.clone(), format!("{role} {m}")));
            }
        }
        out
    }

    /// Build from a validated config (validation guarantees the refs parse).
    pub fn from_config(config: &Config) -> Catalog {
        let defaults = &config.agents.defaults;
        let mut aliases = BTreeMap::new();
        let mut allowed = BTreeMap::new();
        let fallback_provider = ModelRef::parse(DEFAULT_MODEL, "anthropic")
            .map(|m| m.provider)
            .unwrap_or_else(|_| "anthropic".into());
        for (key, entry) in &defaults.models {
            if let Ok(m) = ModelRef::parse(key, &fallback_provider) {
                if let Some(alias) = &entry.alias {
                    aliases.insert(alias.to_lowercase(), m.clone());
                }
                allowed.insert(m, entry.alias.clone());
            }
        }
        let resolve = |raw: &str| -> Option<ModelRef> {
            aliases
                .get(&raw.trim().to_lowercase())
                .cloned()
                .or_else(|| ModelRef::parse(raw, &fallback_provider).ok())
        };
        let default = resolve(&defaults.model.primary).unwrap_or_else(|| ModelRef {
            provider: "anthropic".into(),
            model: "claude-sonnet-4-5".into(),
        });
        let fallbacks = defaults
            .model
            .fallbacks
            .iter()
            .filter_map(|f| resolve(f))
            .collect();
        let providers = crate::providers::registry::known_providers(config);
        let alias_words = aliases.keys().cloned().collect();
        Catalog {
            default,
            fallbacks,
            allowed,
            aliases,
            providers,
            alias_words,
        }
    }

    /// The provider a bare model id belongs to.
    pub fn default_provider(&self) -> &str {
        &self.default.provider
    }

    /// Resolve an alias or model id to a model the session may use.
    pub fn resolve(&self, input: &str) -> Result<ModelRef, CatalogError> {
        let trimmed = input.trim();
        let model = match self.aliases.get(&trimmed.to_lowercase()) {
            Some(m) => m.clone(),
            None => ModelRef::parse(trimmed, self.default_provider()).map_err(|reason| {
                CatalogError::Invalid {
                    input: trimmed.to_string(),
                    reason,
                }
            })?,
        };
        if !self.providers.contains(&model.provider) {
            let suggestion = closest(&model.provider, self.providers.iter().map(String::as_str))
                .map(|p| format!("{p}/{}", model.model));
            return Err(CatalogError::UnknownProvider {
                input: trimmed.to_string(),
                provider: model.provider,
                known: self.providers.iter().cloned().collect(),
                suggestion,
            });
        }
        if self.is_allowed(&model) {
            Ok(model)
        } else {
            let refs: Vec<String> = self
                .allowed
                .keys()
                .map(ToString::to_string)
                .chain(self.aliases.keys().cloned())
                .collect();
            let suggestion = closest(trimmed, refs.iter().map(String::as_str))
                .or_else(|| closest(&model.model, self.allowed.keys().map(|m| m.model.as_str())));
            Err(CatalogError::NotAllowed {
                input: trimmed.to_string(),
                allowed: self.allowed_list(),
                suggestion,
            })
        }
    }

    /// Allowed when there is no allowlist, or the model is on it, or it is the default or
    /// a fallback (configured models are always usable).
    pub fn is_allowed(&self, model: &ModelRef) -> bool {
        self.allowed.is_empty()
            || self.allowed.contains_key(model)
            || &self.default == model
            || self.fallbacks.contains(model)
    }

    /// The alias of a model, if it has one.
    pub fn alias_of(&self, model: &ModelRef) -> Option<&str> {
        self.allowed.get(model).and_then(|a| a.as_deref())
    }

    /// Allowlisted models as display strings (`ref (alias)`), plus default and fallbacks.
    pub fn allowed_list(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut push = |m: &ModelRef, alias: Option<&String>| {
            let s = match alias {
                Some(a) => format!("{m} ({a})"),
                None => m.to_string(),
            };
            if !out.contains(&s) {
                out.push(s);
            }
        };
        for (m, alias) in &self.allowed {
            push(m, alias.as_ref());
        }
        if !self.allowed.contains_key(&self.default) {
            push(&self.default, None);
        }
        for f in &self.fallbacks {
            if !self.allowed.contains_key(f) {
                push(f, None);
            }
        }
        out
    }

    /// Models in the order a failing turn tries them: the chosen one, then fallbacks
    /// (only when the session uses the default model).
    pub fn chain(&self, chosen: Option<&ModelRef>) -> Vec<ModelRef> {
        match chosen {
            Some(m) if m != &self.default => vec![m.clone()],
            _ => {
                let mut v = vec![self.default.clone()];
                v.extend(
                    self.fallbacks
                        .iter()
                        .filter(|f| **f != self.default)
                        .cloned(),
                );
                v
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(text: &str) -> Config {
        crate::config::parse(std::path::Path::new("t.toml"), text).expect("valid config")
    }

    #[test]
    fn parse_refs() {
        let cases = [
            (
                "anthropic/claude-sonnet-4-5",
                "anthropic",
                "claude-sonnet-4-5",
            ),
            ("OpenAI/gpt-4o", "openai", "gpt-4o"),
            (
                "openrouter/meta-llama/llama-3-70b",
                "openrouter",
                "meta-llama/llama-3-70b",
            ),
            ("z.ai/glm-4.6", "zai", "glm-4.6"),
            ("gpt-4o", "anthropic", "gpt-4o"),
            // `@` belongs to model ids too (DESIGN §4).
            (
                "anthropic/claude-haiku@20251001",
                "anthropic",
                "claude-haiku@20251001",
            ),
            (
                "openai/@cf/openai/gpt-oss-20b",
                "openai",
                "@cf/openai/gpt-oss-20b",
            ),
        ];
        for (input, p, m) in cases {
            let r = ModelRef::parse(input, "anthropic").expect(input);
            assert_eq!((r.provider.as_str(), r.model.as_str()), (p, m), "{input}");
        }
        for bad in [
            "",
            "/x",
            "anthropic/",
            "  ",
            "not a ref!!",
            "anthropic/claude opus",
            "a/b\u{7}",
        ] {
            assert!(ModelRef::parse(bad, "anthropic").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn defaults_without_config() {
        let c = Catalog::from_config(&Config::default());
        assert_eq!(c.default.to_string(), DEFAULT_MODEL);
        assert!(c.resolve("openai/gpt-4o").is_ok());
        assert!(matches!(
            c.resolve("nosuch/x"),
            Err(CatalogError::UnknownProvider { .. })
        ));
        assert_eq!(
            c.resolve("claude-opus-4-5").map(|m| m.to_string()),
            Ok("anthropic/claude-opus-4-5".into())
        );
    }

    #[test]
    fn aliases_and_allowlist() {
        let c = Catalog::from_config(&cfg(r#"
[agents.defaults.model]
primary = "anthropic/claude-sonnet-4-5"
fallbacks = ["openai/gpt-4o-mini"]
[agents.defaults.models."anthropic/claude-opus-4-5"]
alias = "Opus"
[agents.defaults.models."google/gemini-2.5-flash"]
"#));
        assert_eq!(
            c.resolve("opus").map(|m| m.to_string()),
            Ok("anthropic/claude-opus-4-5".into())
        );
        assert_eq!(
            c.resolve("OPUS").map(|m| m.to_string()),
            Ok("anthropic/claude-opus-4-5".into())
        );
        assert!(c.resolve("google/gemini-2.5-flash").is_ok());
        assert!(
            c.resolve("openai/gpt-4o-mini").is_ok(),
            "fallback is allowed"
        );
        assert!(
            c.resolve("anthropic/claude-sonnet-4-5").is_ok(),
            "default is allowed"
        );
        let err = c.resolve("opsu").unwrap_err();
        assert!(err.to_string().contains("Did you mean \"opus\"?"), "{err}");
        let err = c.resolve("openai/gpt-5").unwrap_err();
        assert!(matches!(err, CatalogError::NotAllowed { .. }));
        assert!(
            err.to_string().contains("anthropic/claude-opus-4-5 (Opus)"),
            "{err}"
        );
        assert_eq!(
            c.chain(None)
                .iter()
                .map(|m| m.to_string())
                .collect::<Vec<_>>(),
            ["anthropic/claude-sonnet-4-5", "openai/gpt-4o-mini"]
        );
    }
}
