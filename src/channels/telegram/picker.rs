//! Short opaque ids for the model picker's buttons (Telegram allows 64 bytes of
//! callback data): each id names one model for one session and expires.

use crate::app::App;
use dashmap::DashMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// What a pressed button means.
#[derive(Debug, PartialEq, Eq)]
pub enum Pick {
    Model(String),
    /// Unknown or expired id.
    Expired,
    /// A button offered to another session.
    Foreign,
}

/// How long a picker's buttons work.
pub const TTL_MS: i64 = 10 * 60 * 1000;

#[derive(Debug, Default)]
pub struct Picker {
    next: AtomicU64,
    offers: DashMap<String, (String, String, i64)>,
}

impl Picker {
    /// Buttons `(label, callback data)` for the models this session may choose.
    pub fn offer(&self, app: &App, session: &str, now_ms: i64) -> Vec<(String, String)> {
        self.offers.retain(|_, (_, _, exp)| *exp > now_ms);
        app.engine
            .catalog()
            .allowed_list()
            .into_iter()
            .take(40)
            .map(|label| {
                let model = label.split(' ').next().unwrap_or(&label).to_string();
                let id = format!("m:{:x}", self.next.fetch_add(1, Ordering::Relaxed));
                self.offers
                    .insert(id.clone(), (model, session.to_string(), now_ms + TTL_MS));
                (label, id)
            })
            .collect()
    }

    /// The model behind a button, if it is this session's and has not expired.
    pub fn take(&self, data: &str, session: &str, now_ms: i64) -> Pick {
        match self.offers.get(data).map(|e| e.value().clone()) {
            Some((_, owner_session, _)) if owner_session != session => Pick::Foreign,
            Some((model, _, exp)) if exp > now_ms => Pick::Model(model),
            _ => Pick::Expired,
        }
    }
}
