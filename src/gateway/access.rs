//! Who may call the gateway (DESIGN §7 "Who may call it"): the `Host` allowlist against
//! DNS rebinding, the `Origin` check against cross-site pages, CORS for the origins in
//! `gateway.allowedOrigins`, and the security headers every response carries.

use super::refusal::{ErrorStyle, Refusal};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use std::sync::Arc;
use std::time::Duration;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Sent with every response. `default-src 'self'` keeps the web chat to its own
/// script and stylesheet; `frame-ancestors 'none'` stops clickjacking.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; base-uri 'none'; form-action 'self'; object-src 'none'; frame-ancestors 'none'";

/// Host names that are always loopback.
const LOOPBACK_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "[::1]"];

/// How much of a refused Host or Origin is quoted back.
const QUOTE_MAX: usize = 200;

/// `gateway.allowedHosts` and `gateway.allowedOrigins`, normalised for comparison.
#[derive(Debug, Clone, Default)]
pub struct AccessPolicy {
    hosts: Vec<String>,
    origins: Vec<String>,
}

/// Split `name[:port]` (`[v6]:port` for IPv6); `None` when it is not a valid Host.
fn split_host(host: &str) -> Option<(&str, Option<&str>)> {
    let valid_port =
        |p: &str| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit());
    let (name, port) = if host.starts_with('[') {
        let end = host.find(']')?;
        let (name, rest) = host.split_at(end + 1);
        match rest.strip_prefix(':') {
            Some(p) => (name, Some(p)),
            None if rest.is_empty() => (name, None),
            None => return None,
        }
    } else {
        match host.split_once(':') {
            Some((name, p)) => (name, Some(p)),
            None => (host, None),
        }
    };
    let name_ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._[]:".contains(&b));
    if !name_ok || port.is_some_and(|p| !valid_port(p)) {
        return None;
    }
    Some((name, port))
}

/// `https://App.example.com/` → `https://app.example.com`.
fn normalize_origin(origin: &str) -> String {
    origin.trim().trim_end_matches('/').to_ascii_lowercase()
}

fn quote(s: &str) -> String {
    s.chars().take(QUOTE_MAX).collect()
}

impl AccessPolicy {
    pub fn new(allowed_hosts: &[String], allowed_origins: &[String]) -> AccessPolicy {
        AccessPolicy {
            hosts: allowed_hosts
                .iter()
                .map(|h| h.trim().to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect(),
            origins: allowed_origins
                .iter()
                .map(|o| normalize_origin(o))
                .filter(|o| !o.is_empty())
                .collect(),
        }
    }

    /// Entries that can never match, each with the fix (logged at start-up).
    pub fn config_warnings(allowed_hosts: &[String], allowed_origins: &[String]) -> Vec<String> {
        let hosts = allowed_hosts.iter().filter(|h| split_host(h.trim()).is_none()).map(|h| {
            format!(
                "gateway.allowedHosts entry \"{}\" is not a host name: write it as it appears in the Host header, such as \"claw.example.com\" or \"claw.example.com:8443\" (no scheme or path)",
                quote(h)
            )
        });
        let origins = allowed_origins
            .iter()
            .filter(|o| {
                let o = normalize_origin(o);
                let rest = o.strip_prefix("http://").or_else(|| o.strip_prefix("https://"));
                rest.is_none_or(|r| split_host(r).is_none())
            })
            .map(|o| {
                format!(
                    "gateway.allowedOrigins entry \"{}\" is not an origin: write scheme and host (and port), such as \"https://app.example.com\", with no path",
                    quote(o)
                )
            });
        hosts.chain(origins).collect()
    }

    /// Loopback names and `allowedHosts` pass, each with or without a port. An
    /// `allowedHosts` entry that names a port matches only that port.
    pub fn host_allowed(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        let Some((name, _)) = split_host(&host) else {
            return false;
        };
        LOOPBACK_NAMES.contains(&name)
            || self.hosts.iter().any(|h| match split_host(h) {
                Some((_, Some(_))) => *h == host,
                Some((allowed, None)) => allowed == name,
                None => false,
            })
    }

    /// An origin listed in `allowedOrigins` (these also get CORS headers).
    pub fn origin_listed(&self, origin: &str) -> bool {
        let origin = normalize_origin(origin);
        self.origins.contains(&origin)
    }

    /// The gateway's own page (`http://<Host>`, or `https://` behind a TLS proxy) or
    /// a listed origin.
    pub fn origin_allowed(&self, origin: &str, host: &str) -> bool {
        let o = normalize_origin(origin);
        let host = host.to_ascii_lowercase();
        let own = o
            .strip_prefix("http://")
            .or_else(|| o.strip_prefix("https://"))
            .is_some_and(|rest| rest == host);
        own || self.origins.contains(&o)
    }

    /// CORS for the listed origins only: answers their preflights and labels their
    /// responses. `None` when no origin is listed.
    pub fn cors_layer(self: &Arc<Self>) -> Option<CorsLayer> {
        if self.origins.is_empty() {
            return None;
        }
        let policy = self.clone();
        Some(
            CorsLayer::new()
                .allow_origin(AllowOrigin::predicate(move |origin: &HeaderValue, _| {
                    origin.to_str().is_ok_and(|o| policy.origin_listed(o))
                }))
                .allow_methods([Method::GET, Method::POST])
                .allow_headers([
                    header::AUTHORIZATION,
                    header::CONTENT_TYPE,
                    HeaderName::from_static("x-remoteclaw-session"),
                ])
                .expose_headers([header::RETRY_AFTER])
                .max_age(Duration::from_secs(600)),
        )
    }
}

/// The one value of header `name` (`None`: absent); several copies or a non-ASCII value
/// are an error. Every header whose meaning a second copy would make ambiguous is read
/// through this (`Host`, `Authorization`, `Content-Type`, `x-remoteclaw-session`, the
/// Telegram webhook secret).
pub(super) fn single<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Result<Option<&'a str>, ()> {
    let mut values = headers.get_all(name).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(());
    }
    first.map(|v| v.to_str().map_err(|_| ())).transpose()
}

fn host_refused(message: String) -> Refusal {
    Refusal::new(StatusCode::FORBIDDEN, "host_not_allowed", message)
}

/// The host this request is addressed to: the request-target's authority when it is in
/// absolute form, else the `Host` header. Both, when present, must be allowed.
fn check_host(policy: &AccessPolicy, req: &Request) -> Result<String, Refusal> {
    let header = single(req.headers(), &header::HOST).map_err(|()| {
        host_refused(
            "the request has several Host headers or one that is not plain ASCII: send exactly one, such as Host: localhost".into(),
        )
    })?;
    let authority = req.uri().authority().map(|a| a.as_str());
    let Some(host) = authority.or(header) else {
        return Err(host_refused(
            "the request has no Host header: send one (HTTP/1.1 requires it), such as Host: localhost".into(),
        ));
    };
    for h in [authority, header].into_iter().flatten() {
        if !policy.host_allowed(h) {
            let h = quote(h);
            return Err(host_refused(format!(
                "Host \"{h}\" is not allowed: this gateway answers to localhost, 127.0.0.1, [::1] and the names in gateway.allowedHosts. If you reach it by this name, add \"{h}\" to gateway.allowedHosts in the config."
            )));
        }
    }
    Ok(host.to_string())
}

fn check_origin(policy: &AccessPolicy, req: &Request, host: &str) -> Result<(), Refusal> {
    let refused =
        |message: String| Refusal::new(StatusCode::FORBIDDEN, "origin_not_allowed", message);
    let origin = single(req.headers(), &header::ORIGIN).map_err(|()| {
        refused("the request has several Origin headers or one that is not plain ASCII".into())
    })?;
    match origin {
        None => Ok(()),
        Some(o) if policy.origin_allowed(o, host) => Ok(()),
        Some(o) => {
            let o = quote(o);
            Err(refused(format!(
                "Origin \"{o}\" may not call this gateway: only its own page (http://{}) and the origins in gateway.allowedOrigins may. If this site should use the gateway, add \"{o}\" to gateway.allowedOrigins in the config.",
                quote(host)
            )))
        }
    }
}

/// Middleware on every route: Host first, then Origin.
pub async fn guard(State(policy): State<Arc<AccessPolicy>>, req: Request, next: Next) -> Response {
    let style = ErrorStyle::for_path(req.uri().path());
    let checked = check_host(&policy, &req).and_then(|host| check_origin(&policy, &req, &host));
    match checked {
        Ok(()) => next.run(req).await,
        Err(refusal) => refusal.render(style),
    }
}

/// Middleware on every response: CSP, nosniff, no referrer, no framing.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> AccessPolicy {
        AccessPolicy::new(
            &["Claw.Example.com".into(), "nas.local:8443".into()],
            &["https://App.example.com/".into()],
        )
    }

    #[test]
    fn loopback_names_pass_with_or_without_port() {
        let p = AccessPolicy::default();
        for h in [
            "localhost",
            "LOCALHOST:18789",
            "127.0.0.1",
            "127.0.0.1:1",
            "[::1]",
            "[::1]:18789",
        ] {
            assert!(p.host_allowed(h), "{h}");
        }
        for h in [
            "",
            "evil.example",
            "localhost.evil.example",
            "127.0.0.1.nip.io",
            "localhost:",
            "localhost:99999x",
            "localhost:1:2",
            "[::1]x",
            "user@localhost",
            "::1",
            "127.0.0.2",
        ] {
            assert!(!p.host_allowed(h), "{h}");
        }
    }

    #[test]
    fn allowed_hosts_match_name_or_exact_port() {
        let p = policy();
        assert!(p.host_allowed("claw.example.com"));
        assert!(p.host_allowed("claw.example.com:443"));
        assert!(p.host_allowed("nas.local:8443"));
        assert!(!p.host_allowed("nas.local"));
        assert!(!p.host_allowed("nas.local:80"));
        assert!(!p.host_allowed("example.com"));
    }

    #[test]
    fn entries_that_cannot_match_are_reported() {
        let w = AccessPolicy::config_warnings(
            &["ok.example".into(), "http://bad.example/".into()],
            &[
                "https://ok.example:8443/".into(),
                "app.example".into(),
                "https://x/y".into(),
            ],
        );
        assert_eq!(w.len(), 3, "{w:?}");
        assert!(w[0].contains("http://bad.example/") && w[0].contains("allowedHosts"));
        assert!(w[1].contains("\"app.example\""));
        assert!(w[2].contains("https://x/y"));
    }

    #[test]
    fn own_and_listed_origins_pass() {
        let p = policy();
        assert!(p.origin_allowed("http://localhost:18789", "localhost:18789"));
        assert!(p.origin_allowed("https://claw.example.com", "claw.example.com"));
        assert!(p.origin_allowed("https://app.example.com", "localhost:1"));
        assert!(p.origin_listed("https://APP.example.com"));
        assert!(!p.origin_allowed("http://evil.example", "localhost:18789"));
        assert!(!p.origin_allowed("null", "localhost:18789"));
        assert!(!p.origin_allowed("http://localhost:1", "localhost:2"));
        assert!(!p.origin_listed("http://localhost:18789"));
    }
}
