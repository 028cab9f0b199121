//! Mentions of the bot (`@BotName`) in a message's text: whether a group message is
//! addressed to the bot, and the text as the model should see it — exactly as written
//! (newlines, indentation, spacing; DESIGN §8) with only the mention taken out. Pure.

use std::ops::Range;

/// Telegram usernames are `[A-Za-z0-9_]`; a mention ends where such characters end.
fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Byte ranges of every `@bot` (ASCII case-insensitive) that no word character
/// follows, with whether it also stands alone on its left (start, blank or
/// punctuation — not `/cmd@bot`, not `me@bot`).
fn occurrences(text: &str, bot: &str) -> Vec<(Range<usize>, bool)> {
    let (bytes, name) = (text.as_bytes(), bot.as_bytes());
    if name.is_empty() {
        return Vec::new();
    }
    let mut found = Vec::new();
    for (at, _) in text.match_indices('@') {
        let end = at + 1 + name.len();
        let Some(candidate) = bytes.get(at + 1..end) else {
            break;
        };
        // `candidate` equals the (ASCII) name ignoring case, so `end` is a char boundary.
        if !candidate.eq_ignore_ascii_case(name) || !text.is_char_boundary(end) {
            continue;
        }
        if text[end..].chars().next().is_some_and(is_word) {
            continue;
        }
        let alone = text[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !is_word(c) && c != '@' && c != '/');
        found.push((at..end, alone));
    }
    found
}

/// Whether the text speaks to the bot: a mention of it, or a `/command@BotName`.
pub fn addresses(text: &str, bot: &str) -> bool {
    !occurrences(text, bot).is_empty()
}

/// The text without the standalone `@BotName` mentions (not `/cmd@BotName`, which
/// the directive parser handles), as [`crate::channels::without_mentions`] takes them
/// out.
pub fn strip_mention(text: &str, bot: &str) -> String {
    let spans = occurrences(text, bot)
        .into_iter()
        .filter(|(_, alone)| *alone)
        .map(|(range, _)| range);
    crate::channels::without_mentions(text, spans)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_mention_and_the_blanks_it_leaves_are_removed() {
        let cases = [
            ("@MyBot  what is rust?", "what is rust?"),
            ("/model@MyBot list", "/model@MyBot list"),
            ("hey @mybot what", "hey what"),
            ("hey  @MYBOT   what  now", "hey  what  now"),
            (
                "@MyBot fix:\n\n    fn main() {\n\tx();  // two\n    }\n",
                "fix:\n\n    fn main() {\n\tx();  // two\n    }",
            ),
            ("@MyBot\n    indented", "    indented"),
            ("look  at   this @MyBot\nnext", "look  at   this\nnext"),
            ("look @MyBot  \r\nnext", "look\r\nnext"),
            ("@MyBotX hi", "@MyBotX hi"),
            ("mail me@mybot.com", "mail me@mybot.com"),
            ("@MyBot, what now?", "what now?"),
            ("line one\n  @MyBot: two", "line one\n  two"),
            ("a @MyBot @MyBot b", "a b"),
            ("héllo @MyBot wörld", "héllo wörld"),
            ("(@MyBot) hi", "() hi"),
            ("@MyBot", ""),
            ("no mention at all\n\n  kept", "no mention at all\n\n  kept"),
            ("@", "@"),
            ("ü@MyBot", "ü@MyBot"),
        ];
        for (input, want) in cases {
            assert_eq!(strip_mention(input, "MyBot"), want, "{input:?}");
        }
    }

    #[test]
    fn a_message_addresses_the_bot_by_mention_or_command() {
        assert!(addresses("hi @mybot", "MyBot"));
        assert!(addresses("/model@MyBot list", "MyBot"));
        assert!(!addresses("hi @MyBotter", "MyBot"));
        assert!(!addresses("hi there", "MyBot"));
        assert!(!addresses("@MyBo", "MyBot"));
    }
}
