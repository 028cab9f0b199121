//! Slash commands: rendered from `commands/*.toml`, registered per guild (instant) or
//! globally, and answered by deferring at once and editing the original response with
//! the real content (ephemeral for `/model status`, which names profiles). Who may use
//! them follows `access`; a refusal is an ephemeral message and reaches no model.

use super::access::{self, GuildEvent};
use super::messages::INBOX;
use super::{Handler, live};
use crate::channels::stream;
use crate::chat::Inbound;
use crate::inbox::Receipt;
use crate::session::key;
use serenity::all::{
    CommandDataOptionValue, CommandInteraction, CommandOptionType, Context,
    CreateAutocompleteResponse, CreateCommand, CreateCommandOption, CreateInteractionResponse,
    CreateInteractionResponseMessage, GuildId, Http,
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

/// Answer to a slash command from someone who may not talk here (ephemeral).
const REFUSED: &str = "You are not allowed to use this bot here. Ask its operator to add you.";
/// Answer to a slash command that arrives while the gateway shuts down (ephemeral).
const RESTARTING: &str = "The bot is restarting: run the command again in a minute.";

/// Whether the user of an interaction may talk where it was sent.
async fn admitted(h: &Handler, cmd: &CommandInteraction) -> bool {
    let cfg = h.cfg();
    let user = cmd.user.id.to_string();
    match cmd.guild_id {
        None => access::dm_admitted(&cfg, &h.pairing, &user).await,
        Some(g) => access::guild_command_admitted(
            &cfg,
            GuildEvent {
                guild: &g.to_string(),
                channel: &h.place(cmd.channel_id).0,
                user: &user,
            },
        ),
    }
}

/// A slash command: refused (ephemeral, no model) unless its user may talk here;
/// otherwise deferred at once, run through `chat::handle`, and answered by editing the
/// original response (follow-ups for further parts). Recorded in the inbox, so a
/// command delivered twice is answered once.
pub async fn run(h: &Handler, ctx: &Context, cmd: CommandInteraction) {
    let cfg = h.cfg();
    let pass = h.gate.enter();
    let refusal = if pass.late() {
        Some(RESTARTING)
    } else if !admitted(h, &cmd).await {
        Some(REFUSED)
    } else {
        None
    };
    if let Some(text) = refusal {
        let msg = CreateInteractionResponseMessage::new()
            .content(text)
            .ephemeral(true);
        if let Err(e) = cmd
            .create_response(&ctx.http, CreateInteractionResponse::Message(msg))
            .await
        {
            tracing::warn!(
                "could not answer a Discord interaction: {}",
                scrub(&e, &cmd.token)
            );
        }
        return;
    }
    let user = cmd.user.id.to_string();
    let text = as_text(&cmd);
    let ephemeral = text.starts_with("/model status");
    // Acknowledge within Discord's 3 s, before any model call or store write.
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
    // Discord accepts one acknowledgement per interaction, so a redelivery stops above;
    // the mark also covers a second replica that saw the answer stored.
    let id = cmd.id.to_string();
    match h.inbox.receive(INBOX, &id, "").await {
        Ok(Receipt::Answered) => return,
        Ok(_) => {}
        Err(e) => tracing::warn!(
            interaction = %id,
            "could not record a Discord interaction in the inbox ({e}); answering it anyway"
        ),
    }
    let (channel, thread) = h.place(cmd.channel_id);
    let session = match cmd.guild_id {
        None => key::discord_dm(&user),
        Some(_) => key::discord_channel(&channel, thread.as_deref()),
    };
    let inbound = Inbound {
        session: &session,
        text: &text,
        owner: access::is_owner(&cfg, &user),
        bot_username: None,
        agent: cfg.agent.as_deref(),
        system_prompt: cfg.prompt_for(&channel),
        attachments: &[],
        quoted: None,
    };
    // The deferred response streams like a message: edited in place, continued in
    // follow-ups past 2000 characters.
    let surface = live::InteractionReply {
        rest: &h.rest,
        http: &ctx.http,
        application_id: cmd.application_id,
        token: &cmd.token,
        ephemeral,
    };
    // The deferred response must be replaced by something, or it "thinks" forever: an
    // empty reply shows `stream::EMPTY_REPLY`.
    let (_, stats) = stream::answer(&h.app, inbound, &surface, live::style(&cfg), |result| {
        Some(stream::Final::of(result))
    })
    .await;
    tracing::debug!(interaction = %id, ?stats, "slash command answered");
    h.mark_answered(&id).await;
}

/// Suggestions for the `/model` option: aliases, allowed models, keywords, and
/// `model@profile` forms for owners — at most 25, matching what was typed. Someone who
/// may not talk here gets no suggestions.
pub async fn autocomplete(h: &Handler, ctx: &Context, ac: CommandInteraction) {
    let pass = h.gate.enter();
    if pass.late() {
        return;
    }
    let typed = ac
        .data
        .autocomplete()
        .map(|o| o.value.to_lowercase())
        .unwrap_or_default();
    let choices = if admitted(h, &ac).await {
        suggestions(h, &ac.user.id.to_string()).await
    } else {
        Vec::new()
    };
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

/// Every `/model` suggestion for `user`; profile forms only for owners (the profile
/// list is read off the runtime threads).
async fn suggestions(h: &Handler, user: &str) -> Vec<String> {
    let cfg = h.cfg();
    let catalog = &h.app.engine.catalog();
    let mut choices: Vec<String> = vec!["list".into(), "status".into(), "default".into()];
    choices.extend(catalog.aliases.keys().cloned());
    choices.extend(
        catalog
            .allowed_list()
            .into_iter()
            .map(|m| m.split(' ').next().unwrap_or_default().to_string()),
    );
    if !access::is_owner(&cfg, user) {
        return choices;
    }
    let resolver = h.app.engine.resolver_for(cfg.agent.as_deref());
    let profiles = resolver.profiles_async(None).await;
    for (alias, model) in &catalog.aliases {
        choices.extend(
            profiles
                .iter()
                .filter(|p| p.provider == model.provider)
                .map(|p| format!("{alias}@{}", p.id)),
        );
    }
    choices
}
