#![allow(dead_code)]
pub mod fake_discord;
pub mod fake_oauth;
pub mod fake_provider;
pub mod fake_telegram;
pub mod gateway;
pub mod home;
pub mod redis;
pub mod slow_stream;
