//! Who may talk to the bot on Discord (DESIGN "Who may talk, in groups"). Direct
//! messages: `dmPolicy`, `allowFrom` and pairing approvals. Guilds: a message counts in
//! a listed channel, or in an allowed guild when it mentions the bot; a slash command in
//! either; and then only from a sender `groupPolicy` admits (`allowlist`: in
//! `groupAllowFrom`, default `allowFrom`; `open`: anyone; `disabled`: nobody). Owners
//! (default: `allowFrom`) may pin credential profiles. Decisions only; no replies here.

use crate::config::{DiscordConfig, DmPolicy};
use crate::pairing::PairingStore;

/// Where a guild event happened and who sent it.
#[derive(Debug, Clone, Copy)]
pub(super) struct GuildEvent<'a> {
    pub guild: &'a str,
    pub channel: &'a str,
    pub user: &'a str,
}

fn listed_channel(cfg: &DiscordConfig, channel: &str) -> bool {
    cfg.channels.iter().any(|c| c == channel)
}

fn allowed_guild(cfg: &DiscordConfig, guild: &str) -> bool {
    cfg.guilds.iter().any(|g| g == guild)
}

/// A guild message is answered in a listed channel as it is, elsewhere in an allowed
/// guild only when it mentions the bot, and only from a sender `groupPolicy` admits.
pub(super) fn guild_message_admitted(cfg: &DiscordConfig, e: GuildEvent, mentioned: bool) -> bool {
    (listed_channel(cfg, e.channel) || mentioned && allowed_guild(cfg, e.guild))
        && cfg.group_admits(e.user)
}

/// A guild slash command: in a listed channel or an allowed guild, from a sender
/// `groupPolicy` admits.
pub(super) fn guild_command_admitted(cfg: &DiscordConfig, e: GuildEvent) -> bool {
    (listed_channel(cfg, e.channel) || allowed_guild(cfg, e.guild)) && cfg.group_admits(e.user)
}

/// Whether a direct message from `user` is let through. The pairing table is read off
/// the runtime threads, and only when `dmPolicy = "pairing"` and the sender is not listed.
pub(super) async fn dm_admitted(cfg: &DiscordConfig, pairing: &PairingStore, user: &str) -> bool {
    let listed = cfg.allow_from.iter().any(|u| u == user);
    if cfg.dm_policy.admits(listed, || false) {
        return true;
    }
    if cfg.dm_policy != DmPolicy::Pairing {
        return false;
    }
    match pairing.is_approved("discord", user).await {
        Ok(approved) => approved,
        Err(e) => {
            tracing::warn!(
                "Discord: could not read pairing approvals ({e}); the DM is not answered"
            );
            false
        }
    }
}

/// Whether `user` may pin credential profiles.
pub(super) fn is_owner(cfg: &DiscordConfig, user: &str) -> bool {
    cfg.owners
        .as_deref()
        .unwrap_or(&cfg.allow_from)
        .iter()
        .any(|o| o == user)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::GroupPolicy;

    fn cfg(policy: GroupPolicy, group_allow_from: Option<&[&str]>) -> DiscordConfig {
        DiscordConfig {
            guilds: vec!["g1".into()],
            channels: vec!["c-listed".into()],
            allow_from: vec!["alice".into()],
            group_policy: policy,
            group_allow_from: group_allow_from.map(|l| l.iter().map(|s| s.to_string()).collect()),
            ..DiscordConfig::default()
        }
    }

    #[test]
    fn guild_messages_by_place_mention_and_group_policy() {
        use GroupPolicy::*;
        // (policy, groupAllowFrom, guild, channel, user, mentioned) -> answered
        type Case<'a> = (
            GroupPolicy,
            Option<&'a [&'a str]>,
            &'a str,
            &'a str,
            &'a str,
            bool,
            bool,
        );
        let cases: &[Case] = &[
            (Allowlist, None, "g1", "c1", "alice", true, true),
            (Allowlist, None, "g1", "c1", "alice", false, false), // no mention
            (Allowlist, None, "g1", "c1", "mallory", true, false), // not in allowFrom
            (Allowlist, None, "g2", "c-listed", "alice", false, true), // listed channel
            (Allowlist, None, "g2", "c-listed", "mallory", false, false),
            (Allowlist, None, "g2", "c2", "alice", true, false), // other guild
            (Allowlist, Some(&["bob"]), "g1", "c1", "bob", true, true),
            (Allowlist, Some(&["bob"]), "g1", "c1", "alice", true, false), // list replaced
            (Open, None, "g1", "c1", "mallory", true, true),
            (Open, None, "g2", "c-listed", "mallory", false, true),
            (Open, None, "g2", "c2", "mallory", true, false), // still only allowed places
            (Disabled, None, "g1", "c1", "alice", true, false),
            (Disabled, None, "g2", "c-listed", "alice", false, false),
        ];
        for &(policy, list, guild, channel, user, mentioned, want) in cases {
            let e = GuildEvent {
                guild,
                channel,
                user,
            };
            assert_eq!(
                guild_message_admitted(&cfg(policy, list), e, mentioned),
                want,
                "{policy:?} {list:?} {guild} {channel} {user} mentioned={mentioned}"
            );
        }
    }

    #[test]
    fn guild_commands_need_no_mention_but_the_same_sender() {
        use GroupPolicy::*;
        let e = |user| GuildEvent {
            guild: "g1",
            channel: "c1",
            user,
        };
        assert!(guild_command_admitted(&cfg(Allowlist, None), e("alice")));
        assert!(!guild_command_admitted(&cfg(Allowlist, None), e("mallory")));
        assert!(guild_command_admitted(&cfg(Open, None), e("mallory")));
        assert!(!guild_command_admitted(&cfg(Disabled, None), e("alice")));
        let elsewhere = GuildEvent {
            guild: "g9",
            channel: "c9",
            user: "alice",
        };
        assert!(!guild_command_admitted(&cfg(Open, None), elsewhere));
    }

    #[test]
    fn owners_default_to_allow_from() {
        let mut c = cfg(GroupPolicy::Allowlist, None);
        assert!(is_owner(&c, "alice") && !is_owner(&c, "bob"));
        c.owners = Some(vec!["bob".into()]);
        assert!(is_owner(&c, "bob") && !is_owner(&c, "alice"));
    }
}
