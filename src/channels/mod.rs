//! Chat channels: the platforms people talk to the bot from (Telegram, Discord, …).
//! Platform types stop here; the rest of the crate sees plain text and session keys.
//!
//! - [`chunk`]: cutting a reply into messages that fit a platform's length limit (pure).

pub mod chunk;
pub mod discord;
pub mod telegram;
