//! Posting an alert: Telegram `sendMessage` (teloxide, `apiRoot` honoured) or Discord
//! `POST /api/v10/channels/{id}/messages` (serenity's `Http`, `apiBase` honoured, with
//! serenity's ratelimiter off behind a non-default base, as the Discord channel does).
//! The bot tokens are the channels' (`botToken`/`botTokenRef`/`TELEGRAM_BOT_TOKEN`,
//! `token`/`tokenRef`/`DISCORD_BOT_TOKEN`), whether the channel runs or not. Clients
//! are kept between checks while the token and base stay the same. Errors never carry
//! a token.

use crate::app::App;
use crate::config::{AlertsConfig, Config};
use crate::secret::Secret;
use serenity::all::{ChannelId, Http, HttpBuilder};
use std::sync::Arc;
use teloxide::Bot;
use teloxide::prelude::Requester;
use teloxide::types::ChatId;

/// Telegram's limit is 4096 UTF-16 units, Discord's 2000 characters: an alert longer
/// than this many characters is cut (both fit).
const MAX_CHARS: usize = 1900;

/// Where one alert goes, ready to post.
#[derive(Clone)]
pub(super) struct Target {
    /// `telegram:<chat>` or `discord:<channel>`: the first part of the alert keys.
    pub name: String,
    client: Client,
    token: Secret,
}

#[derive(Clone)]
enum Client {
    Telegram { bot: Bot, chat: i64 },
    Discord { http: Arc<Http>, channel: u64 },
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Target {
    /// Post `text` (cut to fit); the error says why not, without the token.
    pub async fn post(&self, text: &str) -> Result<(), String> {
        let text = fit(text);
        match &self.client {
            Client::Telegram { bot, chat } => bot
                .send_message(ChatId(*chat), text)
                .await
                .map(|_| ())
                .map_err(|e| self.token.redact_in(&format!("Telegram sendMessage: {e}"))),
            Client::Discord { http, channel } => {
                let body = serde_json::json!({
                    "content": text,
                    // A profile id or a summary could hold `@everyone`: never ping anyone.
                    "allowed_mentions": { "parse": [] },
                });
                http.send_message(ChannelId::new(*channel), Vec::new(), &body)
                    .await
                    .map(|_| ())
                    .map_err(|e| self.token.redact_in(&format!("Discord POST message: {e}")))
            }
        }
    }
}

/// `text`, cut to [`MAX_CHARS`] characters (on a character boundary) with a mark.
fn fit(text: &str) -> String {
    if text.chars().count() <= MAX_CHARS {
        return text.to_string();
    }
    let mut out: String = text.chars().take(MAX_CHARS - 1).collect();
    out.push('…');
    out
}

/// The clients built so far, reused while their token and base stay the same.
#[derive(Default)]
pub(super) struct Clients {
    telegram: Option<(String, Bot)>,
    discord: Option<(String, Arc<Http>)>,
}

impl std::fmt::Debug for Clients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clients").finish_non_exhaustive()
    }
}

impl Clients {
    /// The targets of `[alerts]` that can be posted to now, and for each one that
    /// cannot, why (no token, a bad base URL), as (target name, reason).
    pub async fn targets(
        &mut self,
        app: &App,
        config: &Config,
        alerts: &AlertsConfig,
    ) -> (Vec<Target>, Vec<(String, String)>) {
        let mut ready = Vec::new();
        let mut problems = Vec::new();
        if let Some(chat) = alerts.telegram_chat {
            let name = format!("telegram:{chat}");
            match self.telegram(app, config).await {
                Ok((bot, token)) => ready.push(Target {
                    name,
                    client: Client::Telegram { bot, chat },
                    token,
                }),
                Err(why) => problems.push((name, format!("alerts.telegramChat: {why}"))),
            }
        }
        if let Some(raw) = &alerts.discord_channel {
            let name = format!("discord:{}", raw.trim());
            match alerts.discord_channel_id() {
                None => problems.push((
                    name,
                    format!("alerts.discordChannel \"{raw}\" is not a Discord channel id"),
                )),
                Some(channel) => match self.discord(app, config).await {
                    Ok((http, token)) => ready.push(Target {
                        name,
                        client: Client::Discord { http, channel },
                        token,
                    }),
                    Err(why) => problems.push((name, format!("alerts.discordChannel: {why}"))),
                },
            }
        }
        (ready, problems)
    }

    async fn telegram(&mut self, app: &App, config: &Config) -> Result<(Bot, Secret), String> {
        let cfg = config.channels.telegram.clone().unwrap_or_default();
        let token = crate::channels::telegram::token(app, &cfg)
            .await
            .map_err(|e| e.to_string())?;
        let key = format!("{}|{}", token.fingerprint(), cfg.api_root);
        if let Some((k, bot)) = &self.telegram
            && *k == key
        {
            return Ok((bot.clone(), token));
        }
        let url = reqwest::Url::parse(&cfg.api_root).map_err(|_| {
            format!(
                "channels.telegram.apiRoot \"{}\" is not a URL",
                cfg.api_root
            )
        })?;
        let bot = Bot::new(token.expose()).set_api_url(url);
        self.telegram = Some((key, bot.clone()));
        Ok((bot, token))
    }

    async fn discord(&mut self, app: &App, config: &Config) -> Result<(Arc<Http>, Secret), String> {
        let cfg = config.channels.discord.clone().unwrap_or_default();
        let token = crate::channels::discord::token(app, &cfg)
            .await
            .map_err(|e| e.to_string())?;
        let base = cfg.api_base.trim_end_matches('/').to_string();
        let key = format!("{}|{base}", token.fingerprint());
        if let Some((k, http)) = &self.discord
            && *k == key
        {
            return Ok((http.clone(), token));
        }
        // As the Discord channel builds it: no redirects (a redirect must not carry the
        // bot token elsewhere); behind another base, serenity's ratelimiter is off (it
        // would call discord.com).
        let client = reqwest::Client::builder()
            .use_rustls_tls()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
        let mut builder = HttpBuilder::new(token.expose()).client(client);
        if base != crate::channels::discord::DEFAULT_API_BASE {
            builder = builder.proxy(base.as_str()).ratelimiter_disabled(true);
        }
        let http = Arc::new(builder.build());
        self.discord = Some((key, http.clone()));
        Ok((http, token))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_alerts_are_cut_on_a_character() {
        assert_eq!(fit("short"), "short");
        let long = "é".repeat(MAX_CHARS + 10);
        let cut = fit(&long);
        assert_eq!(cut.chars().count(), MAX_CHARS);
        assert!(cut.ends_with('…'));
    }
}
