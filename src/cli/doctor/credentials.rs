//! Credentials: every provider in use has a usable credential; stored profiles are not
//! expired, expiring, unresolvable or malformed; profile ids named in an order or a
//! declaration exist; cooldowns and disabled credentials are listed.
//!
//! OAuth sign-ins (DESIGN §5a): one without a refresh token that expires within 24 h or
//! has expired is an error whose fix is the sign-in command; one with a refresh token
//! whose provider has no OAuth endpoints cannot refresh (warning); one the provider
//! refused to refresh is listed as disabled until it is signed in again.

use super::Finding;
use super::checks::{plural, redact_values};
use crate::auth::CredentialKind;
use crate::auth::CredentialResolver;
use crate::auth::cooldown::ANY_MODEL;
use crate::auth::env_keys::primary_env_var;
use crate::auth::profiles::ProfileCredential;
use crate::auth::profiles::ProfileStore;
use crate::auth::{Candidate, Health};
use crate::catalog::Catalog;
use crate::chat::views::kind_str;
use crate::cli::pairing::span;
use crate::config::{Config, CredentialMode, SecretInput};
use crate::oauth::preset::Endpoints;
use std::collections::{BTreeMap, HashSet};

pub(super) struct Ctx<'a> {
    pub config: &'a Config,
    pub resolver: &'a CredentialResolver,
    pub store: &'a ProfileStore,
    pub auth_path: String,
    pub config_path: String,
    pub env_path: String,
    pub now: i64,
}

fn paste_token(provider: &str, id: &str) -> String {
    format!("remoteclaw models auth paste-token --provider {provider} --profile-id {id}")
}

/// The fix for an OAuth sign-in that has to be made again (`soon`: before it expires).
fn sign_in_fix(ctx: &Ctx<'_>, provider: &str, id: &str, soon: bool) -> String {
    let login = format!("`remoteclaw models auth login --provider {provider}`");
    if Endpoints::of(ctx.config, provider).is_some() {
        format!(
            "sign in again{}: {login}",
            if soon { " before then" } else { "" }
        )
    } else {
        format!(
            "{provider} has no OAuth endpoints to sign in with: declare [models.providers.{provider}.oauth] (tokenUrl, clientId, and authorizeUrl or deviceAuthorizationUrl) in {}, then {login}; or paste a token instead: `{}`",
            ctx.config_path,
            paste_token(provider, id)
        )
    }
}

/// An OAuth profile with a refresh token that nothing can refresh: its provider has no
/// endpoints (no preset, no `[models.providers.P.oauth]` with tokenUrl and clientId).
fn cannot_refresh(ctx: &Ctx<'_>, c: &Candidate, provider: &str, r: &mut Vec<Finding>) {
    let Some(ProfileCredential::Oauth { refresh, .. }) =
        ctx.store.profiles.get(&*c.id).map(|p| &p.credential)
    else {
        return;
    };
    if refresh.as_ref().is_none_or(|t| t.is_blank())
        || Endpoints::of(ctx.config, provider).is_some()
        || c.reason == Some("provider_mismatch")
    {
        return;
    }
    let when = match c.expires_ms {
        Some(e) if e <= ctx.now => format!("; its access token expired {} ago", span(ctx.now - e)),
        Some(e) => format!(
            "; it stops working when its access token expires in {}",
            span(e - ctx.now)
        ),
        None => String::new(),
    };
    r.push(
        Finding::warning(
            "oauth_cannot_refresh",
            format!(
                "auth profile \"{}\" ({provider} oauth) cannot refresh: {provider} has no OAuth endpoints (no built-in preset, no [models.providers.{provider}.oauth] with tokenUrl and clientId){when}",
                c.id
            ),
        )
        .fix(format!(
            "declare [models.providers.{provider}.oauth] with tokenUrl and clientId in {}",
            ctx.config_path
        )),
    );
}

/// Findings about one stored profile as the resolver sees it.
fn profile_finding(
    ctx: &Ctx<'_>,
    c: &Candidate,
    provider: &str,
    unused: bool,
    r: &mut Vec<Finding>,
) {
    let id = &*c.id;
    let kind = kind_str(c.kind);
    let paste = paste_token(provider, id);
    // An OAuth profile is only expired or expiring here when it has no refresh token:
    // one with a refresh token renews itself and is `ok`.
    let oauth = c.kind == CredentialKind::Oauth;
    cannot_refresh(ctx, c, provider, r);
    match (c.health, c.reason) {
        (Health::Expired, _) => {
            let when = c
                .expires_ms
                .map(|e| format!(" {} ago", span(ctx.now - e)))
                .unwrap_or_default();
            let mut message = format!("auth profile \"{id}\" ({provider} {kind}) expired{when}");
            if oauth {
                message.push_str(" and has no refresh token to renew it");
            }
            let f = if unused {
                Finding::warning("profile_expired", format!("{message}; it is not in the auth order"))
            } else {
                Finding::error("profile_expired", message)
            };
            r.push(f.fix(if oauth {
                sign_in_fix(ctx, provider, id, false)
            } else {
                format!("paste a new token: `{paste}`")
            }));
        }
        (Health::Expiring, _) if oauth => {
            let when = c
                .expires_ms
                .map(|e| format!(" in {}", span(e - ctx.now)))
                .unwrap_or_default();
            let message = format!(
                "auth profile \"{id}\" ({provider} oauth) expires{when} and has no refresh token to renew it"
            );
            let f = if unused {
                Finding::warning("profile_expiring", format!("{message}; it is not in the auth order"))
            } else {
                Finding::error("profile_expiring", message)
            };
            r.push(f.fix(sign_in_fix(ctx, provider, id, true)));
        }
        (Health::Expiring, _) => {
            let when = c
                .expires_ms
                .map(|e| format!(" in {}", span(e - ctx.now)))
                .unwrap_or_default();
            r.push(
                Finding::warning(
                    "profile_expiring",
                    format!("auth profile \"{id}\" ({provider} {kind}) expires{when}"),
                )
                .fix(format!("paste a fresh token before then: `{paste}`")),
            );
        }
        (_, Some("unresolved_ref")) => r.push(
            Finding::error(
                "unresolved_ref",
                format!(
                    "auth profile \"{id}\" ({provider}): {}",
                    c.detail.as_deref().unwrap_or("its secret ref could not be resolved")
                ),
            )
            .fix("make the referenced secret available as the message says, or replace the profile's ref"),
        ),
        (_, Some("missing_credential")) => r.push(
            Finding::warning(
                "profile_no_secret",
                format!("auth profile \"{id}\" ({provider} {kind}) has no usable secret (empty, or a ref that is not {{ source, provider, id }}) and is skipped"),
            )
            .fix(format!("paste one: `{paste}`, or fix the profile in {}", ctx.auth_path)),
        ),
        (_, Some("invalid_expires")) => r.push(
            Finding::warning(
                "profile_invalid_expires",
                format!("auth profile \"{id}\" has an `expires` that is not epoch milliseconds and is skipped"),
            )
            .fix(format!("set expires to epoch ms (0 or absent: no expiry) in {}, or paste the token again: `{paste}`", ctx.auth_path)),
        ),
        (_, Some("mode_mismatch")) => {
            let mode = match ctx.config.auth.profiles.get(id).map(|d| d.mode) {
                Some(CredentialMode::ApiKey) => "api_key",
                Some(CredentialMode::Token) => "token",
                Some(CredentialMode::Oauth) => "oauth",
                None => "?",
            };
            r.push(
                Finding::warning(
                    "profile_mode_mismatch",
                    format!("auth profile \"{id}\" is a {kind} credential, but [auth.profiles.\"{id}\"] in {} declares mode = \"{mode}\"; it is skipped", ctx.config_path),
                )
                .fix("fix the declared mode, or replace the profile with the right kind of credential"),
            );
        }
        (_, Some("provider_mismatch")) => r.push(
            Finding::warning(
                "profile_provider_mismatch",
                format!(
                    "the auth order for {provider} lists \"{id}\", {}; it is skipped",
                    c.detail.as_deref().unwrap_or("a profile for another provider")
                ),
            )
            .fix(format!("remove it from the order: `remoteclaw models auth order set --provider {provider} …`")),
        ),
        _ => {}
    }
}

pub(super) async fn credentials(ctx: &Ctx<'_>, r: &mut Vec<Finding>) {
    let in_use = Catalog::from_config(ctx.config).providers_in_use();
    let mut others: Vec<String> = ctx
        .store
        .profiles
        .values()
        .map(|p| p.provider.clone())
        .chain(ctx.store.order.keys().cloned())
        .chain(ctx.config.auth.order.keys().cloned())
        .chain(
            ctx.config
                .auth
                .profiles
                .values()
                .map(|d| d.provider.clone()),
        )
        .filter(|p| !in_use.iter().any(|(q, _)| q == p))
        .collect();
    others.sort();
    others.dedup();
    let providers = in_use
        .iter()
        .map(|(p, why)| (p.clone(), Some(why.as_str())))
        .chain(others.into_iter().map(|p| (p, None)));
    let mut covered: HashSet<String> = HashSet::new();
    // The usable credentials each provider's list kept: a stored profile with the same
    // secret as one of them was dropped from the list as its duplicate (DESIGN §5).
    let mut kept: BTreeMap<String, Vec<Candidate>> = BTreeMap::new();
    for (provider, why) in providers {
        let res = match ctx.resolver.resolve(&provider, ANY_MODEL, None).await {
            Ok(res) => res,
            Err(e) => {
                r.push(Finding::error(
                    "credentials_unavailable",
                    format!(
                        "cannot list credentials for {provider}: {}",
                        redact_values(&e.to_string())
                    ),
                ));
                continue;
            }
        };
        for c in &res.candidates {
            if ctx.store.profiles.contains_key(&*c.id) {
                covered.insert(c.id.to_string());
                profile_finding(ctx, c, &provider, false, r);
            }
        }
        kept.insert(
            provider.clone(),
            res.candidates
                .iter()
                .filter(|c| c.credential.is_some())
                .cloned()
                .collect(),
        );
        if let Some(SecretInput::Ref(rf)) = ctx
            .config
            .models
            .providers
            .get(&provider)
            .and_then(|p| p.api_key.as_ref())
            && let Err(e) = ctx.resolver.secrets.resolve(rf).await
        {
            r.push(
                Finding::error(
                    "unresolved_ref",
                    format!(
                        "models.providers.{provider}.apiKey in {}: {e}",
                        ctx.config_path
                    ),
                )
                .fix("make the referenced secret available as the message says, or change the ref"),
            );
        }
        let Some(why) = why else { continue };
        if !res.has_attempts() {
            let detail = if res.candidates.is_empty() {
                String::new()
            } else {
                format!(" ({})", res.summary(ctx.now))
            };
            r.push(
                Finding::error(
                    "provider_no_credentials",
                    format!("no usable credential for {provider}, which the {why} needs{detail}"),
                )
                .fix(format!(
                    "set {} (in the environment or {}) or run `remoteclaw onboard`",
                    primary_env_var(&provider),
                    ctx.env_path
                )),
            );
        } else {
            let next = res.next().map(|c| c.id.to_string()).unwrap_or_default();
            r.push(Finding::ok(
                "provider_credentials",
                format!(
                    "{provider}: {} for the {why}; next: {next}",
                    plural(
                        res.attempt_order().count(),
                        "usable credential",
                        "usable credentials"
                    )
                ),
            ));
        }
    }
    // Stored profiles no auth order reaches: still check them, and say they are unused.
    for p in ctx.store.profiles.values() {
        if covered.contains(&p.id) {
            continue;
        }
        let mut duplicate_of = None;
        if let Ok(res) = ctx
            .resolver
            .resolve(&p.provider, ANY_MODEL, Some(&p.id))
            .await
            && let Some(c) = res.candidates.first()
        {
            profile_finding(ctx, c, &p.provider, true, r);
            duplicate_of = c.credential.as_ref().and_then(|mine| {
                kept.get(&p.provider)?
                    .iter()
                    .filter(|k| *k.id != p.id)
                    .find(|k| {
                        k.credential
                            .as_ref()
                            .is_some_and(|o| o.secret == mine.secret)
                    })
            });
        }
        if let Some(first) = duplicate_of.filter(|_| in_auth_order(ctx, &p.id, &p.provider)) {
            r.push(
                Finding::info(
                    "profile_duplicate",
                    format!(
                        "auth profile \"{}\" ({}) holds the same secret as \"{}\"{}, which comes first, so it is dropped as a duplicate and never tried",
                        p.id,
                        p.provider,
                        first.id,
                        first
                            .fingerprint()
                            .map(|f| format!(" (fingerprint {f})"))
                            .unwrap_or_default()
                    ),
                )
                .fix(format!(
                    "remove one of the two from {}, or give \"{}\" its own key: `{}`",
                    ctx.auth_path,
                    p.id,
                    paste_token(&p.provider, &p.id)
                )),
            );
            continue;
        }
        r.push(
            Finding::info(
                "profile_unused",
                format!(
                    "auth profile \"{}\" ({}) is not in the auth order for {}, so it is never tried",
                    p.id, p.provider, p.provider
                ),
            )
            .fix(format!(
                "add it with `remoteclaw models auth order set --provider {} …`, or remove it",
                p.provider
            )),
        );
    }
    missing_profiles(ctx, r);
}

/// Whether stored profile `id` of `provider` is in the provider's auth order (every
/// stored profile is when no order names ids, DESIGN §5).
fn in_auth_order(ctx: &Ctx<'_>, id: &str, provider: &str) -> bool {
    crate::auth::resolver::named_order(ctx.store, ctx.config, provider)
        .is_none_or(|named| named.contains(&id))
}

/// Profile ids that the config or the file's order names but the file does not hold.
fn missing_profiles(ctx: &Ctx<'_>, r: &mut Vec<Finding>) {
    let mut named: BTreeMap<&str, (String, Vec<String>)> = BTreeMap::new();
    let known = |id: &str| ctx.store.profiles.contains_key(id);
    for (provider, ids) in &ctx.store.order {
        for id in ids.iter().filter(|id| !known(id)) {
            named
                .entry(id)
                .or_insert_with(|| (provider.clone(), Vec::new()))
                .1
                .push(format!("order.{provider} in that file"));
        }
    }
    for (provider, ids) in &ctx.config.auth.order {
        for id in ids.iter().filter(|id| !known(id)) {
            named
                .entry(id)
                .or_insert_with(|| (provider.clone(), Vec::new()))
                .1
                .push(format!("auth.order.{provider} in {}", ctx.config_path));
        }
    }
    for (id, decl) in ctx.config.auth.profiles.iter().filter(|(id, _)| !known(id)) {
        named
            .entry(id)
            .or_insert_with(|| (decl.provider.clone(), Vec::new()))
            .1
            .push(format!("[auth.profiles.\"{id}\"] in {}", ctx.config_path));
    }
    for (id, (provider, places)) in named {
        r.push(
            Finding::warning(
                "profile_missing",
                format!(
                    "auth profile \"{id}\" is not in {}, but {} {} it",
                    ctx.auth_path,
                    places.join(" and "),
                    if places.len() == 1 { "names" } else { "name" }
                ),
            )
            .fix(format!(
                "add it: `{}`, or remove it from there",
                paste_token(&provider, id)
            )),
        );
    }
}
