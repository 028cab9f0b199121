//! `remoteclaw gateway [--bind ADDR] [--port N]`: serve the HTTP API and web chat until
//! SIGINT/SIGTERM, then let in-flight turns finish. `gateway install | uninstall | status`
//! manage it as a user service (`super::service`).

use super::service::ServiceCommand;
use crate::app::App;
use crate::auth::env_keys::primary_env_var;
use crate::config::SecretInput;
use crate::config::env::EnvMap;
use crate::gateway::channels::Channels;
use crate::gateway::reload::Reloader;
use crate::gateway::{GatewayState, check_bind, serve};
use crate::secret::Secret;
use anyhow::Context;
use clap::Args;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// A session untouched for this long leaves memory.
const SESSION_IDLE_MS: i64 = 30 * 60 * 1000;

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct GatewayArgs {
    /// Without a subcommand: run the gateway in the foreground.
    #[command(subcommand)]
    pub command: Option<ServiceCommand>,
    /// Address to listen on (default: gateway.bind, 127.0.0.1).
    #[arg(long)]
    pub bind: Option<String>,
    /// Port to listen on; 0 picks a free one (default: gateway.port, 18789).
    #[arg(long)]
    pub port: Option<u16>,
}

async fn gateway_token(app: &App) -> anyhow::Result<Option<Secret>> {
    match &app.config().gateway.auth.token {
        None => Ok(None),
        Some(SecretInput::Plain(t)) if t.trim().is_empty() => {
            anyhow::bail!(
                "gateway.auth.token is empty in {}: set a long random token or remove the key",
                app.config_path.display()
            )
        }
        Some(input) => Ok(Some(
            app.engine
                .resolver
                .secrets
                .resolve_input(input)
                .await
                .map_err(|e| anyhow::anyhow!("gateway.auth.token: {e}"))?,
        )),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!(
        "shutting down: no new messages; waiting for turns in flight to finish and reply"
    );
}

pub async fn run(args: GatewayArgs) -> anyhow::Result<ExitCode> {
    if let Some(command) = args.command {
        return super::service::run(command).await;
    }
    let app = App::load_for_gateway(EnvMap::from_process()).await?;
    let token = gateway_token(&app).await?;
    let config = app.config();
    let bind = args
        .bind
        .clone()
        .unwrap_or_else(|| config.gateway.bind.clone());
    let port = args.port.unwrap_or(config.gateway.port);
    let ip = check_bind(
        &bind,
        token.is_some(),
        &app.config_path.display().to_string(),
    )?;
    let addr = SocketAddr::new(ip, port);
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
        format!(
            "cannot listen on {addr}; is another gateway running? Pick another port with --port"
        )
    })?;
    let local = listener.local_addr()?;
    tracing::info!(
        config = %app.config_path.display(),
        config_found = app.config_exists,
        default_model = %app.engine.catalog().default,
        "RemoteClaw gateway listening on http://{local} (web chat at http://{local}/)"
    );
    let default = app.engine.catalog().default.clone();
    if let Err(e) = app
        .engine
        .resolver
        .attempt_list(&default.provider, &default.to_string(), None)
        .await
    {
        tracing::warn!(
            "{e} (turns will answer with this message until {} or a profile is set)",
            primary_env_var(&default.provider)
        );
    }
    let app = Arc::new(app);
    // Idle sessions leave memory (their state stays in the store).
    let sweeper = {
        let app = app.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
            loop {
                tick.tick().await;
                let gone = app.sessions.evict_idle(SESSION_IDLE_MS);
                if gone > 0 {
                    tracing::debug!(
                        evicted = gone,
                        live = app.sessions.live_count(),
                        "idle sessions left memory"
                    );
                }
            }
        })
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let grace = Duration::from_secs(config.gateway.shutdown_grace_secs);
    let channels = Arc::new(tokio::sync::Mutex::new(
        Channels::start(&app, &config).await,
    ));
    // Config edits apply without a restart (DESIGN §11).
    let reloader = tokio::spawn(
        Reloader::new(app.clone(), channels.clone())
            .await
            .run(stop_rx.clone()),
    );
    // Credential alerts (`[alerts]`, DESIGN §11), stopped by the same signal.
    let alerts = crate::alerts::spawn(app.clone(), stop_rx.clone());
    let state = GatewayState::new(app.clone(), token);
    let mut http_stop = stop_rx.clone();
    let mut serving = tokio::spawn(serve(listener, state, async move {
        let _ = http_stop.wait_for(|s| *s).await;
    }));
    // Run until SIGINT/SIGTERM (or the HTTP server fails).
    let early = tokio::select! {
        _ = shutdown_signal() => None,
        r = &mut serving => Some(r),
    };
    let _ = stop_tx.send(true);
    // No reload during the drain; a channel restart under way finishes first.
    let _ = reloader.await;
    let channels = {
        let mut held = channels.lock().await;
        held.stop_all();
        std::mem::take(&mut *held)
    };
    // Drain: no new messages are taken; turns in flight finish and send their replies,
    // within `gateway.shutdownGraceSecs`.
    let drain = async {
        let served = match early {
            Some(r) => r,
            None => serving.await,
        };
        channels.join().await;
        served
    };
    let served = match tokio::time::timeout(grace, drain).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => Err(std::io::Error::other(e.to_string())),
        Err(_) => {
            tracing::warn!(
                "shutdown grace period of {} s (gateway.shutdownGraceSecs) ran out; stopping with turns still running",
                grace.as_secs()
            );
            Ok(())
        }
    };
    app.settle(Duration::from_secs(5)).await;
    // A check under way finishes (its alert posted or put back), briefly.
    let _ = tokio::time::timeout(Duration::from_secs(5), alerts).await;
    served.context("the gateway stopped with an error")?;
    sweeper.abort();
    tracing::info!("gateway stopped");
    Ok(ExitCode::SUCCESS)
}
