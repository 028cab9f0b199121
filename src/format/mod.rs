//! Formatting a model's Markdown reply for a chat platform (DESIGN §10 "Formatting").
//!
//! Owns the Markdown → Telegram HTML renderer ([`telegram_html`]) and the cutting of
//! rendered HTML into messages that fit Telegram's limit with every part's tags balanced
//! ([`html_chunk`]). Pure: no I/O, no sending; the Telegram channel decides when to use it
//! and resends a refused part as [`telegram_html::plain`] text.
//!
//! Also owns the web chat's form of a reply: a small document tree ([`tree`]) that the
//! page turns into DOM nodes without ever parsing model text as HTML.

pub mod html_chunk;
mod table;
mod tags;
pub mod telegram_html;
pub mod tree;
