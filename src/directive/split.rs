//! Splitting `model@profile` (DESIGN §4). Pure; shared by the chat parser and the HTTP API's
//! `model` field. Owns only where the split is, not what the parts mean.

/// Split `model@profile` into the model text and an optional credential profile id.
///
/// - The profile starts at the first `@` after the last `/` (provider paths such as
///   `openai/@cf/openai/gpt-oss-20b` keep their `@`); an `@` at position 0 never splits.
/// - An 8-digit date right after the `@` (`claude-haiku@20251001`, followed by the end or by
///   another `@`) belongs to the model, and the next `@` is used instead.
/// - A version-like suffix (`v?\d+(\.\d+)*`: `@1234`, `@v1.2.3`) is not a profile, and an empty
///   side means no profile: then the whole argument is the model.
///
/// Both parts are returned as typed (profile ids are case-sensitive).
///
/// ```
/// use remoteclaw::directive::split_model_profile;
/// assert_eq!(
///     split_model_profile("flash@google-gemini-cli:me@gmail.com"),
///     ("flash", Some("google-gemini-cli:me@gmail.com"))
/// );
/// assert_eq!(split_model_profile("claude-haiku@20251001"), ("claude-haiku@20251001", None));
/// ```
#[must_use]
pub fn split_model_profile(arg: &str) -> (&str, Option<&str>) {
    // Byte searches: `/` and `@` are ASCII, so every index found is a char boundary.
    let bytes = arg.as_bytes();
    // One backward pass finds the first `@` after the last `/`.
    let mut next_at = None;
    for (i, &b) in bytes.iter().enumerate().rev() {
        match b {
            b'/' => break,
            b'@' => next_at = Some(i),
            _ => {}
        }
    }
    while let Some(at) = next_at {
        let after = &arg[at + 1..];
        if at == 0 || is_date_then_end_or_at(after) {
            next_at = after.bytes().position(|b| b == b'@').map(|i| at + 1 + i);
            continue;
        }
        if after.is_empty() {
            // `opus@`: the profile side is empty, so no profile (and no `@` in the model).
            return (&arg[..at], None);
        }
        if is_version_like(after) {
            return (arg, None);
        }
        return (&arg[..at], Some(after));
    }
    (arg, None)
}

/// `YYYYMMDD` followed by the end of the text or by `@`.
fn is_date_then_end_or_at(s: &str) -> bool {
    let bytes = s.as_bytes();
    bytes.len() >= 8
        && bytes[..8].iter().all(u8::is_ascii_digit)
        && bytes.get(8).is_none_or(|&b| b == b'@')
}

/// `v?\d+(\.\d+)*`
fn is_version_like(s: &str) -> bool {
    let digits = s.strip_prefix('v').unwrap_or(s);
    !digits.is_empty()
        && digits
            .split('.')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::split_model_profile;

    #[test]
    fn split_table() {
        let cases: &[(&str, &str, Option<&str>)] = &[
            // DESIGN §4 and the brief
            (
                "openai/@cf/openai/gpt-oss-20b@cf:default",
                "openai/@cf/openai/gpt-oss-20b",
                Some("cf:default"),
            ),
            (
                "flash@google-gemini-cli:me@gmail.com",
                "flash",
                Some("google-gemini-cli:me@gmail.com"),
            ),
            ("claude-haiku@20251001", "claude-haiku@20251001", None),
            (
                "claude-haiku@20251001@work",
                "claude-haiku@20251001",
                Some("work"),
            ),
            (
                "anthropic/claude-opus-4-5@anthropic:work",
                "anthropic/claude-opus-4-5",
                Some("anthropic:work"),
            ),
            ("gpt@v1.2.3", "gpt@v1.2.3", None),
            ("gpt@1234", "gpt@1234", None),
            ("@work", "@work", None),
            ("opus@", "opus", None),
            ("opus@anthropic:work", "opus", Some("anthropic:work")),
            // plain and empty
            ("", "", None),
            ("opus", "opus", None),
            ("@", "@", None),
            ("@@", "@", None),
            ("a/b/c", "a/b/c", None),
            // `@` at 0 is skipped, the next one splits
            ("@a@b", "@a", Some("b")),
            // `@` before the last `/` never splits
            ("a@b/c", "a@b/c", None),
            ("a@b/c@d", "a@b/c", Some("d")),
            ("x/@y", "x/", Some("y")),
            // dates: exactly 8 digits then end or `@`
            ("x@20251001@", "x@20251001", None),
            ("x@20251001@20251002", "x@20251001@20251002", None),
            ("x@20251001@v2", "x@20251001@v2", None),
            ("x@20251001x", "x", Some("20251001x")),
            ("x@2025100", "x@2025100", None),
            ("x@202510011", "x@202510011", None),
            // version-like vs profile-like
            ("gpt@v2", "gpt@v2", None),
            ("gpt@1.2", "gpt@1.2", None),
            ("gpt@v", "gpt", Some("v")),
            ("gpt@1.", "gpt", Some("1.")),
            ("gpt@V2", "gpt", Some("V2")),
            ("gpt@1234@work", "gpt", Some("1234@work")),
            ("gpt@work2", "gpt", Some("work2")),
            // case kept as typed
            ("Opus@Anthropic:Work", "Opus", Some("Anthropic:Work")),
            // multi-byte text never panics and stays intact
            ("é@ü", "é", Some("ü")),
            ("🌍/@x@y", "🌍/", Some("x@y")),
        ];
        for &(arg, model, profile) in cases {
            assert_eq!(split_model_profile(arg), (model, profile), "arg {arg:?}");
        }
    }
}
