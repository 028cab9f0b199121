//! Who may talk to the bot on Telegram, and in which session: `dmPolicy`, `allowFrom`,
//! pairing approvals, allowed groups and mention rules, forum topics. Pure apart from
//! the pairing lookup passed in.

use crate::config::{DmPolicy, TelegramConfig};
use crate::session::key;
use teloxide::types::Message;

/// Owners (`owners`, else `allowFrom`) may pin credential profiles.
pub fn is_owner(cfg: &TelegramConfig, user: i64) -> bool {
    cfg.owners
        .as_ref()
        .unwrap_or(&cfg.allow_from)
        .contains(&user)
}

/// Whether a message is meant for the bot, and as whom it is spoken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// Process it in this session; `owner` may pin profiles.
    Allowed {
        session: String,
        owner: bool,
    },
    /// An unknown DM sender under `dmPolicy = "pairing"`.
    NeedsPairing,
    Ignored,
}

/// Decide access for one message (pure apart from the pairing lookup passed in).
pub fn access(
    cfg: &TelegramConfig,
    bot_username: &str,
    bot_id: u64,
    msg: &Message,
    approved: impl Fn(i64) -> bool,
) -> Access {
    let Some(from) = msg.from.as_ref() else {
        return Access::Ignored;
    };
    if from.is_bot {
        return Access::Ignored;
    }
    let user = i64::try_from(from.id.0).unwrap_or(i64::MAX);
    let owner = is_owner(cfg, user);
    if msg.chat.is_private() {
        let allowed = cfg
            .dm_policy
            .admits(cfg.allow_from.contains(&user), || approved(user));
        return match (allowed, cfg.dm_policy) {
            (true, _) => Access::Allowed {
                session: key::telegram_dm(user),
                owner,
            },
            (false, DmPolicy::Pairing) => Access::NeedsPairing,
            _ => Access::Ignored,
        };
    }
    if !cfg.groups.contains(&msg.chat.id.0) {
        return Access::Ignored;
    }
    if cfg.require_mention {
        let text = msg.text().unwrap_or_default().to_lowercase();
        let handle = format!("@{}", bot_username.to_lowercase());
        let mentioned = text.contains(&handle);
        let replied_to_bot = msg
            .reply_to_message()
            .and_then(|m| m.from.as_ref())
            .is_some_and(|u| u.id.0 == bot_id);
        if !mentioned && !replied_to_bot {
            return Access::Ignored;
        }
    }
    let thread = if msg.is_topic_message {
        msg.thread_id.map(|t| i64::from(t.0.0))
    } else {
        None
    };
    Access::Allowed {
        session: key::telegram_group(msg.chat.id.0, thread),
        owner,
    }
}

/// Remove a plain `@BotName` mention (not `/cmd@BotName`, which the parser handles).
pub fn strip_mention(text: &str, bot_username: &str) -> String {
    let handle = format!("@{bot_username}");
    text.split_whitespace()
        .filter(|w| !w.eq_ignore_ascii_case(&handle))
        .collect::<Vec<_>>()
        .join(" ")
}
