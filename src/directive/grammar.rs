//! The nom grammar of one directive at a candidate position (text starting at a `/` that
//! stands at the start of the message or after whitespace).
//!
//! ```text
//! directive  = "/" word [ "@" bot ] ( end | whitespace | ":" ) [ ":" ] [ inline-space* token ]
//! word       = model | new | reset | help | <alias>      (case-insensitive)
//! bot        = [A-Za-z0-9_]+
//! token      = [A-Za-z0-9_.:@/-]+ without trailing "." and ":"     (only after "model")
//! ```
//!
//! Owns: recognising the word, the bot suffix and the raw argument. Does not own: where
//! candidates are, whose bot it is, or what the argument means (all in `mod.rs`).

use std::collections::BTreeSet;

use nom::branch::alt;
use nom::bytes::complete::{tag, take_while, take_while1};
use nom::character::complete::{char, satisfy};
use nom::combinator::{eof, opt, peek, recognize};
use nom::sequence::preceded;
use nom::{IResult, Offset, Parser};

/// The unit error type keeps failed attempts free of allocation.
type PResult<'a, O> = IResult<&'a str, O, ()>;

/// The built-in command words. Every one has a manifest in `commands/` (checked by a test).
pub(super) const COMMAND_WORDS: [(&str, Word<'static>); 5] = [
    ("model", Word::Model),
    ("new", Word::New),
    ("reset", Word::Reset),
    ("help", Word::Help),
    ("usage", Word::Usage),
];

/// Which command a candidate names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Word<'a> {
    Model,
    New,
    Reset,
    Help,
    Usage,
    /// A configured alias, as typed.
    Alias(&'a str),
}

/// A grammatical directive at a candidate position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Candidate<'a> {
    pub word: Word<'a>,
    /// The `@bot` suffix, if any (whose bot it is is decided by the caller).
    pub bot: Option<&'a str>,
    /// The `/model` argument and its byte offset from the `/`.
    pub arg: Option<(&'a str, usize)>,
    /// Bytes from the `/` to the end of the directive.
    pub len: usize,
}

/// Parse a directive at the start of `input` (which starts with `/`); `None` if there is none.
pub(super) fn candidate<'a>(input: &'a str, aliases: &BTreeSet<String>) -> Option<Candidate<'a>> {
    let (after_word, text) = slash_word(input).ok()?;
    let word = classify_word(text, aliases)?;
    let (after_bot, bot) = bot_suffix(after_word).ok()?;
    word_end(after_bot).ok()?;
    let (after_colon, _) = colon(after_bot).ok()?;

    let mut end = after_colon;
    let mut arg = None;
    if word == Word::Model
        && let Ok((after_arg, token)) = argument(end)
    {
        arg = Some((token, input.offset(token)));
        end = after_arg;
    }
    Some(Candidate {
        word,
        bot,
        arg,
        len: input.offset(end),
    })
}

/// `/` and the command word, which runs up to whitespace, `:` or `@`.
fn slash_word(input: &str) -> PResult<'_, &str> {
    preceded(char('/'), take_while1(is_word_char)).parse(input)
}

/// An optional Telegram `@bot` suffix (whose bot it is is decided by the caller).
fn bot_suffix(input: &str) -> PResult<'_, Option<&str>> {
    opt(preceded(char('@'), take_while1(is_bot_char))).parse(input)
}

/// The word (with its bot) ends at the end of text, whitespace or `:` (consumes nothing):
/// `/models`, `/model/x`, `/model@` and `/model@Bot-x` are not directives.
fn word_end(input: &str) -> PResult<'_, &str> {
    peek(alt((
        eof,
        recognize(satisfy(char::is_whitespace)),
        tag(":"),
    )))
    .parse(input)
}

/// The `:` of `/model:opus` and `/new: hello`.
fn colon(input: &str) -> PResult<'_, Option<char>> {
    opt(char(':')).parse(input)
}

/// The `/model` argument, after spaces on the same line.
fn argument(input: &str) -> PResult<'_, &str> {
    preceded(take_while(is_inline_space), token).parse(input)
}

/// One argument token; trailing `.` and `:` are punctuation of the sentence, not the token.
fn token(input: &str) -> PResult<'_, &str> {
    let (_, raw) = take_while1(is_token_char)(input)?;
    let token = raw.trim_end_matches(['.', ':']);
    if token.is_empty() {
        return Err(nom::Err::Error(()));
    }
    Ok((&input[token.len()..], token))
}

fn classify_word<'a>(word: &'a str, aliases: &BTreeSet<String>) -> Option<Word<'a>> {
    // Built-in words win over an alias of the same name.
    if let Some((_, builtin)) = COMMAND_WORDS
        .iter()
        .find(|(name, _)| word.eq_ignore_ascii_case(name))
    {
        return Some(*builtin);
    }
    // `/<alias>` means `/model <alias>`, so an alias shortcut must read back as that
    // argument: token characters only, not ending in `.`.
    if aliases.is_empty() || !word.chars().all(is_token_char) || word.ends_with('.') {
        return None;
    }
    let known = if word.bytes().any(|b| b.is_ascii_uppercase()) {
        aliases.contains(&word.to_ascii_lowercase())
    } else {
        aliases.contains(word)
    };
    known.then_some(Word::Alias(word))
}

/// Characters of a command word: it runs up to whitespace, `:` or `@`.
fn is_word_char(c: char) -> bool {
    !c.is_whitespace() && c != ':' && c != '@'
}

/// Telegram bot usernames.
fn is_bot_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// `[A-Za-z0-9_.:@/-]`
pub(super) fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '@' | '/' | '-')
}

/// Whitespace between `/model` and its argument: any Unicode whitespace except line breaks
/// (a line break ends the directive).
fn is_inline_space(c: char) -> bool {
    c.is_whitespace()
        && !matches!(
            c,
            '\n' | '\r' | '\u{0B}' | '\u{0C}' | '\u{85}' | '\u{2028}' | '\u{2029}'
        )
}
