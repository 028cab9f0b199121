//! Slash commands: rendered from `commands/*.toml`, registered per guild (instant) or
//! globally, and answered by deferring at once and editing the original response with
//! the real content (ephemeral for `/model status`, which names profiles).

use super::Handler;
use crate::channels::chunk;
use crate::chat::{Inbound, handle};
use crate::session::key;
use serenity::all::{
    CommandDataOptionValue, CommandInteraction, CommandOptionType, Context,
    CreateAutocompleteResponse, CreateCommand, CreateCommandOption, CreateInteractionResponse,
    CreateInteractionResponseFollowup, EditInteractionResponse, GuildId, Http,
};

/// An error's text without the interaction token (it is part of the webhook URLs that
/// serenity quotes, and it can edit the response for 15 minutes).
fn scrub(e: &serenity::Error, token: &str) -> String {
    let text = e.to_string();
    if token.is_empty() {
        text
    } else {
        text.replace(token, "<interaction token>")
    }
}

/// The command surface as Discord application commands.
pub fn definitions() -> Vec<CreateCommand> {
    crate::directive::spec::commands()
        .iter()
        .map(|c| {
            let mut cmd = CreateCommand::new(c.name.clone()).description(c.description.clone());
            for o in &c.options {
                cmd = cmd.add_option(
                    CreateCommandOption::new(
                        CommandOptionType::String,
                        o.name.clone(),
                        o.description.clone(),
                    )
                    .required(o.required)
                    .set_autocomplete(c.name == "model"),
                );
            }
            cmd
        })
        .collect()
}

/// Register per guild when guilds are configured, globally otherwise. Bulk overwrite
/// replaces stale commands of ours. Failures are logged; the channel keeps running.
pub async fn register(http: &Http, guilds: &[String]) {
    if guilds.is_empty() {
        if let Err(e) = serenity::all::Command::set_global_commands(http, definitions()).await {
            tracing::warn!("Discord global command registration failed: {e}");
        }
        return;
    }
    for g in guilds {
        match g.parse::<u64>() {
            Ok(id) => {
                if let Err(e) = GuildId::new(id).set_commands(http, definitions()).await {
                    tracing::warn!(guild = %g, "Discord command registration failed: {e}");
                }
            }
            Err(_) => tracing::warn!(guild = %g, "channels.discord.guilds: not a Discord id"),
        }
    }
}

/// The text a slash command stands for, e.g. `/model opus@anthropic:work`.
fn as_text(cmd: &CommandInteraction) -> String {
    let arg = cmd.data.options.iter().find_map(|o| match &o.value {
        CommandDataOptionValue::String(s) => Some(s.clone()),
        _ => None,
    });
    match arg {
        Some(a) if !a.trim().is_empty() => format!("/{} {}", cmd.data.name, a.trim()),
        _ => format!("/{}", cmd.data.name),
    }
}

pub async fn run(h: &Handler, ctx: &Context, cmd: CommandInteraction) {
    let user = cmd.user.id.to_string();
    let allowed = match cmd.guild_id {
        None => h.dm_allowed(&user),
        Some(g) => h.guild_allowed(&g.to_string(), &cmd.channel_id.to_string()),
    };
    let text = as_text(&cmd);
    let ephemeral = text.starts_with("/model status") || !allowed;
    // Acknowledge within Discord's 3 s, before any model call.
    let deferred = if ephemeral {
        cmd.defer_ephemeral(&ctx.http).await
    } else {
        cmd.defer(&ctx.http).await
    };
    if let Err(e) = deferred {
        tracing::warn!(
            "could not acknowledge a Discord interaction: {}",
            scrub(&e, &cmd.token)
        );
        return;
    }
    let reply = if !allowed {
        "You are not allowed to use this bot here. Ask its operator to add you.".to_string()
    } else {
        let session = match cmd.guild_id {
            None => key::discord_dm(&user),
            Some(_) => key::discord_channel(&cmd.channel_id.to_string(), None),
        };
        let owner = h.owners().iter().any(|o| o == &user);
        let result = handle(
            &h.app,
            Inbound {
                session: &session,
                text: &text,
                owner,
                bot_username: None,
                agent: h.cfg.agent.as_deref(),
            },
            None,
        )
        .await;
        result.reply_text()
    };
    let mut parts = chunk::split(&reply, chunk::DISCORD).into_iter();
    let first = parts
        .next()
        .unwrap_or_else(|| "The model sent an empty reply; try rephrasing.".to_string());
    if let Err(e) = cmd
        .edit_response(&ctx.http, EditInteractionResponse::new().content(first))
        .await
    {
        tracing::warn!(
            "could not edit the Discord interaction response: {}",
            scrub(&e, &cmd.token)
        );
        return;
    }
    for part in parts {
        let follow = CreateInteractionResponseFollowup::new()
            .content(part)
            .ephemeral(ephemeral);
        if let Err(e) = cmd.create_followup(&ctx.http, follow).await {
            tracing::warn!(
                "could not send a Discord follow-up: {}",
                scrub(&e, &cmd.token)
            );
            return;
        }
    }
}

/// Suggestions for the `/model` option: aliases, allowed models, keywords, and
/// `model@profile` forms for owners — at most 25, matching what was typed.
pub async fn autocomplete(h: &Handler, ctx: &Context, ac: CommandInteraction) {
    let typed = ac
        .data
        .autocomplete()
        .map(|o| o.value.to_lowercase())
        .unwrap_or_default();
    let catalog = &h.app.engine.catalog;
    let mut choices: Vec<String> = vec!["list".into(), "status".into(), "default".into()];
    choices.extend(catalog.aliases.keys().cloned());
    choices.extend(
        catalog
            .allowed_list()
            .into_iter()
            .map(|m| m.split(' ').next().unwrap_or_default().to_string()),
    );
    if h.owners().iter().any(|o| o == &ac.user.id.to_string())
        && let Ok(profiles) = h.app.engine.resolver_for(h.cfg.agent.as_deref()).profiles()
    {
        for (alias, model) in &catalog.aliases {
            choices.extend(
                profiles
                    .iter()
                    .filter(|p| p.provider == model.provider)
                    .map(|p| format!("{alias}@{}", p.id)),
            );
        }
    }
    let mut seen = std::collections::HashSet::new();
    let resp = choices
        .into_iter()
        .filter(|c| c.to_lowercase().contains(&typed) && seen.insert(c.clone()))
        .take(25)
        .fold(CreateAutocompleteResponse::new(), |r, c| {
            r.add_string_choice(c.clone(), c)
        });
    if let Err(e) = ac
        .create_response(&ctx.http, CreateInteractionResponse::Autocomplete(resp))
        .await
    {
        tracing::warn!(
            "could not answer Discord autocomplete: {}",
            scrub(&e, &ac.token)
        );
    }
}
