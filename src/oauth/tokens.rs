//! Token endpoint calls through the `oauth2` crate (RFC 6749 form posts with `client_id`
//! in the body): refresh, authorization-code exchange with the PKCE verifier, the device
//! grant (RFC 8628) and revocation (RFC 7009); and what a token response says about the
//! account (`email`, account id) from its JWT claims.
//!
//! Every call goes through one reqwest client without redirects and with a deadline, and
//! its HTTP status is kept, so a refusal (400/401: sign in again) is told apart from a
//! transient failure (network, 5xx: try again later). No token, code or verifier ever
//! reaches an error message.

use super::preset::Endpoints;
use crate::secret::Secret;
use base64::Engine as _;
use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenType,
};
use oauth2::{
    AsyncHttpClient, AuthUrl, Client, ClientId, DeviceAuthorizationUrl, EndpointMaybeSet,
    EndpointNotSet, ExtraTokenFields, HttpRequest, HttpResponse, RedirectUrl, RefreshToken,
    RequestTokenError, RevocationUrl, StandardRevocableToken, StandardTokenResponse, TokenResponse,
    TokenUrl,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

/// Fields of a token response beyond RFC 6749's: the OpenID `id_token`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct IdFields {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}
impl ExtraTokenFields for IdFields {}

pub type Tokens = StandardTokenResponse<IdFields, BasicTokenType>;

pub type OauthClient = Client<
    BasicErrorResponse,
    Tokens,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointMaybeSet,
    EndpointMaybeSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// How long one token endpoint call may take, connecting included.
pub const TOKEN_CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a token endpoint call failed, without any secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The endpoint refused (400/401, e.g. `invalid_grant`): only a new sign-in helps.
    #[error("the token endpoint refused ({code})")]
    Refused { status: Option<u16>, code: String },
    /// Network trouble, a timeout or a 5xx: worth trying again later.
    #[error("the token endpoint could not be reached or failed ({detail})")]
    Unavailable { status: Option<u16>, detail: String },
    /// A success status whose body is not a token response this client can read (not
    /// JSON, or a field of the wrong type): worth trying again later. `detail` names
    /// the field, never its value.
    #[error(
        "the token endpoint answered HTTP {} but its body was not a valid token response ({detail})",
        status.map_or_else(|| "2xx".to_string(), |s| s.to_string())
    )]
    InvalidAnswer { status: Option<u16>, detail: String },
    /// The endpoints are not usable (a URL that does not parse).
    #[error("{0}")]
    Config(String),
}

impl TokenError {
    pub fn status(&self) -> Option<u16> {
        match self {
            TokenError::Refused { status, .. }
            | TokenError::Unavailable { status, .. }
            | TokenError::InvalidAnswer { status, .. } => *status,
            TokenError::Config(_) => None,
        }
    }
}

/// What a successful token response carries that we keep.
#[derive(Debug, Clone)]
pub struct Granted {
    pub access: Secret,
    pub refresh: Option<Secret>,
    /// Epoch ms, from `expires_in`.
    pub expires_ms: Option<i64>,
    pub email: Option<String>,
    pub account_id: Option<String>,
}

/// The HTTP client for token endpoints: no redirects (a token request must not be
/// forwarded elsewhere), a deadline per call.
pub fn http_client() -> Result<reqwest::Client, TokenError> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .timeout(TOKEN_CALL_TIMEOUT)
        .user_agent(concat!("remoteclaw/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| TokenError::Config(format!("cannot build the HTTP client: {e}")))
}

fn url<T>(
    what: &str,
    v: &str,
    make: impl FnOnce(String) -> Result<T, oauth2::url::ParseError>,
) -> Result<T, TokenError> {
    make(v.to_string())
        .map_err(|e| TokenError::Config(format!("OAuth {what} \"{v}\" is not a URL: {e}")))
}

/// The error `oauth2` reports for a failed HTTP exchange.
pub type HttpError = oauth2::HttpClientError<reqwest::Error>;

/// The `oauth2` client for these endpoints (`redirect`: the login's redirect URI).
pub fn client(ep: &Endpoints, redirect: Option<&str>) -> Result<OauthClient, TokenError> {
    let mut c = Client::new(ClientId::new(ep.client_id.clone()))
        .set_auth_uri_option(
            ep.authorize_url
                .as_deref()
                .map(|u| url("authorizeUrl", u, AuthUrl::new))
                .transpose()?,
        )
        .set_token_uri_option(Some(url("tokenUrl", &ep.token_url, TokenUrl::new)?))
        .set_device_authorization_url_option(
            ep.device_authorization_url
                .as_deref()
                .map(|u| url("deviceAuthorizationUrl", u, DeviceAuthorizationUrl::new))
                .transpose()?,
        )
        .set_revocation_url_option(
            ep.revoke_url
                .as_deref()
                .map(|u| url("revokeUrl", u, RevocationUrl::new))
                .transpose()?,
        );
    if let Some(r) = redirect {
        c = c.set_redirect_uri(url("redirectUri", r, RedirectUrl::new)?);
    }
    Ok(c)
}

/// An HTTP client for `oauth2` that remembers the status of the last response.
pub struct Recorder<'a> {
    http: &'a reqwest::Client,
    status: AtomicU16,
}

impl<'a> Recorder<'a> {
    pub fn new(http: &'a reqwest::Client) -> Recorder<'a> {
        Recorder {
            http,
            status: AtomicU16::new(0),
        }
    }

    pub fn status(&self) -> Option<u16> {
        Some(self.status.load(Ordering::Relaxed)).filter(|s| *s != 0)
    }

    /// Sort an `oauth2` error into refused / unavailable by the HTTP status.
    pub fn classify<T>(
        &self,
        err: RequestTokenError<HttpError, oauth2::StandardErrorResponse<T>>,
    ) -> TokenError
    where
        T: oauth2::ErrorResponseType + AsRef<str> + std::fmt::Display + Send + Sync + 'static,
    {
        let status = self.status();
        let refused = matches!(status, Some(400 | 401));
        match err {
            RequestTokenError::ServerResponse(e) if refused || status.is_none() => {
                TokenError::Refused {
                    status,
                    code: e.error().as_ref().to_string(),
                }
            }
            _ if refused => TokenError::Refused {
                status,
                code: format!("HTTP {}", status.unwrap_or(400)),
            },
            RequestTokenError::Request(e) => TokenError::Unavailable {
                status,
                detail: request_failure(&e),
            },
            // serde's message can quote the value (a token): name only where it failed.
            RequestTokenError::Parse(e, _) if status.is_some_and(|s| (200..300).contains(&s)) => {
                let at = e.path().to_string();
                TokenError::InvalidAnswer {
                    status,
                    detail: if at.is_empty() || at == "." {
                        "not a JSON object with access_token and token_type".into()
                    } else {
                        format!("unexpected value of `{at}`")
                    },
                }
            }
            _ => TokenError::Unavailable {
                status,
                detail: match status {
                    Some(s) => format!("HTTP {s}"),
                    None => "an unreadable answer".into(),
                },
            },
        }
    }
}

impl<'c> AsyncHttpClient<'c> for Recorder<'_> {
    type Error = HttpError;
    type Future =
        std::pin::Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send + Sync + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let mut resp = self.http.call(request).await?;
            self.status.store(resp.status().as_u16(), Ordering::Relaxed);
            if resp.status().is_success() {
                lenient_token_answer(resp.body_mut());
            }
            Ok(resp)
        })
    }
}

/// A token response is read as leniently as servers write them, because `oauth2` would
/// otherwise refuse the whole answer — tokens and all, after the server may already have
/// rotated the refresh token:
/// - no `token_type` (RFC 6749 requires it, but some servers leave it out) → `"Bearer"`,
///   the only type there is in practice;
/// - `expires_in` as a numeric string (`"3600"`) or a float (`3600.0`) → the integer;
///   one that is no number of seconds at all (`"soon"`, `-5`, `true`) is dropped (the
///   expiry is then unknown, as when it is absent) rather than losing the tokens.
///
/// Anything else is left as it came; a body without `access_token` is not touched.
fn lenient_token_answer(body: &mut Vec<u8>) {
    let Ok(Value::Object(mut obj)) = serde_json::from_slice::<Value>(body) else {
        return;
    };
    if !obj.contains_key("access_token") {
        return;
    }
    let mut changed = false;
    if !obj.contains_key("token_type") {
        obj.insert("token_type".into(), Value::from("Bearer"));
        changed = true;
    }
    if let Some(v) = obj.get("expires_in")
        && !v.is_u64()
        && !v.is_null()
    {
        match expires_in_secs(v) {
            Some(secs) => obj.insert("expires_in".into(), Value::from(secs)),
            None => obj.remove("expires_in"),
        };
        changed = true;
    }
    if changed && let Ok(patched) = serde_json::to_vec(&obj) {
        *body = patched;
    }
}

/// Whole seconds from an `expires_in` that is not a JSON integer: a numeric string or a
/// non-negative finite number (fractions dropped).
fn expires_in_secs(v: &Value) -> Option<u64> {
    let f = match v {
        Value::String(s) => {
            let t = s.trim();
            if let Ok(n) = t.parse::<u64>() {
                return Some(n);
            }
            t.parse::<f64>().ok()?
        }
        Value::Number(n) => n.as_f64()?,
        _ => return None,
    };
    (f.is_finite() && f >= 0.0 && f < u64::MAX as f64).then_some(f as u64)
}

/// A transport failure in words, without the URL's query or any body.
fn request_failure(e: &HttpError) -> String {
    match e {
        oauth2::HttpClientError::Reqwest(r) if r.is_timeout() => {
            format!("no answer within {} s", TOKEN_CALL_TIMEOUT.as_secs())
        }
        oauth2::HttpClientError::Reqwest(r) if r.is_connect() => "cannot connect".into(),
        _ => "the connection failed".into(),
    }
}

/// Refresh: `grant_type=refresh_token`.
pub async fn refresh(
    http: &reqwest::Client,
    ep: &Endpoints,
    refresh_token: &Secret,
    now_ms: i64,
) -> Result<Granted, TokenError> {
    let client = client(ep, None)?;
    let rec = Recorder::new(http);
    let token = RefreshToken::new(refresh_token.expose().to_string());
    let req = client
        .exchange_refresh_token(&token)
        .map_err(|e| TokenError::Config(e.to_string()))?;
    let tokens = req.request_async(&rec).await.map_err(|e| rec.classify(e))?;
    Ok(granted(&tokens, ep, now_ms))
}

/// What a token response grants (`now_ms`: when it arrived).
pub fn granted(t: &Tokens, ep: &Endpoints, now_ms: i64) -> Granted {
    let access = t.access_token().secret().clone();
    let id_claims = t.extra_fields().id_token.as_deref().and_then(jwt_claims);
    let access_claims = jwt_claims(&access);
    let account_id = ep.account_claim.as_deref().and_then(|name| {
        [&id_claims, &access_claims]
            .into_iter()
            .flatten()
            .find_map(|c| claim(c, name))
    });
    let email = id_claims.as_ref().and_then(|c| claim(c, "email"));
    Granted {
        access: Secret::new(access),
        refresh: t.refresh_token().map(|r| Secret::new(r.secret().clone())),
        expires_ms: t.expires_in().map(|d| expires_at(now_ms, d)),
        email,
        account_id,
    }
}

/// `expires` for a token valid `d` from `now_ms`: a margin of a tenth of its life, at
/// most a minute, so clocks that disagree a little do not matter.
pub fn expires_at(now_ms: i64, d: Duration) -> i64 {
    let life = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    let margin = (life / 10).min(60_000);
    now_ms.saturating_add(life.saturating_sub(margin))
}

/// The claims of a JWT (its payload, not verified: it came straight from the token
/// endpoint over the connection we opened, and only names the account).
pub fn jwt_claims(token: &str) -> Option<Value> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice::<Value>(&bytes)
        .ok()
        .filter(Value::is_object)
}

/// A string claim, at the top level or one level down (OpenAI puts its account id under
/// `https://api.openai.com/auth`).
pub fn claim(claims: &Value, name: &str) -> Option<String> {
    let obj = claims.as_object()?;
    let pick = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    pick(obj.get(name)).or_else(|| {
        obj.values()
            .filter_map(Value::as_object)
            .find_map(|inner| pick(inner.get(name)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn jwt(claims: Value) -> String {
        let enc = |v: &Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string().as_bytes())
        };
        format!("{}.{}.sig", enc(&json!({"alg": "none"})), enc(&claims))
    }

    #[test]
    fn claims_are_read_at_top_level_and_one_level_down() {
        let t = jwt(json!({
            "email": "me@example.com",
            "https://api.openai.com/auth": {"chatgpt_account_id": "acct-1"}
        }));
        let c = jwt_claims(&t).expect("claims");
        assert_eq!(claim(&c, "email").as_deref(), Some("me@example.com"));
        assert_eq!(claim(&c, "chatgpt_account_id").as_deref(), Some("acct-1"));
        assert_eq!(claim(&c, "nope"), None);
        assert!(jwt_claims("not-a-jwt").is_none());
        assert!(jwt_claims("a.%%%.c").is_none());
    }

    #[test]
    fn granted_tokens_never_show_in_debug_output() {
        let g = Granted {
            access: Secret::new("CANARYACCESS1"),
            refresh: Some(Secret::new("CANARYREFRESH1")),
            expires_ms: Some(1),
            email: Some("me@example.com".into()),
            account_id: None,
        };
        let shown = format!("{g:?}");
        assert!(!shown.contains("CANARY"), "{shown}");
        assert!(shown.contains("me@example.com"));
        let refused = TokenError::Refused {
            status: Some(400),
            code: "invalid_grant".into(),
        };
        assert_eq!(
            refused.to_string(),
            "the token endpoint refused (invalid_grant)"
        );
    }

    #[test]
    fn a_token_answer_without_token_type_gets_bearer() {
        let mut body = br#"{"access_token":"a","expires_in":60}"#.to_vec();
        lenient_token_answer(&mut body);
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["token_type"], "Bearer");
        assert_eq!(v["access_token"], "a");
        for untouched in [
            &br#"{"access_token":"a","token_type":"mac"}"#[..],
            br#"{"device_code":"d","user_code":"u"}"#,
            b"not json",
        ] {
            let mut body = untouched.to_vec();
            lenient_token_answer(&mut body);
            assert_eq!(body, untouched);
        }
    }

    /// Regression (audit s9): `"expires_in": "3600"` made `oauth2` refuse a 200 answer
    /// whose refresh token the server had already rotated.
    #[test]
    fn expires_in_as_a_string_or_float_is_read_and_nonsense_is_dropped() {
        for (given, want) in [
            (json!("3600"), Some(json!(3600))),
            (json!(" 60 "), Some(json!(60))),
            (json!("90.5"), Some(json!(90))),
            (json!(3600.0), Some(json!(3600))),
            (json!("soon"), None),
            (json!(-5), None),
            (json!(true), None),
            (json!("-1"), None),
        ] {
            let mut body = serde_json::to_vec(
                &json!({"access_token": "a", "token_type": "Bearer", "expires_in": given}),
            )
            .unwrap();
            lenient_token_answer(&mut body);
            let v: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(v.get("expires_in").cloned(), want, "{given}");
            assert_eq!(v["access_token"], "a");
        }
        for untouched in [
            &br#"{"access_token":"a","token_type":"Bearer","expires_in":60}"#[..],
            br#"{"access_token":"a","token_type":"Bearer","expires_in":null}"#,
            br#"{"device_code":"d","expires_in":"600"}"#,
        ] {
            let mut body = untouched.to_vec();
            lenient_token_answer(&mut body);
            assert_eq!(body, untouched);
        }
    }

    #[test]
    fn a_200_that_is_no_token_answer_says_so_without_quoting_it() {
        let e = TokenError::InvalidAnswer {
            status: Some(200),
            detail: "unexpected value of `refresh_token`".into(),
        };
        assert_eq!(
            e.to_string(),
            "the token endpoint answered HTTP 200 but its body was not a valid token response (unexpected value of `refresh_token`)"
        );
    }

    #[test]
    fn expiry_keeps_a_small_margin() {
        assert_eq!(
            expires_at(1_000, Duration::from_secs(3600)),
            1_000 + 3_540_000
        );
        assert_eq!(expires_at(0, Duration::from_secs(100)), 90_000);
        assert_eq!(
            expires_at(i64::MAX - 5, Duration::from_secs(u64::MAX)),
            i64::MAX
        );
    }
}
