//! Chat commands (DESIGN §4): the pure parser that finds the first directive in a message
//! (`/model …`, `/new`, `/reset`, `/help`, `/<alias>`) and the command manifest in `commands/`.
//!
//! Owns: the [`Directive`] type and its canonical text, [`parse`] (scan for a candidate `/`,
//! run the nom grammar there, build the remaining text), the `model@profile` split and the
//! [`spec`] of the command surface. Does not own: what a directive *does* (the session layer
//! applies it), who may pin a profile (channel policy), or resolving aliases to models (the
//! catalog). No I/O, no config: everything the parser needs comes in a [`ParseContext`].

mod grammar;
pub mod spec;
mod split;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::fmt;

use grammar::{Candidate, Word};
pub use split::split_model_profile;

/// Whether `word` (lower case) is a built-in chat command (`/model`, `/new`, `/usage`, …):
/// such a word can never be an alias.
pub fn is_command_word(word: &str) -> bool {
    grammar::COMMAND_WORDS.iter().any(|(w, _)| *w == word)
}

/// A parsed chat command.
///
/// `Display` gives the canonical text (`/model`, `/model list`, `/model <model>@<profile>`,
/// `/new`, …). Every value that [`parse`] returns prints as text that parses back to the same
/// value. A hand-built [`Directive::ModelSelect`] is printed verbatim as
/// `/model {model}` (`/model {model}@` when it ends in `.` or `:`) or
/// `/model {model}@{profile}`: chat has no escape syntax, so such a value
/// reads back unchanged only if that text is one argument token and
/// [`split_model_profile`] splits it at the same `@` (a profile such as `1234` or `v2`, or a
/// model with an undated `@` after its last `/`, would read back differently).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Directive {
    /// `/model`: compact view of the session's model and pin.
    ModelShow,
    /// `/model list`
    ModelList,
    /// `/model status`
    ModelStatus,
    /// `/model default`
    ModelDefault,
    /// `/model opus`, `/model opus@anthropic:work`, or the alias shortcut `/opus`
    /// (then `model` is the alias as typed and `profile` is `None`). Text is kept as typed.
    ModelSelect {
        model: String,
        profile: Option<String>,
    },
    /// `/new`
    New,
    /// `/reset`
    Reset,
    /// `/help`
    Help,
    /// `/usage`: the session's token totals.
    Usage,
}

impl fmt::Display for Directive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ModelShow => f.write_str("/model"),
            Self::ModelList => f.write_str("/model list"),
            Self::ModelStatus => f.write_str("/model status"),
            Self::ModelDefault => f.write_str("/model default"),
            // A trailing `.` or `:` would read back as the sentence's punctuation: the
            // empty profile side (`opus:@`, which is how such a model was typed) keeps it.
            Self::ModelSelect {
                model,
                profile: None,
            } if model.ends_with(['.', ':']) => write!(f, "/model {model}@"),
            Self::ModelSelect {
                model,
                profile: None,
            } => write!(f, "/model {model}"),
            Self::ModelSelect {
                model,
                profile: Some(profile),
            } => write!(f, "/model {model}@{profile}"),
            Self::New => f.write_str("/new"),
            Self::Reset => f.write_str("/reset"),
            Self::Help => f.write_str("/help"),
            Self::Usage => f.write_str("/usage"),
        }
    }
}

/// What the parser needs from its surroundings (pure: no config or I/O inside).
#[derive(Debug, Clone, Copy)]
pub struct ParseContext<'a> {
    /// This bot's username (Telegram), without '@'. `None` = there is no bot name here
    /// (terminal, web chat, HTTP API): an `@suffix` on a command is answered with an error
    /// that suggests the right form.
    pub bot_username: Option<&'a str>,
    /// Configured aliases, lower-cased (for `/<alias>` shortcuts).
    pub aliases: &'a BTreeSet<String>,
}

/// The outcome of [`parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// No directive: send the text as it is.
    Plain,
    /// A command addressed to another bot (`/model@OtherBot`): ignore the whole message.
    NotForUs,
    /// `rest` = the message with the directive and the blanks around it removed, the
    /// rest kept as written (may be empty; see [`tidy`]). `start..end` are the byte offsets of the directive (argument included).
    Directive {
        directive: Directive,
        start: usize,
        end: usize,
        rest: String,
    },
    /// A malformed directive: reply with `error` (its Display), do not run a turn.
    Error { error: DirectiveError, rest: String },
}

/// A directive that was recognised but cannot be applied. `Display` is the reply to send.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectiveError {
    /// `/model status@x`, `/model list@work`, `/model default@p`
    #[error("\"{input}\": a profile override needs a model, e.g. /model opus@{profile}")]
    ProfileNeedsModel {
        input: String,
        profile: String,
        offset: usize,
    },
    /// `/model 3`, `/model 12@work`
    #[error(
        "\"{input}\": there is no numeric model picker in chat; use /model list and then /model <alias-or-id>"
    )]
    NumericModel { input: String, offset: usize },
    /// `/opus@work` or `/model@Bot` where there is no bot name (terminal, web, HTTP).
    #[error(
        "\"{input}\": an @suffix after a command names a bot, and there is none here; did you mean {hint}?"
    )]
    SuffixHere {
        input: String,
        hint: String,
        offset: usize,
    },
}

impl DirectiveError {
    /// Byte offset of the offending argument in the original message.
    #[must_use]
    pub fn offset(&self) -> usize {
        match self {
            Self::ProfileNeedsModel { offset, .. }
            | Self::NumericModel { offset, .. }
            | Self::SuffixHere { offset, .. } => *offset,
        }
    }
}

/// Find and interpret the first directive in `text` (DESIGN §4).
///
/// Never panics. A message without any `/` returns [`Parsed::Plain`] after one `memchr`.
#[must_use]
pub fn parse(text: &str, ctx: &ParseContext<'_>) -> Parsed {
    let bytes = text.as_bytes();
    // Fast path (memchr): most messages have no `/` at all.
    if memchr::memchr(b'/', bytes).is_none() {
        return Parsed::Plain;
    }
    let mut from = 0;
    // `/` is ASCII, so every index found is a char boundary.
    while let Some(found) = bytes[from..].iter().position(|&b| b == b'/') {
        let start = from + found;
        from = start + 1;
        // A command word stands at the start of the message or right after whitespace.
        let at_word_start = text[..start]
            .chars()
            .next_back()
            .is_none_or(char::is_whitespace);
        if !at_word_start {
            continue;
        }
        let Some(candidate) = grammar::candidate(&text[start..], ctx.aliases) else {
            continue;
        };
        let end = start + candidate.len;
        if let (Some(bot), None) = (candidate.bot, ctx.bot_username) {
            // No bot name here (terminal, web chat, HTTP API): nothing can be addressed
            // to another bot, so the suffix is a mistake worth explaining. Quote it as
            // typed, to the next space: in `/sonnet@anthropic:work` the grammar's bot name
            // stops at the `:`, the user's profile id does not.
            let typed_end = end.max(
                start
                    + text[start..]
                        .find(char::is_whitespace)
                        .unwrap_or(text.len() - start),
            );
            let typed = &text[start..typed_end];
            let hint = match candidate.word {
                grammar::Word::Alias(alias) => {
                    let suffix = typed.split_once('@').map_or(bot, |(_, s)| s);
                    format!("/model {alias}@{suffix}")
                }
                _ => typed.replacen(&format!("@{bot}"), "", 1),
            };
            return Parsed::Error {
                error: DirectiveError::SuffixHere {
                    input: typed.to_owned(),
                    hint,
                    offset: start,
                },
                rest: rest_of(text, start, typed_end),
            };
        }
        if candidate
            .bot
            .is_some_and(|bot| !is_our_bot(bot, ctx.bot_username))
        {
            return Parsed::NotForUs;
        }
        let rest = rest_of(text, start, end);
        return match interpret(&candidate, start) {
            Ok(directive) => Parsed::Directive {
                directive,
                start,
                end,
                rest,
            },
            Err(error) => Parsed::Error { error, rest },
        };
    }
    Parsed::Plain
}

fn is_our_bot(bot: &str, ours: Option<&str>) -> bool {
    ours.is_some_and(|ours| {
        let ours = ours.strip_prefix('@').unwrap_or(ours);
        bot.eq_ignore_ascii_case(ours)
    })
}

/// Turn a grammatical candidate into a directive; `start` is the byte offset of its `/`.
fn interpret(candidate: &Candidate<'_>, start: usize) -> Result<Directive, DirectiveError> {
    match candidate.word {
        Word::New => Ok(Directive::New),
        Word::Reset => Ok(Directive::Reset),
        Word::Help => Ok(Directive::Help),
        Word::Usage => Ok(Directive::Usage),
        Word::Model => match candidate.arg {
            None => Ok(Directive::ModelShow),
            Some((arg, offset)) => model_argument(arg, start + offset),
        },
        // `/<alias>` is `/model <alias>`: the same keyword and numeric rules apply.
        Word::Alias(alias) => model_argument(alias, start + 1),
    }
}

/// Interpret the argument of `/model`; `offset` is its byte offset in the message.
///
/// Keywords and the numeric check look at the text before the first `@`, so `status@1234`
/// and `12@20251001` are errors even though the split rules would not split them.
fn model_argument(arg: &str, offset: usize) -> Result<Directive, DirectiveError> {
    const KEYWORDS: [(&str, Directive); 3] = [
        ("list", Directive::ModelList),
        ("status", Directive::ModelStatus),
        ("default", Directive::ModelDefault),
    ];
    let bytes = arg.as_bytes();
    // Only prefixes are inspected, so a long argument is not scanned here.
    for (word, keyword) in KEYWORDS {
        let head_is_word = bytes
            .get(..word.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(word.as_bytes()));
        if !head_is_word || !matches!(bytes.get(word.len()), None | Some(b'@')) {
            continue;
        }
        let profile = arg.get(word.len() + 1..).unwrap_or("");
        if profile.is_empty() {
            // `status` or `status@` (an empty profile side is no profile).
            return Ok(keyword);
        }
        return Err(DirectiveError::ProfileNeedsModel {
            input: arg.to_owned(),
            profile: profile.to_owned(),
            offset,
        });
    }
    let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits > 0 && matches!(bytes.get(digits), None | Some(b'@')) {
        return Err(DirectiveError::NumericModel {
            input: arg.to_owned(),
            offset,
        });
    }
    let (model, profile) = split_model_profile(arg);
    Ok(Directive::ModelSelect {
        model: model.to_owned(),
        profile: profile.map(str::to_owned),
    })
}

/// The message without `start..end`, whitespace runs collapsed to one space, trimmed.
///
/// The directive starts at the message start or after whitespace, so the text before it
/// and the text after it are always separate words.
fn rest_of(text: &str, start: usize, end: usize) -> String {
    let before_raw = text[..start].trim_end();
    let broke_before = text[before_raw.len()..start].contains('\n');
    // The separator after the directive: blanks up to and including one line break.
    let after_raw = &text[end..];
    let blanks = after_raw.trim_start_matches(|c: char| c.is_whitespace() && c != '\n');
    let (after_raw, broke_after) = match blanks.strip_prefix('\n') {
        Some(a) => (a, true),
        None => (blanks, false),
    };
    let (before, after) = (tidy(before_raw), tidy(after_raw));
    let sep = if broke_before || broke_after {
        "\n"
    } else {
        " "
    };
    match (before.is_empty(), after.is_empty()) {
        (true, true) => String::new(),
        (false, true) => before.to_string(),
        (true, false) => after.to_string(),
        (false, false) => [before, sep, after].concat(),
    }
}

/// A message as the model should see it: exactly as written (newlines, indentation and
/// spacing kept, DESIGN §8) except for blank lines at the start and whitespace at the end.
#[must_use]
pub fn tidy(text: &str) -> &str {
    let mut t = text.trim_end();
    // Drop leading lines that are blank, but keep the indentation of the first real line.
    while let Some(nl) = t.find('\n') {
        if t[..nl].trim().is_empty() {
            t = &t[nl + 1..];
        } else {
            break;
        }
    }
    if t.trim().is_empty() { "" } else { t }
}
