//! Cutting a reply into messages that fit a platform's length limit (DESIGN §8:
//! "oversized messages are chunked without breaking UTF-8 or code fences").
//!
//! Owns the platform limits ([`TELEGRAM`]: 4096 UTF-16 code units, [`DISCORD`]: 2000
//! characters), how each platform counts ([`measure`]) and where a reply is cut ([`split`]).
//! Pure: no I/O, no Markdown conversion or escaping, no sending or rate limiting — those
//! belong to each channel.
//!
//! Rules of [`split`]:
//! - a cut prefers, in order: a paragraph break (blank line), a line break, a space, a
//!   character boundary that does not separate a combining mark, variation selector or
//!   zero-width joiner from its base, and only then any character boundary. Each rule
//!   takes the last such place that fits;
//! - a character is never split: for UTF-16 a character outside the BMP counts 2 and is
//!   kept whole, so no surrogate pair is separated;
//! - whitespace at a cut is dropped (trailing whitespace of the message before it, blank
//!   lines after it); the indentation of the line after a line cut is kept;
//! - a code block opens with a line starting (after any indentation) with three or more
//!   backticks and an optional language tag, and closes with a line of at least as many
//!   backticks and nothing else; backticks inside a line are not fences. A block
//!   that a cut falls into is closed at the end of that message (`"\n```"`) and reopened
//!   with the same opening line at the start of the next; the added lines count toward the
//!   limit. A cut never leaves an empty block behind (right after the opening line or
//!   right before the closing one) unless nothing else fits. A block left unclosed by the
//!   reply is closed in its last message;
//! - when the limit is so small that reopening and closing would take more than half of
//!   it, the tag is dropped from the reopen line (`"```\n"`); if even that is too much (a
//!   limit below 16 for ```` ``` ````), the block is cut like plain text; a fence line longer
//!   than the whole limit is cut like any other line;
//! - a limit smaller than one character (0, or 1 for UTF-16 and a character outside the
//!   BMP) cannot be met: such a character is sent alone rather than looping forever.

use std::ops::Range;

/// How a platform measures message length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measure {
    /// UTF-16 code units (Telegram): a character outside the BMP, such as 🌍, counts 2.
    Utf16Units,
    /// Unicode code points (Discord's "characters").
    Chars,
}

impl Measure {
    fn of_char(self, c: char) -> usize {
        match self {
            Self::Utf16Units => c.len_utf16(),
            Self::Chars => 1,
        }
    }
}

/// A platform's maximum message length.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub max: usize,
    pub measure: Measure,
}

/// Telegram: 4096 UTF-16 code units per message.
pub const TELEGRAM: Limit = Limit {
    max: 4096,
    measure: Measure::Utf16Units,
};

/// Discord: 2000 characters per message.
pub const DISCORD: Limit = Limit {
    max: 2000,
    measure: Measure::Chars,
};

/// Length of `text` as platform `m` counts it.
pub fn measure(text: &str, m: Measure) -> usize {
    text.chars().map(|c| m.of_char(c)).sum()
}

/// Split `text` into messages that each fit `limit` (see the module docs for where it
/// cuts and how code fences are kept balanced). Messages are never empty and never end in
/// whitespace; empty or whitespace-only input gives no message.
pub fn split(text: &str, limit: Limit) -> Vec<String> {
    pieces(text, limit).iter().map(|p| p.render(text)).collect()
}

/// One outgoing message: a reopened fence line (or `""`), a slice of the reply, and a
/// closing fence (or `""`).
#[derive(Debug)]
struct Piece {
    prefix: String,
    body: Range<usize>,
    suffix: String,
    /// Where the reply was cut; the next message starts after the whitespace here.
    cut: usize,
}

impl Piece {
    fn render(&self, text: &str) -> String {
        let body = text.get(self.body.clone()).unwrap_or_default();
        [self.prefix.as_str(), body, self.suffix.as_str()].concat()
    }
}

fn pieces(text: &str, limit: Limit) -> Vec<Piece> {
    let text = text.trim_end();
    let splitter = Splitter::new(text, limit);
    let mut out = Vec::new();
    let mut next = skip_separator(text, 0);
    while let Some(start) = next {
        let piece = splitter.next_piece(start);
        next = skip_separator(text, piece.cut);
        out.push(piece);
    }
    out
}

/// Where the next message starts after a cut at `from`: past the whitespace there, but
/// keeping the indentation of the line it lands on. `None` when only whitespace is left.
fn skip_separator(text: &str, from: usize) -> Option<usize> {
    let rest = &text[from..];
    let ws = rest.len() - rest.trim_start().len();
    if ws == rest.len() {
        return None;
    }
    let line_start = from == 0 || text[..from].ends_with('\n');
    let skip = match rest[..ws].rfind('\n') {
        Some(i) => i + 1,
        None if line_start => 0,
        None => ws,
    };
    Some(from + skip)
}

/// A fenced code block of the reply. Ranges are byte offsets of the fence lines' content
/// (indentation included, trailing whitespace excluded); an unclosed block's closing
/// range is empty at the end of the text.
#[derive(Debug)]
struct Fence {
    open: Range<usize>,
    close: Range<usize>,
    /// `(reopen line + "\n", "\n" + closing marker)`, or `None` when the limit cannot
    /// afford them.
    decoration: Option<(String, String)>,
}

fn opening_ticks(line: &str) -> Option<usize> {
    let t = line.trim_start();
    let ticks = t.bytes().take_while(|&b| b == b'`').count();
    (ticks >= 3 && !t[ticks..].contains('`')).then_some(ticks)
}

fn is_closing(line: &str, ticks: usize) -> bool {
    let t = line.trim();
    t.len() >= ticks && t.bytes().all(|b| b == b'`')
}

fn decoration(head: &str, ticks: usize, limit: Limit) -> Option<(String, String)> {
    let marker = "`".repeat(ticks);
    let closer = format!("\n{marker}");
    let cost = |reopen: &String| measure(reopen, limit.measure) + measure(&closer, limit.measure);
    [format!("{head}\n"), format!("{marker}\n")]
        .into_iter()
        .find(|reopen| cost(reopen) <= limit.max / 2)
        .map(|reopen| (reopen, closer))
}

fn scan_fences(text: &str, limit: Limit) -> Vec<Fence> {
    let mut fences = Vec::new();
    // (content range of the opening line, its backtick count)
    let mut open: Option<(Range<usize>, usize)> = None;
    let mut line_start = 0;
    for line in text.split_inclusive('\n') {
        let content = line.trim_end();
        let range = line_start..line_start + content.len();
        line_start += line.len();
        match &open {
            None => open = opening_ticks(content).map(|ticks| (range, ticks)),
            Some((head, ticks)) if is_closing(content, *ticks) => {
                let decoration = decoration(text[head.clone()].trim(), *ticks, limit);
                fences.push(Fence {
                    open: head.clone(),
                    close: range,
                    decoration,
                });
                open = None;
            }
            Some(_) => {}
        }
    }
    if let Some((head, ticks)) = open {
        let decoration = decoration(text[head.clone()].trim(), ticks, limit);
        fences.push(Fence {
            open: head,
            close: text.len()..text.len(),
            decoration,
        });
    }
    fences
}

/// Preferred kinds of cut, best first. A cut at `p` ends the message before byte `p`.
#[derive(Debug, Clone, Copy)]
enum Tier {
    Paragraph,
    Line,
    Space,
    Grapheme,
    Char,
}

impl Tier {
    const ALL: [Tier; 5] = [
        Tier::Paragraph,
        Tier::Line,
        Tier::Space,
        Tier::Grapheme,
        Tier::Char,
    ];

    fn allows(self, text: &str, cut: usize) -> bool {
        let next = text[cut..].chars().next();
        match self {
            Tier::Paragraph => {
                next == Some('\n')
                    && text[cut + 1..]
                        .trim_start_matches([' ', '\t', '\r'])
                        .starts_with('\n')
            }
            Tier::Line => next == Some('\n'),
            Tier::Space => next.is_some_and(char::is_whitespace),
            Tier::Grapheme => {
                !next.is_some_and(extends_previous) && !text[..cut].ends_with('\u{200D}')
            }
            Tier::Char => true,
        }
    }
}

/// Characters that belong with the one before them (best effort, without Unicode tables):
/// combining marks, zero-width joiner, variation selectors, skin tones, emoji tags.
pub(crate) fn extends_previous(c: char) -> bool {
    matches!(c,
        '\u{0300}'..='\u{036F}'
        | '\u{1AB0}'..='\u{1AFF}'
        | '\u{1DC0}'..='\u{1DFF}'
        | '\u{200D}'
        | '\u{20D0}'..='\u{20FF}'
        | '\u{FE00}'..='\u{FE0F}'
        | '\u{FE20}'..='\u{FE2F}'
        | '\u{1F3FB}'..='\u{1F3FF}'
        | '\u{E0020}'..='\u{E007F}'
        | '\u{E0100}'..='\u{E01EF}')
}

struct Splitter<'a> {
    text: &'a str,
    limit: Limit,
    fences: Vec<Fence>,
    /// The longest closing fence any block may need, kept free when a cut must close one.
    reserve: usize,
}

impl<'a> Splitter<'a> {
    fn new(text: &'a str, limit: Limit) -> Self {
        let fences = scan_fences(text, limit);
        let reserve = fences
            .iter()
            .filter_map(|f| f.decoration.as_ref())
            .map(|(_, closer)| measure(closer, limit.measure))
            .max()
            .unwrap_or(0);
        Self {
            text,
            limit,
            fences,
            reserve,
        }
    }

    fn len(&self, s: &str) -> usize {
        measure(s, self.limit.measure)
    }

    /// The last block whose opening line starts before `pos`.
    fn fence_before(&self, pos: usize) -> Option<&Fence> {
        let i = self.fences.partition_point(|f| f.open.start < pos);
        i.checked_sub(1).and_then(|i| self.fences.get(i))
    }

    /// The fence line to repeat when a message starts at `start`.
    fn reopen_at(&self, start: usize) -> &str {
        match self.fence_before(start) {
            Some(Fence {
                open,
                close,
                decoration: Some((reopen, _)),
            }) if start > open.end && start < close.start => reopen,
            _ => "",
        }
    }

    /// The fence to add when a message's content ends at `end`.
    fn close_at(&self, end: usize) -> &str {
        match self.fence_before(end) {
            Some(Fence {
                open,
                close,
                decoration: Some((_, closer)),
            }) if end >= open.end && end <= close.start => closer,
            _ => "",
        }
    }

    /// A message ending here would split a fence line or end right after an opening one.
    fn bad_end(&self, end: usize) -> bool {
        self.fence_before(end)
            .is_some_and(|f| end <= f.open.end || (end > f.close.start && end < f.close.end))
    }

    /// A message starting here would split a fence line or start with a closing one.
    fn bad_start(&self, start: usize) -> bool {
        self.fence_before(start)
            .is_some_and(|f| start < f.open.end || (start >= f.close.start && start < f.close.end))
    }

    fn next_piece(&self, start: usize) -> Piece {
        let prefix = self.reopen_at(start);
        let budget = self.limit.max.saturating_sub(self.len(prefix));
        let (mut body, mut cut) = self.cut(start, budget);
        let mut suffix = self.close_at(body.end);
        let total = self.len(prefix) + self.len(&self.text[body.clone()]) + self.len(suffix);
        if total > self.limit.max {
            // The cut fell inside a block: cut again leaving room to close it.
            (body, cut) = self.cut(start, budget.saturating_sub(self.reserve));
            suffix = self.close_at(body.end);
        }
        Piece {
            prefix: prefix.to_owned(),
            body,
            suffix: suffix.to_owned(),
            cut,
        }
    }

    /// Choose where the message starting at `start` ends, with `budget` left for the
    /// reply's own text. Returns the body range and the cut.
    fn cut(&self, start: usize, budget: usize) -> (Range<usize>, usize) {
        let text = self.text;
        let rest = &text[start..];
        let indent = rest.len() - rest.trim_start().len();
        let first_end = start + indent + rest[indent..].chars().next().map_or(0, char::len_utf8);
        // Indentation that leaves no room for a character is whitespace at a cut: drop it.
        let start = if self.len(&text[start..first_end]) <= budget {
            start
        } else {
            start + indent
        };
        let body = |cut: usize| start..start + text[start..cut].trim_end().len();
        let window = self.window_end(start, budget);
        if window == text.len() {
            return (body(window), window);
        }
        for tier in Tier::ALL {
            for cut in (start + 1..=window).rev() {
                if text.is_char_boundary(cut) && tier.allows(text, cut) && self.clean(start, cut) {
                    return (body(cut), cut);
                }
            }
        }
        // Nothing clean fits: take what fits, and at least one character.
        let cut = window.max(first_end);
        (body(cut), cut)
    }

    fn clean(&self, start: usize, cut: usize) -> bool {
        let end = start + self.text[start..cut].trim_end().len();
        end > start
            && !self.bad_end(end)
            && skip_separator(self.text, cut).is_none_or(|next| !self.bad_start(next))
    }

    /// The end of the longest run of whole characters from `start` that fits `budget`.
    fn window_end(&self, start: usize, budget: usize) -> usize {
        let mut used = 0;
        for (i, c) in self.text[start..].char_indices() {
            used += self.limit.measure.of_char(c);
            if used > budget {
                return start + i;
            }
        }
        self.text.len()
    }
}

#[cfg(test)]
mod tests;
