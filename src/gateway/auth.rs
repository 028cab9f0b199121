//! Gateway access control: the bearer-token check (constant time) and the rule that a
//! non-loopback bind needs `gateway.auth.token`.

use super::GatewayState;
use super::refusal::{ErrorStyle, Refusal};
use crate::secret::Secret;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};
use std::net::IpAddr;
use subtle::ConstantTimeEq;

#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error(
        "\"{0}\" is not an IP address: set gateway.bind (or --bind) to an address such as 127.0.0.1"
    )]
    BadAddress(String),
    #[error(
        "refusing to listen on {0} without a gateway token: anyone who can reach it could use your model credentials. Set [gateway.auth] token in {1}, or bind 127.0.0.1."
    )]
    NeedsToken(String, String),
}

/// Check the bind address; a non-loopback address needs a token.
pub fn check_bind(bind: &str, has_token: bool, config_path: &str) -> Result<IpAddr, BindError> {
    let ip: IpAddr = if bind == "localhost" {
        IpAddr::from([127, 0, 0, 1])
    } else {
        bind.parse()
            .map_err(|_| BindError::BadAddress(bind.to_string()))?
    };
    if !ip.is_loopback() && !has_token {
        return Err(BindError::NeedsToken(
            bind.to_string(),
            config_path.to_string(),
        ));
    }
    Ok(ip)
}

/// Compare digests so neither the content nor the length leaks through timing.
fn token_matches(expected: &Secret, given: &str) -> bool {
    let a = Sha256::digest(expected.expose().as_bytes());
    let b = Sha256::digest(given.as_bytes());
    a.ct_eq(&b).into()
}

pub async fn require_token(
    State(state): State<GatewayState>,
    req: Request,
    next: Next,
) -> Response {
    let Some(expected) = &state.token else {
        return next.run(req).await;
    };
    // One Authorization header (two are ambiguous: refused), scheme matched without
    // regard to case (RFC 9110 §11.1).
    let given = super::access::single(req.headers(), &header::AUTHORIZATION)
        .ok()
        .flatten()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    match given {
        Some(g) if token_matches(expected, g) => next.run(req).await,
        _ => {
            let style = ErrorStyle::for_path(req.uri().path());
            let mut resp = Refusal::new(
                StatusCode::UNAUTHORIZED,
                "invalid_gateway_token",
                "this gateway needs `Authorization: Bearer <gateway.auth.token>`",
            )
            .render(style);
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            resp
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_rules() {
        assert!(check_bind("127.0.0.1", false, "c").is_ok());
        assert!(check_bind("::1", false, "c").is_ok());
        assert!(check_bind("localhost", false, "c").is_ok());
        assert!(matches!(
            check_bind("0.0.0.0", false, "c"),
            Err(BindError::NeedsToken(..))
        ));
        assert!(check_bind("0.0.0.0", true, "c").is_ok());
        assert!(matches!(
            check_bind("my-host", true, "c"),
            Err(BindError::BadAddress(_))
        ));
    }

    #[test]
    fn token_compare() {
        let t = Secret::new("s3cret");
        assert!(token_matches(&t, "s3cret"));
        assert!(!token_matches(&t, "s3cre"));
        assert!(!token_matches(&t, ""));
    }
}
