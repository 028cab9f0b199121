//! Token shapes of the fake OAuth server: unsigned JWTs (`header.payload.sig`,
//! base64url without padding), the PKCE S256 transform (RFC 7636 §4.2), and the
//! form-body parsing shared by the endpoints. No state and no I/O here.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// An unsigned JWT (`alg: none`) whose third segment is `sig`, so a canary can
/// sit in the token's own text (base64url would hide it inside the payload).
pub(super) fn encode_unsigned(claims: &Value, sig: &str) -> String {
    let header = json!({"alg": "none", "typ": "JWT"});
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        sig
    )
}

/// The claims (payload) of a JWT-shaped token, or `None` when it is not one.
pub fn jwt_claims(token: &str) -> Option<Value> {
    let mut parts = token.split('.');
    let (_header, payload, _sig) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// `BASE64URL(SHA256(verifier))`, the S256 code challenge of a verifier.
pub fn s256_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// RFC 7636 §4.1: 43–128 characters of `[A-Z a-z 0-9 - . _ ~]`.
pub(super) fn valid_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// An S256 challenge is the 43-character base64url encoding of 32 bytes.
pub(super) fn valid_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && URL_SAFE_NO_PAD
            .decode(challenge)
            .is_ok_and(|bytes| bytes.len() == 32)
}

/// Name/value pairs of an `application/x-www-form-urlencoded` body or query,
/// in order, duplicates kept (the endpoints reject them, RFC 6749 §3.1).
pub(super) fn parse_pairs(raw: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(raw).into_owned().collect()
}

/// The first parameter named `name` whose value is not empty.
pub(super) fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, v)| k == name && !v.is_empty())
        .map(|(_, v)| v.as_str())
}

/// The name of a parameter given more than once, if any.
pub(super) fn duplicate(pairs: &[(String, String)]) -> Option<&str> {
    pairs.iter().enumerate().find_map(|(i, (k, _))| {
        pairs[..i]
            .iter()
            .any(|(seen, _)| seen == k)
            .then_some(k.as_str())
    })
}
