//! The chat command surface as data: `commands/*.toml`, embedded at build time and parsed
//! once. Rendered into Telegram `setMyCommands`, Discord application commands and the `/help`
//! reply. Owns the manifest schema and the help text; no behaviour (that is in the parser and
//! the session layer), no platform payloads (the channel adapters build those from this).

use std::sync::LazyLock;

use serde::Deserialize;

/// One chat command, as declared in `commands/<name>.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandSpec {
    /// The command word without `/` (`model`).
    pub name: String,
    /// One line, at most 100 characters (Discord's limit).
    pub description: String,
    /// Usage lines for the help text (`/model list — …`).
    pub usage: Vec<String>,
    /// Options of the slash command (Discord); empty for commands without an argument.
    #[serde(default)]
    pub options: Vec<OptionSpec>,
}

/// One option of a slash command.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptionSpec {
    pub name: String,
    pub description: String,
    #[serde(default)]
    pub required: bool,
    pub kind: OptionKind,
}

/// The value type of an option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptionKind {
    /// Free text (Discord option type 3).
    String,
}

/// The manifests, in the order they are shown: `(file name, contents)`.
const MANIFESTS: [(&str, &str); 5] = [
    ("model.toml", include_str!("../../commands/model.toml")),
    ("new.toml", include_str!("../../commands/new.toml")),
    ("reset.toml", include_str!("../../commands/reset.toml")),
    ("help.toml", include_str!("../../commands/help.toml")),
    ("usage.toml", include_str!("../../commands/usage.toml")),
];

static COMMANDS: LazyLock<Vec<CommandSpec>> = LazyLock::new(|| match load() {
    Ok(commands) => commands,
    Err(error) => {
        // A broken manifest is a programming error that `tests::manifests_parse` catches.
        tracing::error!(%error, "chat command manifest does not parse; no commands registered");
        Vec::new()
    }
});

/// Every chat command, in manifest order (empty if a manifest is broken; see the log).
#[must_use]
pub fn commands() -> &'static [CommandSpec] {
    &COMMANDS
}

/// The reply to `/help`: every command with its description and usage lines.
#[must_use]
pub fn help_text() -> String {
    let mut text = String::from("Chat commands:\n");
    for command in commands() {
        text.push_str(&format!("\n/{} — {}\n", command.name, command.description));
        for line in &command.usage {
            text.push_str("  ");
            text.push_str(line);
            text.push('\n');
        }
    }
    text.push_str("\nA command may be followed by a message, which is sent after it is applied.\n");
    text
}

/// A manifest that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("commands/{file}: {source}")]
struct ManifestError {
    file: &'static str,
    source: toml::de::Error,
}

fn load() -> Result<Vec<CommandSpec>, ManifestError> {
    MANIFESTS
        .iter()
        .map(|&(file, text)| toml::from_str(text).map_err(|source| ManifestError { file, source }))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directive::grammar::COMMAND_WORDS;
    use crate::directive::{ParseContext, Parsed, parse};
    use std::collections::BTreeSet;

    #[test]
    fn manifests_parse() {
        let loaded = load().unwrap();
        assert_eq!(loaded.len(), MANIFESTS.len());
        assert_eq!(commands(), loaded.as_slice());
    }

    #[test]
    fn file_name_is_command_name() {
        for ((file, _), command) in MANIFESTS.iter().zip(commands()) {
            assert_eq!(*file, format!("{}.toml", command.name));
        }
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let text = "name = \"x\"\ndescription = \"d\"\nusage = []\naliases = [\"y\"]\n";
        assert!(toml::from_str::<CommandSpec>(text).is_err());
        let text = "name = \"x\"\ndescription = \"d\"\nusage = []\n[[options]]\nname = \"a\"\n\
                    description = \"b\"\nkind = \"string\"\nchoices = []\n";
        assert!(toml::from_str::<CommandSpec>(text).is_err());
    }

    #[test]
    fn every_manifest_command_is_parsed() {
        let aliases = BTreeSet::new();
        let ctx = ParseContext {
            bot_username: Some("OurBot"),
            aliases: &aliases,
        };
        for command in commands() {
            for text in [
                format!("/{}", command.name),
                format!("/{}@OurBot", command.name),
                format!("hi /{}", command.name.to_uppercase()),
            ] {
                assert!(
                    matches!(parse(&text, &ctx), Parsed::Directive { .. }),
                    "{text:?} is not parsed as a directive"
                );
            }
        }
    }

    #[test]
    fn every_parser_word_has_a_manifest() {
        for (word, _) in COMMAND_WORDS {
            assert!(
                commands().iter().any(|command| command.name == word),
                "command word {word:?} has no commands/{word}.toml"
            );
        }
        assert_eq!(commands().len(), COMMAND_WORDS.len());
    }

    /// Telegram `BotCommand`: command 1-32 chars of `[a-z0-9_]`, description 1-256 chars.
    #[test]
    fn telegram_limits() {
        for command in commands() {
            let name = &command.name;
            assert!((1..=32).contains(&name.len()), "{name}");
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{name}"
            );
            let chars = command.description.chars().count();
            assert!((1..=256).contains(&chars), "{name}: {chars} chars");
        }
    }

    /// Discord application commands: names 1-32 lower-case chars, descriptions 1-100 chars,
    /// at most 25 options, required options before optional ones.
    #[test]
    fn discord_limits() {
        let name_ok = |name: &str| {
            (1..=32).contains(&name.chars().count())
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        };
        for command in commands() {
            assert!(name_ok(&command.name), "{}", command.name);
            let chars = command.description.chars().count();
            assert!(
                (1..=100).contains(&chars),
                "{}: {chars} chars",
                command.name
            );
            assert!(command.options.len() <= 25);
            let first_optional = command.options.iter().position(|o| !o.required);
            if let Some(first_optional) = first_optional {
                assert!(
                    command.options[first_optional..]
                        .iter()
                        .all(|o| !o.required)
                );
            }
            for option in &command.options {
                assert!(name_ok(&option.name), "{}: {}", command.name, option.name);
                let chars = option.description.chars().count();
                assert!((1..=100).contains(&chars), "{}: {chars} chars", option.name);
            }
        }
    }

    #[test]
    fn usage_lines_start_with_a_command() {
        for command in commands() {
            assert!(!command.usage.is_empty(), "{}", command.name);
            for line in &command.usage {
                assert!(line.starts_with('/'), "{}: {line:?}", command.name);
            }
        }
    }

    #[test]
    fn model_option() {
        let model = commands().iter().find(|c| c.name == "model").unwrap();
        assert_eq!(
            model.options,
            [OptionSpec {
                name: "model".into(),
                description: "alias, provider/model, list, status or default; \
                              add @profileId to pin a credential"
                    .into(),
                required: false,
                kind: OptionKind::String,
            }]
        );
    }

    #[test]
    fn help_text_lists_every_command_and_usage() {
        let help = help_text();
        assert!(help.starts_with("Chat commands:\n"));
        for command in commands() {
            assert!(help.contains(&format!("/{} — {}", command.name, command.description)));
            for line in &command.usage {
                assert!(help.contains(&format!("  {line}\n")), "{line}");
            }
        }
        assert!(help.contains("/model <alias-or-id>@<profileId>"));
    }
}
