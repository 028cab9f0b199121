//! RemoteClaw: a chat-bot runtime that lets people talk to LLMs from Discord, Telegram,
//! a web chat and the terminal, with per-session model choice and credential pinning.
//!
//! Layers (see README "Architecture"): `config` → `catalog` → `auth` (credentials) →
//! `providers` (wire APIs) → `engine` (one turn, rotation) → `session` (durable
//! per-session state) → `directive` + `chat` (one message) → `gateway` (HTTP, web chat)
//! and `cli`.

pub mod alerts;
pub mod app;
pub mod auth;
pub mod catalog;
pub mod channels;
pub mod chat;
pub mod cli;
pub mod clock;
pub mod config;
pub mod directive;
pub mod engine;
pub mod format;
pub mod gateway;
pub mod inbox;
pub mod limit;
pub mod media;
pub mod metrics;
pub mod oauth;
pub mod pairing;
pub mod providers;
pub mod secret;
pub mod session;
pub mod state;
pub mod usage;
