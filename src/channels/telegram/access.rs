//! Who may talk to the bot on Telegram, and in which session: `dmPolicy`, `allowFrom`,
//! pairing approvals, allowed groups with `groupPolicy`/`groupAllowFrom` and mention
//! rules, forum topics (DESIGN §8 "Who may talk, in groups"). Pure: the pairing
//! approval is looked up by the caller (off the runtime threads) and passed in, and
//! only when [`approval_needed`] says the decision depends on it.

use super::mention;
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

fn sender(msg: &Message) -> Option<i64> {
    msg.from
        .as_ref()
        .filter(|u| !u.is_bot)
        .map(|u| i64::try_from(u.id.0).unwrap_or(i64::MAX))
}

/// The sender whose pairing approval decides this message (a DM from someone not in
/// `allowFrom` under `dmPolicy = "pairing"`); `None` when no lookup is needed.
pub fn approval_needed(cfg: &TelegramConfig, msg: &Message) -> Option<i64> {
    let user = sender(msg)?;
    (msg.chat.is_private() && cfg.dm_policy == DmPolicy::Pairing && !cfg.allow_from.contains(&user))
        .then_some(user)
}

/// Decide access for one message; `approved` = the sender has a pairing approval
/// (only read when [`approval_needed`] named the sender).
pub fn access(
    cfg: &TelegramConfig,
    bot_username: &str,
    bot_id: u64,
    msg: &Message,
    approved: bool,
) -> Access {
    let Some(user) = sender(msg) else {
        return Access::Ignored;
    };
    let owner = is_owner(cfg, user);
    if msg.chat.is_private() {
        let allowed = cfg
            .dm_policy
            .admits(cfg.allow_from.contains(&user), || approved);
        return match (allowed, cfg.dm_policy) {
            (true, _) => Access::Allowed {
                session: key::telegram_dm(user),
                owner,
            },
            (false, DmPolicy::Pairing) => Access::NeedsPairing,
            _ => Access::Ignored,
        };
    }
    // Groups: an allowed group, a sender the group policy admits (unknown senders get
    // no reply at all), and — unless turned off — a mention or a reply to the bot.
    if !cfg.groups.contains(&msg.chat.id.0) || !cfg.group_admits(user) {
        return Access::Ignored;
    }
    if cfg.require_mention {
        let text = msg.text().or_else(|| msg.caption()).unwrap_or_default();
        let mentioned = mention::addresses(text, bot_username);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::GroupPolicy;

    const BOT: &str = "MyBot";

    fn message(chat: serde_json::Value, from: i64, text: &str) -> Message {
        serde_json::from_value(serde_json::json!({
            "message_id": 5,
            "date": 1_700_000_000,
            "chat": chat,
            "from": {"id": from, "is_bot": false, "first_name": "U"},
            "text": text,
        }))
        .unwrap()
    }

    fn dm(from: i64) -> Message {
        message(
            serde_json::json!({"id": from, "type": "private", "first_name": "U"}),
            from,
            "hi",
        )
    }

    fn group(from: i64, text: &str) -> Message {
        message(
            serde_json::json!({"id": -100_777, "type": "supergroup", "title": "G"}),
            from,
            text,
        )
    }

    fn cfg(policy: GroupPolicy, group_allow_from: Option<Vec<i64>>) -> TelegramConfig {
        TelegramConfig {
            allow_from: vec![1],
            groups: vec![-100_777],
            group_policy: policy,
            group_allow_from,
            ..TelegramConfig::default()
        }
    }

    fn allowed(a: &Access) -> bool {
        matches!(a, Access::Allowed { .. })
    }

    #[test]
    fn group_policy_and_group_allow_from_decide_who_talks_in_groups() {
        let text = "@mybot hello";
        // (policy, groupAllowFrom, sender, answered)
        let cases = [
            (GroupPolicy::Allowlist, None, 1, true),
            (GroupPolicy::Allowlist, None, 2, false),
            (GroupPolicy::Allowlist, Some(vec![2]), 2, true),
            (GroupPolicy::Allowlist, Some(vec![2]), 1, false),
            (GroupPolicy::Open, None, 2, true),
            (GroupPolicy::Disabled, None, 1, false),
            (GroupPolicy::Disabled, Some(vec![1]), 1, false),
        ];
        for (policy, list, from, want) in cases {
            let got = access(
                &cfg(policy, list.clone()),
                BOT,
                9,
                &group(from, text),
                false,
            );
            assert_eq!(
                allowed(&got),
                want,
                "{policy:?} {list:?} sender {from}: {got:?}"
            );
        }
        let other_group = message(
            serde_json::json!({"id": -100_888, "type": "supergroup", "title": "H"}),
            1,
            text,
        );
        let open = cfg(GroupPolicy::Open, None);
        assert_eq!(access(&open, BOT, 9, &other_group, false), Access::Ignored);
        assert_eq!(
            access(&open, BOT, 9, &group(1, "@MyBotter hello"), false),
            Access::Ignored,
            "a longer name is not a mention"
        );
    }

    #[test]
    fn the_pairing_approval_is_needed_only_for_unlisted_dm_senders() {
        let c = cfg(GroupPolicy::Allowlist, None);
        assert_eq!(approval_needed(&c, &dm(1)), None, "listed");
        assert_eq!(approval_needed(&c, &dm(2)), Some(2));
        assert_eq!(approval_needed(&c, &group(2, "@MyBot hi")), None);
        let allowlist = TelegramConfig {
            dm_policy: DmPolicy::Allowlist,
            ..c.clone()
        };
        assert_eq!(approval_needed(&allowlist, &dm(2)), None);
        assert_eq!(access(&c, BOT, 9, &dm(2), false), Access::NeedsPairing);
        assert!(allowed(&access(&c, BOT, 9, &dm(2), true)));
        assert_eq!(access(&allowlist, BOT, 9, &dm(2), true), Access::Ignored);
    }
}
