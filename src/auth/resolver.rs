//! Candidate credentials for a turn on provider P: stored profiles in auth order, then
//! environment keys, then `models.providers.P.apiKey`, deduplicated by value (DESIGN §5).
//!
//! `Resolver` is the seam the rotating turn loop depends on; `BasicResolver` reads the
//! profile store on every call so CLI edits are seen without a restart.

use super::credential::{Credential, CredentialKind, CredentialSource};
use super::env_keys::{env_candidates, primary_env_var};
use super::profiles::{Profile, ProfileCredential, ProfileStore, ProfileStoreError};
use crate::clock::Clock;
use crate::config::env::EnvMap;
use crate::config::{Config, SecretInput, SecretRef, SecretSource};
use crate::secret::Secret;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("no credentials for {provider} — set {env_var} or run `remoteclaw onboard`")]
    NoCredentials { provider: String, env_var: String },
    #[error("Auth profile \"{id}\" not found. Profiles for {provider}: {}.", if known.is_empty() { "none".to_string() } else { known.join(", ") })]
    ProfileNotFound {
        id: String,
        provider: String,
        known: Vec<String>,
    },
    #[error(
        "Auth profile \"{id}\" cannot be used: {reason}. Fix it with `remoteclaw models status`, or unpin with /model default."
    )]
    ProfileUnusable { id: String, reason: String },
    #[error(transparent)]
    Store(#[from] ProfileStoreError),
}

/// A stored profile as listings show it (no secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileInfo {
    pub id: String,
    pub provider: String,
}

pub trait Resolver: Send + Sync + std::fmt::Debug {
    /// Every stored profile of this agent, by id.
    fn profiles(&self) -> Result<Vec<ProfileInfo>, ResolveError>;

    /// Candidates for one turn on `provider`, in the order to try them. With `pinned`,
    /// only that profile.
    fn candidates(
        &self,
        provider: &str,
        pinned: Option<&str>,
    ) -> Result<Vec<Credential>, ResolveError>;
}

#[derive(Debug)]
pub struct BasicResolver {
    pub config: Arc<Config>,
    pub env: Arc<EnvMap>,
    pub profiles_path: PathBuf,
    pub clock: Arc<dyn Clock>,
}

fn rank(p: &Profile) -> u8 {
    match p.credential {
        ProfileCredential::Oauth { .. } => 0,
        ProfileCredential::Token { .. } => 1,
        ProfileCredential::ApiKey { .. } => 2,
    }
}

impl BasicResolver {
    fn resolve_ref(&self, r: &SecretRef) -> Option<Secret> {
        match r.source {
            SecretSource::Env => self.env.get_nonblank(&r.id).map(|v| Secret::new(v.trim())),
            // file and exec SecretRefs are resolved by the full resolver (issue 4).
            SecretSource::File | SecretSource::Exec => None,
        }
    }

    /// The usable credential of a profile, or why not.
    fn profile_credential(&self, p: &Profile) -> Result<Credential, String> {
        let now = self.clock.now_ms();
        let (kind, secret, expires_ms) = match &p.credential {
            ProfileCredential::ApiKey { key, key_ref } => (
                CredentialKind::ApiKey,
                key.clone()
                    .or_else(|| key_ref.as_ref().and_then(|r| self.resolve_ref(r))),
                None,
            ),
            ProfileCredential::Token {
                token,
                token_ref,
                expires_ms,
            } => (
                CredentialKind::Token,
                token
                    .clone()
                    .or_else(|| token_ref.as_ref().and_then(|r| self.resolve_ref(r))),
                *expires_ms,
            ),
            ProfileCredential::Oauth {
                access, expires_ms, ..
            } => (CredentialKind::Oauth, access.clone(), *expires_ms),
        };
        let secret = secret
            .filter(|s| !s.is_blank())
            .ok_or_else(|| "it holds no usable secret (missing_credential)".to_string())?;
        if expires_ms.is_some_and(|e| e <= now) {
            return Err("its token has expired (expired)".into());
        }
        Ok(Credential {
            id: p.id.clone(),
            provider: p.provider.clone(),
            kind,
            source: CredentialSource::Profile,
            secret,
            expires_ms,
        })
    }
}

impl Resolver for BasicResolver {
    fn profiles(&self) -> Result<Vec<ProfileInfo>, ResolveError> {
        let store = ProfileStore::load(&self.profiles_path)?;
        Ok(store
            .profiles
            .values()
            .map(|p| ProfileInfo {
                id: p.id.clone(),
                provider: p.provider.clone(),
            })
            .collect())
    }

    fn candidates(
        &self,
        provider: &str,
        pinned: Option<&str>,
    ) -> Result<Vec<Credential>, ResolveError> {
        let store = ProfileStore::load(&self.profiles_path)?;
        if let Some(id) = pinned {
            let profile = store
                .profiles
                .get(id)
                .filter(|p| p.provider == provider)
                .ok_or_else(|| ResolveError::ProfileNotFound {
                    id: id.to_string(),
                    provider: provider.to_string(),
                    known: store.for_provider(provider).map(|p| p.id.clone()).collect(),
                })?;
            return self
                .profile_credential(profile)
                .map(|c| vec![c])
                .map_err(|reason| ResolveError::ProfileUnusable {
                    id: id.to_string(),
                    reason,
                });
        }
        let ids: Vec<String> = if let Some(order) = store.order.get(provider) {
            order.clone()
        } else if let Some(order) = self.config.auth.order.get(provider) {
            order.clone()
        } else {
            let declared: Vec<String> = self
                .config
                .auth
                .profiles
                .iter()
                .filter(|(_, d)| d.provider == provider)
                .map(|(id, _)| id.clone())
                .collect();
            if declared.is_empty() {
                let mut stored: Vec<&Profile> = store.for_provider(provider).collect();
                stored.sort_by(|a, b| rank(a).cmp(&rank(b)).then_with(|| a.id.cmp(&b.id)));
                stored.into_iter().map(|p| p.id.clone()).collect()
            } else {
                declared
            }
        };
        let mut out: Vec<Credential> = Vec::new();
        for id in &ids {
            match store.profiles.get(id) {
                Some(p) if p.provider == provider => match self.profile_credential(p) {
                    Ok(c) => out.push(c),
                    Err(reason) => tracing::debug!(profile = %id, %reason, "skipping auth profile"),
                },
                Some(_) => {
                    tracing::debug!(profile = %id, "skipping auth profile of another provider (provider_mismatch)")
                }
                None => {
                    tracing::debug!(profile = %id, "auth order names a missing profile (profile_missing)")
                }
            }
        }
        out.extend(env_candidates(provider, &self.env));
        if let Some(input) = self
            .config
            .models
            .providers
            .get(provider)
            .and_then(|p| p.api_key.as_ref())
        {
            let secret = match input {
                SecretInput::Plain(v) => Some(Secret::new(v.trim())),
                SecretInput::Ref(r) => self.resolve_ref(r),
            };
            if let Some(secret) = secret.filter(|s| !s.is_blank()) {
                let source = if matches!(input, SecretInput::Ref(_)) {
                    CredentialSource::Ref
                } else {
                    CredentialSource::Config
                };
                out.push(Credential {
                    id: format!("config:{provider}"),
                    provider: provider.to_string(),
                    kind: CredentialKind::ApiKey,
                    source,
                    secret,
                    expires_ms: None,
                });
            }
        }
        let mut seen = HashSet::new();
        out.retain(|c| seen.insert(c.secret.expose().to_string()));
        if out.is_empty() {
            return Err(ResolveError::NoCredentials {
                provider: provider.to_string(),
                env_var: primary_env_var(provider),
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn resolver(
        env: &[(&str, &str)],
        profiles: Option<&str>,
        config: &str,
    ) -> (BasicResolver, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("auth-profiles.json");
        if let Some(p) = profiles {
            std::fs::write(&path, p).expect("write");
        }
        let config = crate::config::parse(std::path::Path::new("t.toml"), config).expect("config");
        (
            BasicResolver {
                config: Arc::new(config),
                env: Arc::new(EnvMap::from_pairs(env.iter().copied())),
                profiles_path: path,
                clock: ManualClock::new(1_000_000),
            },
            dir,
        )
    }

    fn ids(r: &BasicResolver, p: &str) -> Vec<String> {
        r.candidates(p, None)
            .expect("candidates")
            .into_iter()
            .map(|c| c.id)
            .collect()
    }

    #[test]
    fn no_credentials_message() {
        let (r, _d) = resolver(&[], None, "");
        let e = r.candidates("anthropic", None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "no credentials for anthropic — set ANTHROPIC_API_KEY or run `remoteclaw onboard`"
        );
    }

    #[test]
    fn profiles_then_env_then_config_deduped() {
        let profiles = r#"{"version":1,"profiles":{
            "anthropic:work":{"type":"api_key","provider":"anthropic","key":"k-work"},
            "anthropic:tok":{"type":"token","provider":"anthropic","token":"sk-ant-oat01-t"},
            "anthropic:old":{"type":"token","provider":"anthropic","token":"t-old","expires":5},
            "anthropic:ref":{"type":"api_key","provider":"anthropic","keyRef":{"source":"env","provider":"default","id":"REF_VAR"}},
            "openai:x":{"type":"api_key","provider":"openai","key":"o"}}}"#;
        let (r, _d) = resolver(
            &[
                ("ANTHROPIC_API_KEY", "k-work"),
                ("ANTHROPIC_API_KEY_2", "k2"),
                ("REF_VAR", "k-ref"),
            ],
            Some(profiles),
            "[models.providers.anthropic]\napiKey = \"k-config\"\n",
        );
        assert_eq!(
            ids(&r, "anthropic"),
            [
                "anthropic:tok",
                "anthropic:ref",
                "anthropic:work",
                "env:ANTHROPIC_API_KEY_2",
                "config:anthropic"
            ]
        );
    }

    #[test]
    fn explicit_order_and_pins() {
        let profiles = r#"{"profiles":{
            "anthropic:a":{"type":"api_key","provider":"anthropic","key":"a"},
            "anthropic:b":{"type":"api_key","provider":"anthropic","key":"b"}},
            "order":{"anthropic":["anthropic:b","anthropic:missing","anthropic:a"]}}"#;
        let (r, _d) = resolver(&[], Some(profiles), "");
        assert_eq!(ids(&r, "anthropic"), ["anthropic:b", "anthropic:a"]);
        let pinned = r.candidates("anthropic", Some("anthropic:a")).expect("pin");
        assert_eq!(pinned.len(), 1);
        let e = r
            .candidates("anthropic", Some("anthropic:wrk"))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "Auth profile \"anthropic:wrk\" not found. Profiles for anthropic: anthropic:a, anthropic:b."
        );
    }

    #[test]
    fn corrupt_store_is_an_error() {
        let (r, _d) = resolver(&[("ANTHROPIC_API_KEY", "k")], Some("{nope"), "");
        assert!(matches!(
            r.candidates("anthropic", None),
            Err(ResolveError::Store(_))
        ));
    }
}
