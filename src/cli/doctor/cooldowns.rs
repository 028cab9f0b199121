//! Credentials set aside in the cooldown book: rate-limit cooldowns and disables
//! (quota, billing, auth, refused OAuth refresh), each with how to make it usable again.
//! A refused refresh (`refresh_failed`) lasts until the profile is signed in again, so
//! an entry whose profile now holds other tokens (a new sign-in) is not listed.

use super::Finding;
use crate::auth::CredentialResolver;
use crate::auth::cooldown::{ANY_MODEL, CooldownEntry, Reason};
use crate::auth::profiles::{ProfileCredential, ProfileStore};
use crate::auth::resolver::until_text;

/// A `refresh_failed` entry as a finding, or `None` when a new sign-in replaced the
/// tokens it was recorded for.
async fn refresh_failed(
    resolver: &CredentialResolver,
    store: Option<&ProfileStore>,
    e: &CooldownEntry,
    now: i64,
) -> Option<Finding> {
    let profile = store.and_then(|s| s.profiles.get(&e.credential));
    if let Some(ProfileCredential::Oauth {
        access: Some(access),
        refresh,
        expires_ms,
        ..
    }) = profile.map(|p| &p.credential)
    {
        // Kept under the whole sign-in (access, refresh, expiry): see
        // `Credential::sign_in_fingerprint`.
        let fp = crate::auth::credential::sign_in_fingerprint(
            access.fingerprint(),
            refresh.as_ref().map(|r| r.fingerprint()),
            *expires_ms,
        );
        let view = resolver.cooldowns.view().await;
        let standing = view
            .standing(&e.credential, &fp, ANY_MODEL, now)
            .or_else(|| view.standing(&e.credential, access.fingerprint(), ANY_MODEL, now));
        if standing.is_none_or(|s| s.reason != Reason::RefreshFailed) {
            return None;
        }
    }
    let provider = profile.map(|p| p.provider.clone()).unwrap_or_else(|| {
        e.credential
            .split_once(':')
            .map_or(e.credential.clone(), |(p, _)| p.to_string())
    });
    Some(
        Finding::warning(
            "credential_disabled",
            format!(
                "{} is disabled: {provider} refused to refresh its sign-in (refresh_failed); it stays unused until it is signed in again",
                e.credential
            ),
        )
        .fix(format!(
            "sign in again: `remoteclaw models auth login --provider {provider}`"
        )),
    )
}

pub(super) async fn cooldown_list(resolver: &CredentialResolver, now: i64, r: &mut Vec<Finding>) {
    // The book is shared by every agent: this agent's entries only.
    let list = match resolver.cooldowns.list(now).await {
        Ok(list) => resolver.own_entries(&list).await.unwrap_or(list),
        Err(e) => {
            r.push(Finding::warning(
                "state_db_error",
                format!("cannot read cooldowns: {e}"),
            ));
            return;
        }
    };
    let store = Some(resolver.store());
    for e in list {
        let scope = if e.model.is_empty() || e.model == ANY_MODEL {
            "all models".to_string()
        } else {
            e.model.clone()
        };
        let (id, what) = match e.reason {
            Reason::RateLimit => ("credential_cooldown", "cooling down after a rate limit"),
            Reason::Quota => ("credential_disabled", "disabled after running out of quota"),
            Reason::Billing => ("credential_disabled", "disabled after a billing error"),
            Reason::Auth => (
                "credential_disabled",
                "disabled after an authentication error",
            ),
            Reason::RefreshFailed => {
                r.extend(refresh_failed(resolver, store.as_deref(), &e, now).await);
                continue;
            }
        };
        let fix = if e.reason == Reason::Auth {
            format!(
                "replace the key or token, then `remoteclaw models auth cooldown clear {}`",
                e.credential
            )
        } else {
            format!(
                "wait, or make it usable now: `remoteclaw models auth cooldown clear {}`",
                e.credential
            )
        };
        r.push(
            Finding::warning(
                id,
                format!(
                    "{} is {what} ({scope}), {}",
                    e.credential,
                    until_text(e.until, now)
                ),
            )
            .fix(fix),
        );
    }
}
