//! Cutting Telegram HTML into messages that fit the length limit with every part's tags
//! balanced (DESIGN §8 chunking, §10 "Formatting").
//!
//! Owns [`split`] and the small tokenizer it shares with
//! [`plain`](super::telegram_html::plain). Telegram measures a message's length on its
//! text after entity parsing (Bot API `sendMessage`: "Text of the message to be sent,
//! 1-4096 characters after entities parsing", counted in UTF-16 code units as entity
//! offsets are), so only visible text counts toward the limit: tags are free and an
//! entity such as `&amp;` counts as its one character.
//!
//! Rules of [`split`], as `channels::chunk::split` for plain text:
//! - a cut prefers, in order: a paragraph break (blank line), a line break, a space, a
//!   character boundary that does not separate a combining mark, variation selector or
//!   zero-width joiner from its base, and only then any character boundary; each rule
//!   takes the last such place that fits;
//! - a character (so a surrogate pair), an entity and a tag are never split;
//! - whitespace at a cut is dropped (the indentation of the line after a line cut is
//!   kept when it fits);
//! - tags open at a cut are closed at the end of the part and reopened, with the same
//!   attributes (`<pre><code class="language-rust">` included), at the start of the next;
//! - a limit smaller than one character cannot be met: that character is sent alone.
//!
//! Meant for HTML from [`render`](super::telegram_html::render): tags are taken to be
//! balanced and properly nested; a stray end tag is kept as it is.

use crate::channels::chunk::{Limit, Measure, extends_previous};

/// One piece of Telegram HTML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Token<'a> {
    /// A start tag, `raw` with its brackets and attributes.
    Open { name: &'a str, raw: &'a str },
    /// An end tag.
    Close { name: &'a str, raw: &'a str },
    /// One visible character: itself, an entity, or a `<`/`&` that starts no tag/entity.
    Char { raw: &'a str, ch: char },
}

/// Cut `html` into messages whose visible text fits `limit` (see the module docs).
/// Parts are never empty; input with no visible text but whitespace gives no part.
pub fn split(html: &str, limit: Limit) -> Vec<String> {
    let toks = tokens(html);
    // (token index, character) of every visible character.
    let visible: Vec<(usize, char)> = toks
        .iter()
        .enumerate()
        .filter_map(|(i, t)| match t {
            Token::Char { ch, .. } => Some((i, *ch)),
            _ => None,
        })
        .collect();
    let chars: Vec<char> = visible.iter().map(|&(_, c)| c).collect();
    let width = |c: char| match limit.measure {
        Measure::Utf16Units => c.len_utf16(),
        Measure::Chars => 1,
    };

    let mut parts = Vec::new();
    let mut open = OpenTags::default();
    let mut start = next_start(&chars, 0, limit, width);
    while let Some(s) = start {
        let cut = choose_cut(&chars, s, limit.max, width);
        let end = s + chars[s..cut]
            .iter()
            .rposition(|c| !c.is_whitespace())
            .map_or(0, |i| i + 1);
        if end == s {
            // Only indentation fitted: drop it.
            start = chars[s..]
                .iter()
                .position(|c| !c.is_whitespace())
                .map(|i| s + i);
            continue;
        }
        let (first, last) = (visible[s].0, visible[end - 1].0);
        open.advance(&toks, first);
        let mut part: String = open.stack.iter().map(|&i| raw(&toks[i])).collect();
        part.extend(toks[first..=last].iter().map(raw));
        open.advance(&toks, last + 1);
        for &i in open.stack.iter().rev() {
            if let Token::Open { name, .. } = toks[i] {
                part.push_str(&format!("</{name}>"));
            }
        }
        parts.push(part);
        start = next_start(&chars, cut, limit, width);
    }
    parts
}

/// Tokens of `html`. Never fails: what is not a tag or a known entity is text.
pub(crate) fn tokens(html: &str) -> Vec<Token<'_>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(c) = html[pos..].chars().next() {
        let rest = &html[pos..];
        let (token, len) = match c {
            '<' => match rest.find('>') {
                Some(end) => (tag(&rest[..=end]), end + 1),
                None => (Token::Char { raw: "<", ch: '<' }, 1),
            },
            '&' => match entity(rest) {
                Some((ch, len)) => (
                    Token::Char {
                        raw: &rest[..len],
                        ch,
                    },
                    len,
                ),
                None => (Token::Char { raw: "&", ch: '&' }, 1),
            },
            c => {
                let len = c.len_utf8();
                (
                    Token::Char {
                        raw: &rest[..len],
                        ch: c,
                    },
                    len,
                )
            }
        };
        out.push(token);
        pos += len;
    }
    out
}

fn raw<'a>(t: &Token<'a>) -> &'a str {
    match t {
        Token::Open { raw, .. } | Token::Close { raw, .. } | Token::Char { raw, .. } => raw,
    }
}

/// `raw` is `<…>`.
fn tag(raw: &str) -> Token<'_> {
    let inner = &raw[1..raw.len() - 1];
    match inner.strip_prefix('/') {
        Some(name) => Token::Close {
            name: name.trim(),
            raw,
        },
        None => {
            let end = inner
                .find(|c: char| c.is_whitespace() || c == '/')
                .unwrap_or(inner.len());
            Token::Open {
                name: &inner[..end],
                raw,
            }
        }
    }
}

/// The character and byte length of the entity `text` starts with: `&lt;`, `&gt;`,
/// `&amp;`, `&quot;` or a numeric one (what Telegram decodes).
pub(crate) fn entity(text: &str) -> Option<(char, usize)> {
    let body = text.strip_prefix('&')?;
    let end = body.char_indices().take(12).find(|&(_, c)| c == ';')?.0;
    let name = &body[..end];
    let ch = match name {
        "lt" => '<',
        "gt" => '>',
        "amp" => '&',
        "quot" => '"',
        _ => {
            let num = name.strip_prefix('#')?;
            let code = match num.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => num.parse().ok()?,
            };
            char::from_u32(code)?
        }
    };
    Some((ch, end + 2))
}

/// The tags open before a token, tracked forward through the tokens.
#[derive(Debug, Default)]
struct OpenTags {
    /// Next token to apply.
    pos: usize,
    /// Indexes of the open start tags, outermost first.
    stack: Vec<usize>,
}

impl OpenTags {
    fn advance(&mut self, toks: &[Token], to: usize) {
        while self.pos < to.min(toks.len()) {
            match toks[self.pos] {
                Token::Open { .. } => self.stack.push(self.pos),
                Token::Close { name, .. } => {
                    let matching = self.stack.iter().rposition(|&i| {
                        matches!(toks[i], Token::Open { name: n, .. } if n.eq_ignore_ascii_case(name))
                    });
                    if let Some(at) = matching {
                        self.stack.truncate(at);
                    }
                }
                Token::Char { .. } => {}
            }
            self.pos += 1;
        }
    }
}

/// Where the part after a cut at `from` starts: past the whitespace there, keeping the
/// indentation of the line it lands on when that fits the limit. `None` at the end.
fn next_start(
    chars: &[char],
    from: usize,
    limit: Limit,
    width: impl Fn(char) -> usize,
) -> Option<usize> {
    let content = from + chars[from..].iter().position(|c| !c.is_whitespace())?;
    let run = &chars[from..content];
    let line_start = from == 0 || chars[from - 1] == '\n';
    let indent_from = match run.iter().rposition(|&c| c == '\n') {
        Some(i) => from + i + 1,
        None if line_start => from,
        None => content,
    };
    let indent: usize = chars[indent_from..content].iter().map(|&c| width(c)).sum();
    Some(if indent < limit.max {
        indent_from
    } else {
        content
    })
}

/// The end (exclusive) of the part starting at `s`: at most `max` units of text.
fn choose_cut(chars: &[char], s: usize, max: usize, width: impl Fn(char) -> usize) -> usize {
    let mut used = 0;
    let mut window = s;
    while let Some(&c) = chars.get(window) {
        if used + width(c) > max {
            break;
        }
        used += width(c);
        window += 1;
    }
    if window == chars.len() {
        return window;
    }
    if window == s {
        // Not even one character fits: send it alone.
        return s + 1;
    }
    let tiers: [&dyn Fn(usize) -> bool; 4] = [
        &|c| {
            chars[c] == '\n'
                && chars[c + 1..]
                    .iter()
                    .find(|&&x| !matches!(x, ' ' | '\t' | '\r'))
                    == Some(&'\n')
        },
        &|c| chars[c] == '\n',
        &|c| chars[c].is_whitespace(),
        &|c| !extends_previous(chars[c]) && chars[c - 1] != '\u{200D}',
    ];
    tiers
        .iter()
        .find_map(|allows| (s + 1..=window).rev().find(|&c| allows(c)))
        .unwrap_or(window)
}
