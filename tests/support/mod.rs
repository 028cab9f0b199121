#![allow(dead_code)]
pub mod fake_provider;
pub mod gateway;
pub mod home;
