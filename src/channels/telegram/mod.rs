//! The Telegram channel (teloxide, long polling). Owns everything Telegram-specific:
//! who may talk (`access`: dmPolicy, allowFrom, pairing, groups with groupPolicy and
//! mentions), session keys per chat and forum topic, the command menu from
//! `commands/*.toml`, typing indicator, and replies streamed into the chat (`live`,
//! DESIGN §10): the model's Markdown as Telegram HTML, cut at 4096 UTF-16 units with tags
//! balanced, sent again as plain text if Telegram refuses the formatting. The message
//! itself, with its photos and files (`media`), goes through `chat::handle` like every
//! other channel; no Telegram type leaves this module.
//!
//! Delivery (DESIGN §8): every update that may need an answer is recorded before it is
//! acknowledged and marked answered after its reply (`journal`); each session answers
//! in order from a queue of at most 8 waiting messages, a message that finds it full
//! gets the busy reply at once (`queue`). On shutdown the channel stops polling, lets
//! the turns in flight and queued finish and reply, then stores the update offset.
//!
//! Webhook mode (`[channels.telegram.webhook]`, `webhook`): no polling; Telegram posts
//! each update to the gateway's listener, which hands it to the same intake (`take`).
//!
//! `/model` alone in a DM answers with an inline keyboard of the allowed models
//! (`picker`). Sends go through a `limiter` that honours Telegram's `retry_after`.

use crate::app::App;
use crate::config::TelegramConfig;
use crate::config::live::LiveSection;
use crate::pairing::PairingStore;
use crate::secret::Secret;
use std::sync::Arc;
use std::time::Duration;
use teloxide::RequestError;
use teloxide::payloads::GetUpdatesSetters;
use teloxide::prelude::Requester;
use teloxide::types::{AllowedUpdate, BotCommand, Message, UpdateKind};
use teloxide::{ApiError, Bot};
use tokio::sync::watch;

mod access;
mod journal;
mod lean;
mod lenient;
mod limiter;
mod live;
mod media;
mod mention;
mod picker;
mod plain;
mod queue;
mod reply;
mod webhook;

pub use access::{Access, access, approval_needed};
use journal::{Journal, Stored, StoredRef};
pub use mention::strip_mention;
pub use reply::TYPING_AFTER;
pub use webhook::{
    Delivery as WebhookDelivery, Endpoint as WebhookEndpoint, Intake as WebhookIntake,
    SECRET_HEADER as WEBHOOK_SECRET_HEADER,
};

/// Long-poll timeout asked of Telegram (teloxide gives up on a request after ~17 s).
const POLL_TIMEOUT_SECS: u32 = 10;

#[derive(Debug, thiserror::Error)]
pub enum TelegramError {
    #[error(
        "Telegram bot token missing: set channels.telegram.botToken, botTokenRef, or TELEGRAM_BOT_TOKEN"
    )]
    NoToken,
    #[error("channels.telegram.botTokenRef: {0}")]
    TokenRef(String),
    #[error("channels.telegram.apiRoot \"{0}\" is not a URL")]
    BadApiRoot(String),
    #[error(
        "Telegram rejected the bot token (401). Check it with @BotFather and update channels.telegram."
    )]
    InvalidToken,
    #[error("channels.telegram.webhook.url \"{0}\" is not a URL")]
    WebhookUrl(String),
    #[error("channels.telegram.webhook secret: {0}")]
    WebhookSecret(String),
    #[error(
        "Telegram refused the webhook ({0}): check channels.telegram.webhook.url (Telegram posts only to HTTPS on ports 443, 80, 88 or 8443)"
    )]
    SetWebhook(String),
}

/// The bot token from `botToken`, `botTokenRef` or `TELEGRAM_BOT_TOKEN`.
pub async fn token(app: &App, cfg: &TelegramConfig) -> Result<Secret, TelegramError> {
    super::bot_token(
        app,
        cfg.bot_token.as_deref(),
        cfg.bot_token_ref.as_ref(),
        "TELEGRAM_BOT_TOKEN",
    )
    .await
    .map_err(|e| match e {
        super::TokenError::Missing => TelegramError::NoToken,
        super::TokenError::Ref(m) => TelegramError::TokenRef(m),
    })
}

/// An error's text with the bot token taken out: teloxide's network errors quote the
/// request URL, and the token is part of every Bot API URL.
fn describe(e: &RequestError, token: &Secret) -> String {
    token.redact_in(&e.to_string())
}

/// Ends the channel's tasks when the channel's future ends or is dropped.
struct EndTasksOnDrop(Arc<Ctx>);

impl Drop for EndTasksOnDrop {
    fn drop(&mut self) {
        self.0.queues.tasks.abort_all();
    }
}

struct Ctx {
    app: Arc<App>,
    token: Secret,
    /// `[channels.telegram]` in force (a reload replaces it; read once per message).
    cfg: LiveSection<TelegramConfig>,
    bot: Bot,
    username: String,
    bot_id: u64,
    pairing: PairingStore,
    journal: Journal,
    queues: queue::Queues,
    picker: picker::Picker,
    limiter: limiter::Limiter,
}

impl Ctx {
    /// The channel's settings in force now.
    fn cfg(&self) -> Arc<TelegramConfig> {
        self.cfg.load_full()
    }
}

/// Run the channel until `shutdown` turns true; then take no new messages, let the
/// turns in flight and queued finish and reply, store the update offset and return.
/// With `[channels.telegram.webhook]` updates come from the gateway instead of polls.
pub async fn run(
    app: Arc<App>,
    live: LiveSection<TelegramConfig>,
    token: Secret,
    shutdown: watch::Receiver<bool>,
) -> Result<(), TelegramError> {
    let cfg = live.load_full();
    let url = reqwest::Url::parse(&cfg.api_root)
        .map_err(|_| TelegramError::BadApiRoot(cfg.api_root.clone()))?;
    let hook = match &cfg.webhook {
        Some(w) => {
            let settings = webhook::settings(&app, w).await?;
            app.telegram_webhook
                .expect_secret(settings.secret().clone());
            Some(settings)
        }
        None => None,
    };
    let bot = Bot::new(token.expose()).set_api_url(url);
    let Some(me) = get_me(&bot, &token, &mut shutdown.clone()).await? else {
        return Ok(());
    };
    let username = me.username().to_string();
    tracing::info!(bot = %username, "Telegram channel connected");
    let pairing = app.pairing();
    let inbox = app.inbox();
    let journal = Journal::open(inbox, me.id.0);
    let ctx = Arc::new(Ctx {
        app,
        token,
        cfg: live,
        bot,
        username,
        bot_id: me.id.0,
        pairing,
        journal,
        queues: queue::Queues::here(),
        picker: picker::Picker::default(),
        limiter: limiter::Limiter::default(),
    });
    // Stopped past its grace (`Running::stop` aborts this future), the channel's turns
    // end with it: a reply they sent later would answer again what the restarted
    // channel answers from the journal.
    let _end_tasks = EndTasksOnDrop(ctx.clone());
    register_commands(&ctx).await;
    // With replicas polling one token, only the lease holder may poll, and it answers
    // what a dead poller left unanswered when it takes over (`poll_with_lease`).
    let coordinator = match hook {
        None => ctx.app.stores.coordinator.clone(),
        Some(_) => None,
    };
    if coordinator.is_none() {
        // Received before the last stop but never answered (a crash): answer them
        // first (with webhooks and replicas: those no live replica is answering).
        replay_updates(&ctx, ctx.journal.resync().await).await;
    }
    let polled = match (hook, &coordinator) {
        (None, None) => poll_on_own_thread(&ctx, &shutdown).await,
        (None, Some(c)) => poll_with_lease(&ctx, c, &shutdown).await,
        (Some(hook), _) => {
            let (sweep_stop, sweep_rx) = watch::channel(false);
            let sweeper = ctx
                .app
                .stores
                .coordinator
                .as_ref()
                .map(|c| sweep_orphans(&ctx, c, sweep_rx));
            let served = webhook::serve(&ctx, hook, &mut shutdown.clone()).await;
            stop_sweeping(sweep_stop, sweeper).await;
            served
        }
    };
    tracing::info!(
        unanswered = ctx.journal.open_count(),
        "Telegram channel stopped taking messages; finishing the turns in flight"
    );
    ctx.queues.close();
    ctx.queues.tasks.idle().await;
    if cfg.webhook.is_none() {
        ctx.journal.record_offset().await;
    }
    // Only now may another replica take over: everything taken here was answered and
    // the offset stored, so it has nothing of ours to answer again.
    if let Some(c) = &coordinator
        && let Err(e) = c.free_lease(&poller_lease(ctx.bot_id)).await
    {
        tracing::warn!("could not give up the Telegram poller lease: {e}");
    }
    tracing::info!("Telegram channel stopped");
    polled
}

/// Answer updates received but never answered (before a crash, or by a poller that
/// died).
async fn replay_updates(ctx: &Arc<Ctx>, replay: Vec<(i64, Stored)>) {
    for (id, update) in replay {
        match triage(ctx, id, update).await {
            Some(t) => act(ctx, t),
            None => ctx.journal.answered(id).await,
        }
    }
}

/// With replicas (a Redis store): every lease TTL, answer the messages a replica that
/// died left pending (their claims ran out), until `stop` turns true. In
/// webhook mode every replica sweeps; when polling, the poller does.
fn sweep_orphans(
    ctx: &Arc<Ctx>,
    coordinator: &crate::state::lease::Coordinator,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let (ctx, every) = (ctx.clone(), coordinator.ttl());
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.wait_for(|stop| *stop) => return,
                () = tokio::time::sleep(every) => {}
            }
            let found = ctx.journal.sweep().await;
            if !found.is_empty() {
                tracing::info!(
                    count = found.len(),
                    "answering Telegram messages a replica that stopped left unanswered"
                );
                replay_updates(&ctx, found).await;
            }
        }
    })
}

/// Stop the sweeper at its next pause: a batch it claimed is handed to the session
/// queues first (cut off in between, its messages would stay claimed and open here,
/// answered by nobody).
async fn stop_sweeping(stop: watch::Sender<bool>, sweeper: Option<tokio::task::JoinHandle<()>>) {
    stop.send_replace(true);
    if let Some(s) = sweeper {
        let _ = s.await;
    }
}

/// The lease name of the poller of bot `bot_id` (its numeric id, never the token).
fn poller_lease(bot_id: u64) -> String {
    format!("telegram-poller:{bot_id}")
}

/// How often a replica on standby asks for the poller lease.
const STANDBY_CHECK: Duration = Duration::from_secs(1);

/// Replicas of one bot (DESIGN §9): the holder of the poller lease polls, renewing it
/// every third of its TTL; the others stand by and ask for it every second, so when the
/// holder dies another takes over within the TTL. A holder that cannot renew (the lease
/// went to another while Redis was unreachable) stops polling and stands by again.
async fn poll_with_lease(
    ctx: &Arc<Ctx>,
    coordinator: &crate::state::lease::Coordinator,
    shutdown: &watch::Receiver<bool>,
) -> Result<(), TelegramError> {
    let name = poller_lease(ctx.bot_id);
    let mut shutdown = shutdown.clone();
    loop {
        let mut said = false;
        loop {
            if *shutdown.borrow() {
                return Ok(());
            }
            match coordinator.take_lease(&name).await {
                Ok(true) => break,
                Ok(false) if !said => {
                    tracing::info!("another replica polls Telegram for this bot; standing by");
                    said = true;
                }
                Ok(false) => {}
                Err(e) => tracing::warn!("cannot ask for the Telegram poller lease: {e}"),
            }
            tokio::select! {
                _ = shutdown.changed() => {}
                () = tokio::time::sleep(STANDBY_CHECK) => {}
            }
        }
        tracing::info!("this replica polls Telegram now");
        replay_updates(ctx, ctx.journal.resync().await).await;
        // Poll until shutdown or until the lease is lost.
        let (stop_tx, stop_rx) = watch::channel(false);
        let keeper = {
            let (coordinator, name, mut shutdown) =
                (coordinator.clone(), name.clone(), shutdown.clone());
            tokio::spawn(async move {
                let every = coordinator.ttl() / 3;
                let mut failing_since: Option<tokio::time::Instant> = None;
                loop {
                    tokio::select! {
                        _ = shutdown.changed() => {
                            if *shutdown.borrow() {
                                stop_tx.send_replace(true);
                                return;
                            }
                        }
                        () = tokio::time::sleep(every) => {}
                    }
                    match coordinator.take_lease(&name).await {
                        Ok(true) => failing_since = None,
                        Ok(false) => {
                            tracing::warn!(
                                "the Telegram poller lease went to another replica; standing by"
                            );
                            stop_tx.send_replace(true);
                            return;
                        }
                        Err(e) => {
                            let since =
                                *failing_since.get_or_insert_with(tokio::time::Instant::now);
                            tracing::warn!("cannot renew the Telegram poller lease: {e}");
                            if since.elapsed() >= coordinator.ttl() {
                                stop_tx.send_replace(true);
                                return;
                            }
                        }
                    }
                }
            })
        };
        let (sweep_stop, sweep_rx) = watch::channel(false);
        let sweeper = sweep_orphans(ctx, coordinator, sweep_rx);
        let polled = poll_on_own_thread(ctx, &stop_rx).await;
        keeper.abort();
        stop_sweeping(sweep_stop, Some(sweeper)).await;
        if polled.is_err() || *shutdown.borrow() {
            return polled;
        }
    }
}

/// The poll loop on a thread of its own (a single-threaded runtime): under load the
/// runtime's workers hold hundreds of ready turns, and a poll loop among them would
/// wait its turn at each step, so messages would come in slower than they are answered.
/// Everything it starts (session workers, replies) runs on the gateway's runtime.
async fn poll_on_own_thread(
    ctx: &Arc<Ctx>,
    shutdown: &watch::Receiver<bool>,
) -> Result<(), TelegramError> {
    // The thread hears the shutdown through a channel of its own, whose sender lives in
    // this future: dropping the channel's `run` stops the poller too.
    let (stop_tx, mut sd) = watch::channel(*shutdown.borrow());
    let mut outer = shutdown.clone();
    let forward = async move {
        while outer.changed().await.is_ok() {
            stop_tx.send_replace(*outer.borrow());
        }
        drop(stop_tx);
        std::future::pending::<()>().await;
    };
    let c = ctx.clone();
    let thread = tokio::task::spawn_blocking(move || {
        match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => Some(rt.block_on(poll(&c, &mut sd))),
            Err(e) => {
                tracing::warn!(
                    "no thread of its own for the Telegram poller ({e}); polling on the gateway's runtime"
                );
                None
            }
        }
    });
    let joined = tokio::select! {
        j = thread => j,
        () = forward => return Ok(()),
    };
    match joined {
        Ok(Some(polled)) => polled,
        Ok(None) => poll(ctx, &mut shutdown.clone()).await,
        Err(e) => {
            tracing::error!("the Telegram poller stopped: {e}");
            Ok(())
        }
    }
}

/// Who the bot is (`getMe`), asked again with a growing pause (1 s, doubling to 60 s,
/// or what a 429 says) while Telegram cannot be reached or answers with something else
/// than the bot: a network blip at start-up must not leave the channel stopped for good.
/// Only a refused token ends it. `None`: stopped while waiting.
async fn get_me(
    bot: &Bot,
    token: &Secret,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<Option<teloxide::types::Me>, TelegramError> {
    let mut backoff = super::Backoff::new();
    loop {
        if *shutdown.borrow() {
            return Ok(None);
        }
        let wait = match bot.get_me().await.map_err(lenient::readable) {
            Ok(me) => return Ok(Some(me)),
            Err(RequestError::Api(ApiError::InvalidToken)) => {
                return Err(TelegramError::InvalidToken);
            }
            Err(RequestError::RetryAfter(s)) => s.duration().min(limiter::MAX_RETRY_AFTER),
            Err(e) => {
                let wait = backoff.next();
                tracing::warn!(
                    "Telegram getMe failed ({}); retrying in {} s",
                    describe(&e, token),
                    wait.as_secs()
                );
                wait
            }
        };
        tokio::select! {
            _ = shutdown.changed() => return Ok(None),
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// Long-poll `getUpdates` until `shutdown`. Each update is recorded before the next
/// poll acknowledges it; the offset stored is only ever one whose updates were answered.
async fn poll(ctx: &Arc<Ctx>, shutdown: &mut watch::Receiver<bool>) -> Result<(), TelegramError> {
    let mut backoff = super::Backoff::new();
    loop {
        if *shutdown.borrow() {
            return Ok(());
        }
        let request = lean::updates(
            &ctx.bot,
            teloxide::payloads::GetUpdates::new()
                .offset(ctx.journal.poll_offset())
                .timeout(POLL_TIMEOUT_SECS)
                .allowed_updates(vec![AllowedUpdate::Message, AllowedUpdate::CallbackQuery]),
        );
        // The answered offset is stored while the poll runs (at most one write in flight,
        // so offsets are stored in order), not before it: a busy channel polls sooner.
        let bookkeeping = async {
            ctx.journal.record_offset().await;
            ctx.journal.prune_if_due().await;
        };
        let polled = async {
            tokio::select! {
                _ = shutdown.changed() => None,
                r = request => Some(r.map(|batch| batch.into_iter().map(|p| p.0).collect()).map_err(lenient::readable)),
            }
        };
        let ((), result) = tokio::join!(bookkeeping, polled);
        let Some(result) = result else {
            return Ok(());
        };
        // A batch teloxide cannot read as a whole: the readable updates are answered,
        // the others skipped, so the next poll moves past them (instead of asking for
        // the same batch forever).
        let result = match result {
            Err(RequestError::InvalidJson { raw, source }) => match lenient::updates(&raw) {
                Some(batch) => {
                    tracing::warn!(
                        skipped = ?batch.skipped,
                        "Telegram sent updates that could not be read; answering the others and skipping these"
                    );
                    for id in &batch.skipped {
                        ctx.journal.skip(*id);
                    }
                    Ok(batch.updates)
                }
                None => Err(RequestError::InvalidJson { raw, source }),
            },
            other => other,
        };
        let wait = match result {
            Ok(updates) => {
                backoff.reset();
                take(ctx, updates).await;
                continue;
            }
            Err(RequestError::RetryAfter(s)) => s.duration().min(limiter::MAX_RETRY_AFTER),
            Err(RequestError::Api(ApiError::InvalidToken)) => {
                return Err(TelegramError::InvalidToken);
            }
            Err(e) => {
                let wait = backoff.next();
                tracing::warn!(
                    "Telegram getUpdates failed ({}); retrying in {} s",
                    describe(&e, &ctx.token),
                    wait.as_secs()
                );
                wait
            }
        };
        tokio::select! {
            _ = shutdown.changed() => return Ok(()),
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// What answering an update takes.
enum Work {
    /// A turn on this session's queue.
    Turn { session: String, owner: bool },
    /// A pairing code for an unknown DM sender.
    Pairing,
    /// A picker button (its sender is checked when it is applied).
    Button,
}

/// An update that needs an answer.
struct Triaged {
    id: i64,
    update: Stored,
    work: Work,
}

/// One batch from `getUpdates`: decide, record every update that needs an answer
/// (all at once, before the next poll acknowledges them), then hand the new ones to
/// their sessions in arrival order.
async fn take(ctx: &Arc<Ctx>, updates: Vec<teloxide::types::Update>) {
    let mut todo = Vec::with_capacity(updates.len());
    for u in updates {
        let id = i64::from(u.id.0);
        let update = match u.kind {
            UpdateKind::Message(m) => Stored::Message(Box::new(m)),
            UpdateKind::CallbackQuery(q) => Stored::CallbackQuery(Box::new(q)),
            _ => {
                ctx.journal.skip(id);
                continue;
            }
        };
        match triage(ctx, id, update).await {
            Some(t) => todo.push(t),
            None => ctx.journal.skip(id),
        }
    }
    let fresh = futures_util::future::join_all(todo.iter().map(|t| {
        let payload = match &t.update {
            Stored::Message(m) => StoredRef::Message(m),
            Stored::CallbackQuery(q) => StoredRef::CallbackQuery(q),
        };
        ctx.journal.receive(t.id, payload)
    }))
    .await;
    for (t, new) in todo.into_iter().zip(fresh) {
        if new {
            act(ctx, t);
        }
    }
}

/// What an update needs (`None`: it is not for the bot; nothing to record).
async fn triage(ctx: &Ctx, id: i64, update: Stored) -> Option<Triaged> {
    let work = match &update {
        Stored::Message(msg) => match decide(ctx, msg).await {
            Access::Allowed { session, owner } => Work::Turn { session, owner },
            Access::NeedsPairing => Work::Pairing,
            Access::Ignored => return None,
        },
        Stored::CallbackQuery(_) => Work::Button,
    };
    Some(Triaged { id, update, work })
}

/// Answer a recorded update: a message on its session's queue, a pairing offer or a
/// button on a tracked task; each marks it answered when done.
fn act(ctx: &Arc<Ctx>, t: Triaged) {
    let Triaged { id, update, work } = t;
    let c = ctx.clone();
    match (update, work) {
        (Stored::Message(msg), Work::Turn { session, owner }) => {
            let job = queue::Job {
                update: id,
                msg,
                owner,
            };
            queue::enqueue(ctx, session, job);
        }
        (Stored::Message(msg), _) => ctx.queues.tasks.spawn(async move {
            reply::offer_pairing(&c, &msg).await;
            c.journal.answered(id).await;
        }),
        (Stored::CallbackQuery(q), _) => ctx.queues.tasks.spawn(async move {
            reply::on_button(&c, *q).await;
            c.journal.answered(id).await;
        }),
    }
}

/// Who may talk: the pairing approval is looked up (off the runtime threads) only
/// when the decision depends on it.
async fn decide(ctx: &Ctx, msg: &Message) -> Access {
    let cfg = ctx.cfg();
    if !media::carries_input(msg) {
        return Access::Ignored;
    }
    let approved = match approval_needed(&cfg, msg) {
        Some(user) => ctx
            .pairing
            .is_approved("telegram", &user.to_string())
            .await
            .unwrap_or_else(|e| {
                tracing::warn!("pairing lookup failed: {e}");
                false
            }),
        None => false,
    };
    access(&cfg, &ctx.username, ctx.bot_id, msg, approved)
}

/// The command menu from `commands/*.toml`, checked against Telegram's limits first;
/// on failure the previous menu stays.
async fn register_commands(ctx: &Ctx) {
    let commands: Vec<BotCommand> = crate::directive::spec::commands()
        .iter()
        .filter(|c| {
            let ok = (1..=32).contains(&c.name.len())
                && c.name.chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_')
                && (1..=256).contains(&c.description.chars().count());
            if !ok {
                tracing::warn!(command = %c.name, "left out of the Telegram menu: outside Telegram's limits");
            }
            ok
        })
        .map(|c| BotCommand::new(c.name.clone(), c.description.clone()))
        .collect();
    if let Err(e) = ctx.bot.set_my_commands(commands).await {
        tracing::warn!(
            "Telegram kept its previous command menu: setMyCommands failed ({})",
            describe(&e, &ctx.token)
        );
    }
}
