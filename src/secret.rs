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

/// A model's reply with a secret taken out, for text that may arrive in pieces (a
/// streamed reply): each piece comes out with every whole occurrence of the secret
/// replaced by `<redacted>`, and an ending that could be the start of the secret is held
/// back until the next piece shows whether it is. What comes out, joined, is
/// [`Redactor::redact`] of the whole text; no piece ever carries the secret, not even cut
/// across two pieces.
///
/// Secrets shorter than [`Redactor::MIN_LEN`] are left in replies: real keys and tokens
/// are longer, and the placeholder key of a local server (`none`, `ollama`, `EMPTY`) is
/// a word a reply may well contain.
pub struct Redactor {
    secret: Secret,
    held: String,
}

impl Redactor {
    /// The shortest secret taken out of replies.
    pub const MIN_LEN: usize = 16;

    pub fn new(secret: &Secret) -> Redactor {
        Redactor {
            secret: secret.clone(),
            held: String::new(),
        }
    }

    /// A whole reply with `secret` taken out (what the pieces of it join to).
    pub fn redact(secret: &Secret, text: &str) -> String {
        if secret.expose().len() < Self::MIN_LEN {
            return text.to_string();
        }
        secret.redact_in(text)
    }

    /// The part of `piece` (after what was held back) that can be shown now.
    pub fn push(&mut self, piece: &str) -> String {
        let secret = self.secret.expose();
        if secret.len() < Self::MIN_LEN {
            return piece.to_string();
        }
        let mut text = std::mem::take(&mut self.held);
        text.push_str(piece);
        let mut out = String::with_capacity(text.len());
        let mut rest = text.as_str();
        while let Some(at) = rest.find(secret) {
            out.push_str(&rest[..at]);
            out.push_str("<redacted>");
            rest = &rest[at + secret.len()..];
        }
        // The longest ending of `rest` that begins the secret (shorter than the secret,
        // or it would have been found above) waits for the next piece.
        let keep = (1..secret.len().min(rest.len() + 1))
            .rev()
            .find(|&n| secret.is_char_boundary(n) && rest.ends_with(&secret[..n]))
            .unwrap_or(0);
        out.push_str(&rest[..rest.len() - keep]);
        self.held = rest[rest.len() - keep..].to_string();
        out
    }

    /// What is still held back: the text ended, so it was not the secret.
    pub fn finish(self) -> String {
        self.held
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
    fn a_streamed_secret_is_redacted_even_when_cut_across_pieces() {
        let key = Secret::new("sk-KEY-1234567890");
        let mut r = Redactor::new(&key);
        let pieces = [
            "your key: sk-",
            "KEY-1234567",
            "890, and sk-K",
            "ite",
            " sk-KEY-12",
        ];
        let shown: Vec<String> = pieces.iter().map(|p| r.push(p)).collect();
        assert_eq!(
            shown,
            ["your key: ", "", "<redacted>, and ", "sk-Kite", " "]
        );
        assert_eq!(r.finish(), "sk-KEY-12");
        // A local server's placeholder key is a word like any other in a reply.
        for placeholder in ["none", "EMPTY", "ollama", "lm-studio"] {
            let key = Secret::new(placeholder);
            let text = format!("there is {placeholder} left");
            assert_eq!(Redactor::redact(&key, &text), text);
            let mut r = Redactor::new(&key);
            assert_eq!(r.push(&text), text);
            assert_eq!(r.finish(), "");
        }
    }

    proptest::proptest! {
        /// Any text (the secret put in it anywhere, also overlapping itself), cut
        /// anywhere: the pieces join to the one-shot redaction, and no piece shows the
        /// secret.
        #[test]
        fn streamed_redaction_is_the_one_shot_redaction(
            secret in "[ab]{16,18}|sk-[a-zA-Z0-9é]{13,20}",
            parts in proptest::collection::vec("[ab ]{0,20}|sk-[a-zA-Z0-9é]{0,16}", 0..8),
            with_secret in proptest::collection::vec(proptest::bool::ANY, 8),
            cuts in proptest::collection::vec(0usize..64, 0..10),
        ) {
            let mut text = String::new();
            for (i, p) in parts.iter().enumerate() {
                text.push_str(p);
                if with_secret[i] {
                    text.push_str(&secret);
                }
            }
            let mut bounds: Vec<usize> = cuts
                .iter()
                .map(|c| c % (text.len() + 1))
                .filter(|c| text.is_char_boundary(*c))
                .collect();
            bounds.extend([0, text.len()]);
            bounds.sort_unstable();
            bounds.dedup();
            let key = Secret::new(secret.clone());
            let mut r = Redactor::new(&key);
            let mut joined = String::new();
            for w in bounds.windows(2) {
                let piece = r.push(&text[w[0]..w[1]]);
                proptest::prop_assert!(!piece.contains(&secret), "{piece:?}");
                joined.push_str(&piece);
            }
            joined.push_str(&r.finish());
            proptest::prop_assert_eq!(joined, Redactor::redact(&key, &text));
        }
    }

    #[test]
    fn fingerprint_is_first_8_hex_of_sha256() {
        // sha256("abc") = ba7816bf...
        assert_eq!(Secret::new("abc").fingerprint(), "ba7816bf");
    }
}
