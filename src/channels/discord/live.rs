//! Writing a reply into Discord (DESIGN §10): the [`Surface`]s the streaming presenter
//! drives. Discord gets the model's Markdown as it is, cut at 2000 characters with code
//! fences kept whole (`channels::chunk`). A channel message is posted, then edited; a
//! slash command's deferred response is edited in place, and the text past its limit
//! continues in follow-ups, edited the same way. Rate limits are honoured by `rest`.

use super::rest::{Rest, SendError};
use crate::channels::chunk;
use crate::channels::stream::{Failure, Mode, Style, Surface};
use crate::config::{DiscordConfig, Streaming};
use serenity::all::{ApplicationId, ChannelId, Http, MessageId};
use std::time::Duration;

/// How this channel shows replies (`streaming`, `streamIntervalMs`).
pub(super) fn style(cfg: &DiscordConfig) -> Style {
    Style {
        mode: match cfg.streaming {
            Streaming::Off => None,
            Streaming::Edit | Streaming::Draft => Some(Mode::Edit),
        },
        interval: crate::config::types::stream_interval(cfg.stream_interval_ms),
    }
}

/// `text` as Discord Markdown that shows it exactly as written: the characters that
/// format anywhere (`\ * _ ~ | ` [ ]`) and those that start a quote, heading or list
/// at the start of a line are escaped with a backslash, which Discord does not show.
pub(super) fn literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for (n, line) in text.split('\n').enumerate() {
        if n > 0 {
            out.push('\n');
        }
        let body = line.trim_start_matches([' ', '\t']);
        out.push_str(&line[..line.len() - body.len()]);
        // A line's first mark: `>`, `#`, `-` or `+` (quote, heading, list).
        if body.starts_with(['>', '#', '-', '+']) {
            out.push('\\');
        }
        // A numbered list item: `1.` becomes `1\.`.
        let digits: String = body.chars().take_while(char::is_ascii_digit).collect();
        if !digits.is_empty() && body[digits.len()..].starts_with(". ") {
            out.push_str(&digits);
            out.push_str("\\.");
            out.push_str(&escape_inline(&body[digits.len() + 1..]));
            continue;
        }
        out.push_str(&escape_inline(body));
    }
    out
}

fn escape_inline(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | '*' | '_' | '~' | '|' | '`' | '[' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A `rest` error as the presenter sees it.
fn failure(e: SendError) -> Failure {
    match e {
        // `rest` already waited through the 429s it was allowed to.
        SendError::StillLimited => Failure::RetryAfter(Duration::from_secs(1)),
        other => Failure::Refused(other.to_string()),
    }
}

/// A reply posted in a channel (DM or guild).
pub(super) struct ChannelReply<'a> {
    pub rest: &'a Rest,
    pub http: &'a Http,
    pub channel: ChannelId,
}

impl Surface for ChannelReply<'_> {
    type Id = MessageId;

    fn parts(&self, text: &str) -> Vec<String> {
        chunk::split(text, chunk::DISCORD)
    }

    fn literal_parts(&self, text: &str) -> Vec<String> {
        chunk::split(&literal(text), chunk::DISCORD)
    }

    fn literal_markdown(&self, text: &str) -> String {
        literal(text)
    }

    async fn send(&self, _index: usize, part: &str) -> Result<MessageId, Failure> {
        self.rest
            .post_message(self.http, self.channel, part)
            .await
            .map_err(failure)
    }

    async fn edit(&self, id: &MessageId, part: &str) -> Result<(), Failure> {
        self.rest
            .edit_message(self.http, self.channel, *id, part)
            .await
            .map_err(failure)
    }

    async fn delete(&self, id: &MessageId) -> Result<(), Failure> {
        self.rest
            .delete_message(self.http, self.channel, *id)
            .await
            .map_err(failure)
    }
}

/// Which message of a slash command's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Target {
    /// The deferred ("thinking…") original response.
    Original,
    Followup(MessageId),
}

/// The answer to a slash command: its deferred response, then follow-ups.
pub(super) struct InteractionReply<'a> {
    pub rest: &'a Rest,
    pub http: &'a Http,
    pub application_id: ApplicationId,
    pub token: &'a str,
    pub ephemeral: bool,
}

impl Surface for InteractionReply<'_> {
    type Id = Target;

    fn parts(&self, text: &str) -> Vec<String> {
        chunk::split(text, chunk::DISCORD)
    }

    fn literal_parts(&self, text: &str) -> Vec<String> {
        chunk::split(&literal(text), chunk::DISCORD)
    }

    fn literal_markdown(&self, text: &str) -> String {
        literal(text)
    }

    async fn send(&self, index: usize, part: &str) -> Result<Target, Failure> {
        if index == 0 {
            self.rest
                .edit_original(self.http, self.application_id, self.token, part)
                .await
                .map_err(failure)?;
            return Ok(Target::Original);
        }
        self.rest
            .followup(
                self.http,
                self.application_id,
                self.token,
                part,
                self.ephemeral,
            )
            .await
            .map(Target::Followup)
            .map_err(failure)
    }

    async fn edit(&self, id: &Target, part: &str) -> Result<(), Failure> {
        let done = match id {
            Target::Original => {
                self.rest
                    .edit_original(self.http, self.application_id, self.token, part)
                    .await
            }
            Target::Followup(m) => {
                self.rest
                    .edit_followup(self.http, self.application_id, self.token, *m, part)
                    .await
            }
        };
        done.map_err(failure)
    }

    async fn delete(&self, id: &Target) -> Result<(), Failure> {
        match id {
            // The deferred response holds the reply's first part: never one to remove.
            Target::Original => Err(Failure::Refused(
                "the first part of a slash command's answer stays".into(),
            )),
            Target::Followup(m) => self
                .rest
                .delete_followup(self.http, self.application_id, self.token, *m)
                .await
                .map_err(failure),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::literal;

    #[test]
    fn literal_text_escapes_what_discord_would_format() {
        let cases = [
            (
                r#"Model "__secret__" is not allowed"#,
                r#"Model "\_\_secret\_\_" is not allowed"#,
            ),
            (
                "a *b* ~~c~~ ||d|| `e` [f](g)",
                r"a \*b\* \~\~c\~\~ \|\|d\|\| \`e\` \[f\](g)",
            ),
            (
                "> quote\n# head\n  - item\n+ plus",
                "\\> quote\n\\# head\n  \\- item\n\\+ plus",
            ),
            ("\t- tabbed", "\t\\- tabbed"),
            (
                "1. first\n10. tenth\n3.5 is fine",
                "1\\. first\n10\\. tenth\n3.5 is fine",
            ),
            (r"back\slash", r"back\\slash"),
            (
                "plain text: anthropic:work, gpt-4o-mini (mini)",
                "plain text: anthropic:work, gpt-4o-mini (mini)",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(literal(text), want, "{text}");
        }
    }
}
