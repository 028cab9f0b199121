//! `remoteclaw models auth login --provider P [--profile-id ID] [--device] [--no-browser]
//! [--agent ID]` and `models auth logout --provider P [--profile-id ID] [--agent ID]`
//! (DESIGN §5a): sign in with the provider's OAuth (authorization code + PKCE on a
//! loopback callback, the redirect pasted by hand, or the device grant), store the tokens
//! as an `oauth` profile named after the account, declare it in the config; sign out by
//! revoking (when the provider has a `revokeUrl`) and removing the profile everywhere.
//! Tokens, codes and verifiers are never printed: the report names the access token by
//! fingerprint.

use crate::auth::profile_writer;
use crate::auth::profiles::{Profile, ProfileCredential};
use crate::cli::onboard::credentials::{Target, expiry_text, now_ms, prompt_line, stdin_is_tty};
use crate::config::edit;
use crate::oauth::login::{self, CALLBACK_WAIT, LoginError};
use crate::oauth::preset::Endpoints;
use crate::oauth::tokens::{self, Granted};
use crate::secret::Secret;
use anyhow::{Context, bail};
use clap::Args;
use serde_json::json;
use std::io::BufRead;
use std::path::Path;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Provider to sign in to (a preset such as openai-codex or qwen-portal, or one with
    /// [models.providers.<id>.oauth]).
    #[arg(long, value_name = "P")]
    pub provider: String,
    /// Profile id (default: <provider>:<email or account id or "default">).
    #[arg(long, value_name = "ID")]
    pub profile_id: Option<String>,
    /// Use the device authorization grant (a code to enter on another device).
    #[arg(long)]
    pub device: bool,
    /// Do not open a browser or wait for its redirect: paste the address it ends on.
    #[arg(long)]
    pub no_browser: bool,
    /// Agent whose credentials to change (default: agents.defaultId).
    #[arg(long)]
    pub agent: Option<String>,
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// Provider whose sign-in to remove.
    #[arg(long, value_name = "P")]
    pub provider: String,
    /// The profile to remove (needed when the provider has several sign-ins).
    #[arg(long, value_name = "ID")]
    pub profile_id: Option<String>,
    /// Agent whose credentials to change (default: agents.defaultId).
    #[arg(long)]
    pub agent: Option<String>,
}

fn endpoints(target: &Target, provider: &str) -> anyhow::Result<Endpoints> {
    Endpoints::of(&target.config, provider).with_context(|| {
        format!(
            "provider {provider} has no OAuth sign-in: use a preset ({}) or declare [models.providers.{provider}.oauth] with tokenUrl, clientId and authorizeUrl or deviceAuthorizationUrl",
            crate::oauth::preset::PRESETS
                .iter()
                .map(|p| p.provider)
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

fn login_error(e: LoginError, provider: &str) -> anyhow::Error {
    match e {
        LoginError::Token(t) => anyhow::anyhow!(
            "signing in to {provider} failed: {t}. Run `remoteclaw models auth login --provider {provider}` again."
        ),
        LoginError::Failed(m) => anyhow::anyhow!("signing in to {provider} failed: {m}"),
    }
}

/// The pasted address or code: one line, trimmed — from the terminal (with a prompt)
/// when stdin is one, else the first line of stdin. Never waits for the end of input
/// (a script that keeps stdin open after the line must not hang the login).
fn read_pasted_line() -> anyhow::Result<String> {
    if stdin_is_tty() {
        return prompt_line("Address or code: ");
    }
    let mut line = String::new();
    let n = std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read stdin (is it UTF-8 text?)")?;
    if n == 0 {
        bail!("stdin ended before an address or code was pasted; nothing was changed");
    }
    Ok(line.trim().to_string())
}

/// [`read_pasted_line`] on a thread of its own, so the login can stop waiting for it
/// (the callback came first) without the process waiting for stdin at exit.
fn pasted_line() -> anyhow::Result<tokio::sync::oneshot::Receiver<anyhow::Result<String>>> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("paste".into())
        .spawn(move || {
            let _ = tx.send(read_pasted_line());
        })
        .context("cannot start reading the pasted address")?;
    Ok(rx)
}

/// `<provider>:<email or account id or "default">`, with characters a profile id cannot
/// hold replaced by `-`.
pub(crate) fn profile_id_for(provider: &str, g: &Granted) -> String {
    let who = g
        .email
        .as_deref()
        .or(g.account_id.as_deref())
        .unwrap_or("default");
    let who: String = who
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.@-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("{provider}:{who}")
}

pub async fn login(args: LoginArgs) -> anyhow::Result<ExitCode> {
    let target = Target::load(args.agent.as_deref())?;
    let provider = target.provider(&args.provider)?;
    let ep = endpoints(&target, &provider)?;
    let http = tokens::http_client().map_err(|e| anyhow::anyhow!("{e}"))?;
    let use_device = args.device || ep.authorize_url.is_none();
    let granted = if use_device {
        let mut out = std::io::stdout();
        login::device_login(&http, &ep, &mut out, now_ms)
            .await
            .map_err(|e| login_error(e, &provider))?
    } else if args.no_browser {
        // Listen on loopback as well: a browser on this machine comes back by itself,
        // and whichever comes first — that callback or a pasted line — signs in. With
        // no port configured an ephemeral one is chosen (never `:0` in the redirect
        // URI); a configured port that is taken leaves pasting alone.
        let port = ep.listen_port();
        let (listener, bound) = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
            Ok(l) => {
                let bound = l.local_addr().map(|a| a.port()).unwrap_or(port);
                (Some(l), bound)
            }
            Err(e) if port != 0 => {
                tracing::debug!(port, error = %e, "no callback listener; waiting for a paste only");
                (None, port)
            }
            Err(e) => bail!(
                "cannot listen on a loopback port for the sign-in callback: {e}; nothing was changed"
            ),
        };
        let redirect = ep.redirect_uri_for(bound);
        let code_login =
            login::start_code_login(&ep, &redirect).map_err(|e| login_error(e, &provider))?;
        println!(
            "Open this address in a browser to sign in to {provider}:\n\n  {}\n",
            code_login.url
        );
        println!(
            "After signing in, the browser goes to an address starting with {redirect} (it may show an error page there). Unless the sign-in finishes here by itself, copy that whole address (or just its code) and paste it here."
        );
        let mut pasted = pasted_line()?;
        let code = match listener {
            // The callback waits CALLBACK_WAIT; a paste has no time limit (someone may be
            // copying the address from another machine): once the callback gave up, the
            // paste alone is waited for. Stdin at its end fails at once, as before.
            Some(listener) => tokio::select! {
                r = code_login.wait_for_callback(listener, CALLBACK_WAIT) => match r {
                    Ok(code) => Ok(code),
                    Err(e) => {
                        tracing::debug!("no sign-in callback: {e}; waiting for a paste");
                        code_login.code_from_paste(&(&mut pasted).await??)
                    }
                },
                line = &mut pasted => code_login.code_from_paste(&line??),
            },
            None => code_login.code_from_paste(&pasted.await??),
        }
        .map_err(|e| login_error(e, &provider))?;
        code_login
            .exchange(&http, &ep, code, now_ms)
            .await
            .map_err(|e| login_error(e, &provider))?
    } else {
        let port = ep.listen_port();
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .with_context(|| {
                format!(
                    "cannot listen for the sign-in callback on 127.0.0.1:{port} (is another sign-in running?). Free the port, or run with --no-browser and paste the address"
                )
            })?;
        let bound = listener.local_addr().map(|a| a.port()).unwrap_or(port);
        let redirect = ep.redirect_uri_for(bound);
        let code_login =
            login::start_code_login(&ep, &redirect).map_err(|e| login_error(e, &provider))?;
        println!(
            "Open this address in a browser to sign in to {provider}:\n\n  {}\n",
            code_login.url
        );
        println!("Waiting for the browser to come back to {redirect} …");
        open_browser(&code_login.url);
        let code = code_login
            .wait_for_callback(listener, CALLBACK_WAIT)
            .await
            .map_err(|e| login_error(e, &provider))?;
        code_login
            .exchange(&http, &ep, code, now_ms)
            .await
            .map_err(|e| login_error(e, &provider))?
    };
    let id = args
        .profile_id
        .clone()
        .unwrap_or_else(|| profile_id_for(&provider, &granted));
    let mut profile = json!({
        "type": "oauth",
        "provider": provider,
        "access": granted.access.expose(),
    });
    if let Some(r) = &granted.refresh {
        profile["refresh"] = json!(r.expose());
    }
    if let Some(e) = granted.expires_ms {
        profile["expires"] = json!(e);
    }
    if let Some(a) = &granted.account_id {
        profile["accountId"] = json!(a);
    }
    if let Some(e) = &granted.email {
        profile["email"] = json!(e);
    }
    let saved = target.save_profile(&id, &provider, "oauth", profile)?;
    let verb = match &saved.replaced {
        Some(old) => format!("Signed in again: replaced profile {id} (was {old})"),
        None => format!("Signed in: stored profile {id}"),
    };
    println!(
        "{verb}: oauth for {provider}, access token fingerprint {}, {}{}.",
        granted.access.fingerprint(),
        expiry_text(granted.expires_ms, now_ms()),
        if granted.refresh.is_some() {
            "; it refreshes itself"
        } else {
            "; no refresh token was issued, so sign in again when it expires"
        }
    );
    println!("  credentials: {}", saved.path.display());
    println!(
        "  declared in: {} (auth.profiles.\"{id}\", mode oauth)",
        target.config_path.display()
    );
    for n in &saved.notes {
        println!("Note: {n}");
    }
    println!("Next: check with `remoteclaw models status --check`.");
    Ok(ExitCode::SUCCESS)
}

/// Open `url` in the desktop's browser when there is a desktop; never fails the login.
fn open_browser(url: &str) {
    let opener = if cfg!(target_os = "macos") {
        Some("open")
    } else if std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some()
    {
        Some("xdg-open")
    } else {
        None
    };
    let Some(cmd) = opener else {
        println!("(No desktop found: open the address on any device, or use --no-browser.)");
        return;
    };
    let spawned = std::process::Command::new(cmd)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if spawned.is_err() {
        println!("(Could not start {cmd}: open the address yourself.)");
    }
}

pub async fn logout(args: LogoutArgs) -> anyhow::Result<ExitCode> {
    let target = Target::load(args.agent.as_deref())?;
    let provider = target.provider(&args.provider)?;
    let store = target.store()?;
    let id = match &args.profile_id {
        Some(id) => id.clone(),
        None => {
            let ids: Vec<&str> = store
                .for_provider(&provider)
                .filter(|p| matches!(p.credential, ProfileCredential::Oauth { .. }))
                .map(|p| p.id.as_str())
                .collect();
            match ids.as_slice() {
                [one] => one.to_string(),
                [] => bail!(
                    "no OAuth sign-in for {provider} in {}; nothing was changed",
                    target.profiles_path().display()
                ),
                many => bail!(
                    "{provider} has {} sign-ins ({}): say which with --profile-id",
                    many.len(),
                    many.join(", ")
                ),
            }
        }
    };
    let Some(profile) = store.profiles.get(&id) else {
        bail!(
            "profile {id} is not in {}; nothing was changed",
            target.profiles_path().display()
        );
    };
    if let Some(refusal) = logout_refusal(profile, &provider, &target.profiles_path()) {
        bail!(refusal);
    }
    // Revoke first (RFC 7009): a failure is reported, and the profile is removed anyway.
    if let (
        ProfileCredential::Oauth {
            refresh, access, ..
        },
        Some(ep),
    ) = (
        &profile.credential,
        Endpoints::of(&target.config, &profile.provider).filter(|e| e.revoke_url.is_some()),
    ) {
        let token = refresh
            .as_ref()
            .map(|r| (r, "refresh_token"))
            .or_else(|| access.as_ref().map(|a| (a, "access_token")));
        if let Some((token, hint)) = token {
            match revoke(&ep, token, hint).await {
                Ok(()) => println!(
                    "Revoked the sign-in at {}.",
                    ep.revoke_url.as_deref().unwrap_or("")
                ),
                Err(e) => println!(
                    "Warning: could not revoke the sign-in ({e}); it is removed here, and you can revoke it in the provider's account settings."
                ),
            }
        }
    }
    let path = target.profiles_path();
    let removed = {
        let path = path.clone();
        let id = id.clone();
        tokio::task::spawn_blocking(move || profile_writer::remove_profile(&path, &id))
            .await
            .context("the removal task failed")??
    };
    let undeclared = edit::update_config(&target.config_path, |doc| {
        edit::undeclare_profile(doc, &id);
        Ok(())
    })
    .with_context(|| {
        format!(
            "profile {id} was removed from {}, but removing its declaration from the config failed",
            path.display()
        )
    });
    undeclared?;
    println!(
        "Signed out: {} profile {id} from {} and its declaration and auth-order entries from {}.",
        if removed { "removed" } else { "no" },
        path.display(),
        target.config_path.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Why `logout --provider <provider> --profile-id <id>` must not touch `profile`, if it
/// must not: logout signs out of an OAuth sign-in (DESIGN §5a) of the provider named, so
/// a profile of another provider, or an API key or pasted token, is refused (nothing
/// removed, nothing revoked) with what to do instead.
fn logout_refusal(profile: &Profile, provider: &str, path: &Path) -> Option<String> {
    let id = &profile.id;
    let of = &profile.provider;
    let kind = match &profile.credential {
        ProfileCredential::Oauth { .. } => None,
        ProfileCredential::ApiKey { .. } => Some("an API key (type api_key)"),
        ProfileCredential::Token { .. } => Some("a pasted token (type token)"),
    };
    match (kind, of == provider) {
        (None, true) => None,
        (None, false) => Some(format!(
            "profile {id} is an OAuth sign-in for {of}, not {provider}; nothing was changed. To sign out of it: remoteclaw models auth logout --provider {of} --profile-id {id}"
        )),
        (Some(kind), same) => Some(format!(
            "profile {id} is {kind} for {of}{}, not an OAuth sign-in: logout only signs out of OAuth sign-ins, so nothing was changed. To remove it, delete \"{id}\" from {} (and its [auth.profiles] declaration from the config), or replace it with remoteclaw models auth paste-token --provider {of} --profile-id {id}",
            if same {
                String::new()
            } else {
                format!(" (not {provider})")
            },
            path.display()
        )),
    }
}

/// RFC 7009 revocation: a form post of the token, its type hint and `client_id`. By
/// hand rather than through `oauth2`, which refuses any `http://` revocation URL — also
/// a loopback one, which is what a local provider (or a test) has. Anything other than
/// HTTPS or loopback is refused here: the token must not cross a network in the clear.
async fn revoke(ep: &Endpoints, token: &Secret, hint: &str) -> Result<(), String> {
    let url = ep.revoke_url.as_deref().unwrap_or_default();
    let parsed =
        reqwest::Url::parse(url).map_err(|e| format!("revokeUrl \"{url}\" is not a URL: {e}"))?;
    let loopback = matches!(parsed.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    if parsed.scheme() != "https" && !(parsed.scheme() == "http" && loopback) {
        return Err(format!(
            "revokeUrl \"{url}\" must be https (or http on loopback)"
        ));
    }
    let http = tokens::http_client().map_err(|e| e.to_string())?;
    let resp = http
        .post(parsed)
        .form(&[
            ("token", token.expose()),
            ("token_type_hint", hint),
            ("client_id", ep.client_id.as_str()),
        ])
        .send()
        .await
        .map_err(|e| {
            if e.is_timeout() {
                "the revocation endpoint did not answer in time".to_string()
            } else {
                "cannot reach the revocation endpoint".to_string()
            }
        })?;
    match resp.status().as_u16() {
        200..=299 => Ok(()),
        s => Err(format!("the revocation endpoint answered HTTP {s}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_ids_name_the_account() {
        let g = |email: Option<&str>, account: Option<&str>| Granted {
            access: Secret::new("a"),
            refresh: None,
            expires_ms: None,
            email: email.map(str::to_string),
            account_id: account.map(str::to_string),
        };
        assert_eq!(
            profile_id_for("openai-codex", &g(Some("me+x@example.com"), Some("acct"))),
            "openai-codex:me-x@example.com"
        );
        assert_eq!(profile_id_for("p", &g(None, Some("acct-1"))), "p:acct-1");
        assert_eq!(profile_id_for("p", &g(None, None)), "p:default");
    }
}
