//! `parse_mode=HTML` as the Bot API documents it ("Formatting options", HTML style):
//! validates the markup and returns the visible text.
//!
//! - Tags: `b strong i em u ins s strike del tg-spoiler`, `span class="tg-spoiler"`,
//!   `a href`, `tg-emoji emoji-id`, `code`, `pre`, `pre><code class="language-…"`,
//!   `blockquote` and `blockquote expandable`; any other tag or attribute is refused.
//!   Attribute values are quoted with `"` or `'` or unquoted, entities decoded.
//! - Entities: `&lt; &gt; &amp; &quot;` and numeric ones; a `&` that starts none of them
//!   stays text (as Telegram keeps it).
//! - Tags are balanced and properly nested, and nest as entities may: bold, italic,
//!   underline, strikethrough and spoiler hold and sit in anything except `pre` and
//!   `code`; `a`, `code`, `pre` and `tg-emoji` hold none of each other (the language
//!   `code` directly inside `pre` is part of the pre entity); blockquotes are not nested.
//!   (A blockquote may hold the others: the docs name only nesting as forbidden for it.)

/// Tags that style text and may be inside or around anything but code.
const STYLES: &[&str] = &[
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "tg-spoiler",
    "span",
];

/// Entities that hold none of each other.
const EXCLUSIVE: &[&str] = &["a", "code", "pre", "tg-emoji"];

#[derive(Debug)]
struct Open {
    name: String,
    /// A `code` directly inside `pre` (the block's language).
    language: bool,
}

/// `Ok(visible text)` or `Err(what Telegram says after "can't parse entities: ")`.
pub(super) fn html(text: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut open: Vec<Open> = Vec::new();
    let mut pos = 0;
    while let Some(c) = text[pos..].chars().next() {
        match c {
            '<' => {
                let Some(len) = text[pos..].find('>') else {
                    return Err(format!("Unclosed start tag at byte offset {pos}"));
                };
                let inner = &text[pos + 1..pos + len];
                if let Some(name) = inner.strip_prefix('/') {
                    close(&mut open, name, pos)?;
                } else {
                    let tag = start_tag(inner, &open, pos)?;
                    open.push(tag);
                }
                pos += len + 1;
            }
            '&' => match decode_entity(&text[pos..]) {
                Some((ch, len)) => {
                    out.push(ch);
                    pos += len;
                }
                None => {
                    out.push('&');
                    pos += 1;
                }
            },
            c => {
                out.push(c);
                pos += c.len_utf8();
            }
        }
    }
    match open.first() {
        Some(tag) => Err(format!(
            "Can't find end tag corresponding to start tag \"{}\"",
            tag.name
        )),
        None => Ok(out),
    }
}

fn close(open: &mut Vec<Open>, name: &str, pos: usize) -> Result<(), String> {
    let name = name.trim().to_ascii_lowercase();
    match open.pop() {
        Some(tag) if tag.name == name => Ok(()),
        Some(tag) => Err(format!(
            "Unmatched end tag at byte offset {pos}, expected \"</{}>\", found \"</{name}>\"",
            tag.name
        )),
        None => Err(format!("Unexpected end tag at byte offset {pos}")),
    }
}

/// Check a start tag (`inner` is what is between `<` and `>`) against the tags open
/// around it.
fn start_tag(inner: &str, open: &[Open], pos: usize) -> Result<Open, String> {
    let name_end = inner
        .find(|c: char| c.is_whitespace() || c == '/')
        .unwrap_or(inner.len());
    let name = inner[..name_end].to_ascii_lowercase();
    let attrs = attributes(&inner[name_end..], pos)?;
    let parent = open.last().map(|t| t.name.as_str());
    let has = |key: &str| {
        attrs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    let allowed: &[&str] = match name.as_str() {
        "span" if has("class") != Some("tg-spoiler") => {
            return Err(format!(
                "Tag \"span\" must have class \"tg-spoiler\" at byte offset {pos}"
            ));
        }
        "span" => &["class"],
        "a" if has("href").is_none_or(str::is_empty) => {
            return Err(format!(
                "Tag \"a\" must have attribute \"href\" at byte offset {pos}"
            ));
        }
        "a" => &["href"],
        "tg-emoji" if has("emoji-id").is_none_or(str::is_empty) => {
            return Err(format!(
                "Tag \"tg-emoji\" must have attribute \"emoji-id\" at byte offset {pos}"
            ));
        }
        "tg-emoji" => &["emoji-id"],
        "code" if parent == Some("pre") => &["class"],
        "blockquote" => &["expandable"],
        n if STYLES.contains(&n) || n == "code" || n == "pre" => &[],
        _ => {
            return Err(format!(
                "Unsupported start tag \"{name}\" at byte offset {pos}"
            ));
        }
    };
    if let Some((key, _)) = attrs.iter().find(|(k, _)| !allowed.contains(&k.as_str())) {
        return Err(format!(
            "Unsupported attribute \"{key}\" of tag \"{name}\" at byte offset {pos}"
        ));
    }
    let language = name == "code" && parent == Some("pre");
    if language
        && has("class").is_some_and(|c| c.strip_prefix("language-").is_none_or(str::is_empty))
    {
        return Err(format!(
            "Tag \"code\" inside \"pre\" takes only class \"language-…\" at byte offset {pos}"
        ));
    }
    nesting(&name, language, open, pos)?;
    Ok(Open { name, language })
}

/// Telegram's documented entity nesting rules (see the module docs).
fn nesting(name: &str, language: bool, open: &[Open], pos: usize) -> Result<(), String> {
    let bad = |outer: &str| {
        Err(format!(
            "Entity \"{name}\" can't be inside \"{outer}\" at byte offset {pos}"
        ))
    };
    for (depth, outer) in open.iter().enumerate() {
        let direct = depth + 1 == open.len();
        let o = outer.name.as_str();
        let pre_language = language && direct && o == "pre";
        if (o == "code" || o == "pre") && !pre_language {
            return bad(o);
        }
        if outer.language {
            return bad(o);
        }
        if STYLES.contains(&o) && (name == "code" || name == "pre") {
            return bad(o);
        }
        if EXCLUSIVE.contains(&o) && EXCLUSIVE.contains(&name) && !pre_language {
            return bad(o);
        }
        if o == "blockquote" && name == "blockquote" {
            return bad(o);
        }
    }
    Ok(())
}

/// `(name, decoded value)` pairs of a start tag's attribute text.
fn attributes(mut rest: &str, pos: usize) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == '/');
        if rest.is_empty() {
            return Ok(out);
        }
        let key_end = rest
            .find(|c: char| c.is_whitespace() || c == '=' || c == '/')
            .unwrap_or(rest.len());
        let key = rest[..key_end].to_ascii_lowercase();
        rest = rest[key_end..].trim_start();
        let Some(after) = rest.strip_prefix('=') else {
            out.push((key, String::new()));
            continue;
        };
        let after = after.trim_start();
        let (value, next) = match after.chars().next() {
            Some(q @ ('"' | '\'')) => {
                let Some(end) = after[1..].find(q) else {
                    return Err(format!(
                        "Unclosed value of attribute \"{key}\" at byte offset {pos}"
                    ));
                };
                (&after[1..=end], &after[end + 2..])
            }
            _ => {
                let end = after.find(char::is_whitespace).unwrap_or(after.len());
                (&after[..end], &after[end..])
            }
        };
        out.push((key, decode_all(value)));
        rest = next;
    }
}

fn decode_all(value: &str) -> String {
    let mut out = String::new();
    let mut pos = 0;
    while let Some(c) = value[pos..].chars().next() {
        match (c, decode_entity(&value[pos..])) {
            ('&', Some((ch, len))) => {
                out.push(ch);
                pos += len;
            }
            (c, _) => {
                out.push(c);
                pos += c.len_utf8();
            }
        }
    }
    out
}

/// The character and byte length of the entity `text` starts with, if Telegram decodes
/// it: `&lt; &gt; &amp; &quot;` or a numeric one naming a character.
pub(super) fn decode_entity(text: &str) -> Option<(char, usize)> {
    let body = text.strip_prefix('&')?;
    let end = body.char_indices().take(12).find(|&(_, c)| c == ';')?.0;
    let ch = match &body[..end] {
        "lt" => '<',
        "gt" => '>',
        "amp" => '&',
        "quot" => '"',
        name => {
            let num = name.strip_prefix('#')?;
            let code = match num.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => num.parse().ok()?,
            };
            char::from_u32(code).filter(|&c| c != '\0')?
        }
    };
    Some((ch, end + 2))
}
