//! The `Secret` newtype: the only way a credential value travels through RemoteClaw.
//!
//! `Debug` and `Display` never print the value; `expose` is the one explicit door, used
//! only where a value goes onto the wire (an HTTP header). Status output identifies a
//! secret by its `fingerprint` (first 8 hex digits of SHA-256), never by its text.

use sha2::{Digest, Sha256};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, OnceLock};

/// A secret value (API key, token). Redacted in every formatting path. Clones share
/// the value and its fingerprint, which is computed at most once.
#[derive(Clone)]
pub struct Secret(Arc<Inner>);

struct Inner {
    value: Box<str>,
    fingerprint: OnceLock<String>,
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.0.value == other.0.value
    }
}

impl Eq for Secret {}

impl Hash for Secret {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.value.hash(state);
    }
}

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(Arc::new(Inner {
            value: value.into().into_boxed_str(),
            fingerprint: OnceLock::new(),
        }))
    }

    /// The raw value. Call only where the value must go on the wire.
    pub fn expose(&self) -> &str {
        &self.0.value
    }

    /// First 8 hex digits of the SHA-256 of the value: safe to show and log.
    pub fn fingerprint(&self) -> &str {
        self.0
            .fingerprint
            .get_or_init(|| fingerprint_of(&self.0.value))
    }

    /// `text` with every occurrence of this secret replaced by `<redacted>` — for error
    /// texts from libraries that may quote it (URLs, echoed request fields). Values
    /// shorter than 4 characters are left alone: replacing them would mangle any text.
    pub fn redact_in(&self, text: &str) -> String {
        let v = &*self.0.value;
        if v.len() >= 4 && text.contains(v) {
            text.replace(v, "<redacted>")
        } else {
            text.to_string()
        }
    }

    pub fn is_blank(&self) -> bool {
        self.0.value.trim().is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(<redacted {}>)", self.fingerprint())
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// First 8 hex digits of the SHA-256 of `text` (what [`Secret::fingerprint`] shows).
pub fn fingerprint_of(text: &str) -> String {
    Sha256::digest(text.as_bytes())[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let s = Secret::new("sk-ant-api03-CANARY-VALUE");
        assert!(!format!("{s:?}").contains("CANARY"));
        assert!(!format!("{s}").contains("CANARY"));
        assert!(!format!("{:?}", Some(&s)).contains("CANARY"));
    }

    #[test]
    fn redact_in_replaces_every_occurrence_but_never_tiny_values() {
        let s = Secret::new("tok-123");
        assert_eq!(
            s.redact_in("a tok-123 b tok-123"),
            "a <redacted> b <redacted>"
        );
        assert_eq!(Secret::new("ab").redact_in("abc"), "abc");
        assert_eq!(Secret::new("").redact_in("abc"), "abc");
    }

    #[test]
    fn fingerprint_is_first_8_hex_of_sha256() {
        // sha256("abc") = ba7816bf...
        assert_eq!(Secret::new("abc").fingerprint(), "ba7816bf");
    }
}
