//! The line `models status` prints under an OAuth credential (DESIGN §5a, §6): when its
//! access token refreshes itself, or that the operator has to sign in again and how.
//! Pure: the facts come in, the sentence goes out; the JSON schema is not touched.

use crate::auth::Candidate;
use crate::auth::profiles::{ProfileCredential, ProfileStore};
use crate::cli::onboard::credentials::span_text;
use crate::config::Config;
use crate::oauth::preset::Endpoints;
use crate::oauth::refresh::REFRESH_AHEAD_MS;

/// What the note needs to know about one OAuth credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct OauthFacts<'a> {
    pub provider: &'a str,
    /// The candidate's reason code (`refresh_failed`, `expired`, a cooldown, …).
    pub reason: Option<&'a str>,
    pub expires_ms: Option<i64>,
    /// The stored profile holds a refresh token.
    pub has_refresh: bool,
    /// The provider has OAuth endpoints (a preset or `[models.providers.P.oauth]`).
    pub has_endpoints: bool,
}

impl<'a> OauthFacts<'a> {
    /// The facts of `c`, when it is a stored OAuth sign-in.
    pub fn of(
        c: &'a Candidate,
        provider: &'a str,
        store: Option<&ProfileStore>,
        config: &Config,
    ) -> Option<OauthFacts<'a>> {
        let ProfileCredential::Oauth { refresh, .. } = &store?.profiles.get(&*c.id)?.credential
        else {
            return None;
        };
        Some(OauthFacts {
            provider,
            reason: c.reason,
            expires_ms: c.expires_ms,
            has_refresh: refresh.as_ref().is_some_and(|r| !r.is_blank()),
            has_endpoints: Endpoints::of(config, provider).is_some(),
        })
    }
}

fn login(provider: &str) -> String {
    format!("`remoteclaw models auth login --provider {provider}`")
}

/// "access token expires in 2h, refreshes itself", "access token expired, refreshes on
/// next use", or what to do when it cannot refresh.
pub(super) fn note(f: &OauthFacts<'_>, now: i64) -> String {
    let p = f.provider;
    if f.reason == Some("refresh_failed") {
        return format!(
            "the provider refused to refresh this sign-in: {}",
            crate::auth::resolver::sign_in_again(p)
        );
    }
    let when = match f.expires_ms {
        None => None,
        Some(e) if e <= now => Some(format!("expired {} ago", span_text(now - e))),
        Some(e) => Some(format!("expires in {}", span_text(e - now))),
    };
    if !f.has_refresh {
        return match when {
            Some(w) => format!(
                "access token {w}, no refresh token: sign in again {}: {}",
                if f.expires_ms.is_some_and(|e| e <= now) {
                    "now"
                } else {
                    "before then"
                },
                login(p)
            ),
            None => "access token without an expiry and no refresh token".into(),
        };
    }
    if !f.has_endpoints {
        return format!(
            "access token {}; cannot refresh: {p} has no OAuth endpoints (declare [models.providers.{p}.oauth] with tokenUrl and clientId)",
            when.unwrap_or_else(|| "without an expiry".into())
        );
    }
    match f.expires_ms {
        None => "access token without an expiry, refreshed if the provider turns it away".into(),
        Some(e) if e <= now => "access token expired, refreshes on next use".into(),
        Some(e) if e - now <= REFRESH_AHEAD_MS => format!(
            "access token expires in {}, refreshes on next use",
            span_text(e - now)
        ),
        Some(e) => format!(
            "access token expires in {}, refreshes itself",
            span_text(e - now)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;
    const H: i64 = 3_600_000;

    fn facts(expires: Option<i64>, refresh: bool) -> OauthFacts<'static> {
        OauthFacts {
            provider: "openai-codex",
            reason: None,
            expires_ms: expires,
            has_refresh: refresh,
            has_endpoints: true,
        }
    }

    #[test]
    fn notes_say_when_it_refreshes_or_how_to_sign_in() {
        let cases: [(OauthFacts<'static>, &str); 8] = [
            (
                facts(Some(NOW + 2 * H), true),
                "access token expires in 2h, refreshes itself",
            ),
            (
                facts(Some(NOW + 60_000), true),
                "access token expires in 1m, refreshes on next use",
            ),
            (
                facts(Some(NOW - H), true),
                "access token expired, refreshes on next use",
            ),
            (
                facts(None, true),
                "access token without an expiry, refreshed if the provider turns it away",
            ),
            (
                facts(Some(NOW - H), false),
                "access token expired 1h ago, no refresh token: sign in again now: `remoteclaw models auth login --provider openai-codex`",
            ),
            (
                facts(Some(NOW + 3 * H), false),
                "access token expires in 3h, no refresh token: sign in again before then: `remoteclaw models auth login --provider openai-codex`",
            ),
            (
                OauthFacts {
                    reason: Some("refresh_failed"),
                    ..facts(Some(NOW - H), true)
                },
                "the provider refused to refresh this sign-in: sign in again: `remoteclaw models auth login --provider openai-codex`",
            ),
            (
                OauthFacts {
                    provider: "corp",
                    has_endpoints: false,
                    ..facts(Some(NOW + 2 * H), true)
                },
                "access token expires in 2h; cannot refresh: corp has no OAuth endpoints (declare [models.providers.corp.oauth] with tokenUrl and clientId)",
            ),
        ];
        for (f, want) in cases {
            assert_eq!(note(&f, NOW), want, "{f:?}");
        }
    }
}
