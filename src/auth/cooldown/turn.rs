//! What a turn uses of the cooldown book: its view from memory (checked against the
//! database at most every `state::RECHECK_EVERY`, on the blocking pool) and its
//! records, written on the blocking pool. Nothing here touches a file on an async
//! worker; a quiet success with nothing to clear makes no store call at all.

use super::{CooldownBook, CooldownView, Standing};
use crate::providers::ProviderError;
use crate::state::{StoreError, blocking};
use std::sync::Arc;

impl CooldownBook {
    /// The in-memory copy as it is, if it was ever loaded (no database call).
    pub(super) fn snapshot(&self) -> Option<CooldownView> {
        let cache = self.cache.lock().ok()?;
        cache.version.map(|_| CooldownView {
            rows: cache.rows.clone(),
            last_used: cache.last_used.clone(),
        })
    }

    /// A turn's view: from memory, checked against the database (on the blocking pool)
    /// when the last check is `state::RECHECK_EVERY` old. A database that cannot be read
    /// leaves the last known state in force.
    pub async fn view_async(self: &Arc<Self>) -> CooldownView {
        if !self.recheck.due()
            && let Some(view) = self.snapshot()
        {
            return view;
        }
        let me = self.clone();
        match blocking(&self.db, move || Ok(me.view())).await {
            Ok(view) => view,
            Err(e) => {
                tracing::warn!("cooldown state unavailable: {e}");
                self.snapshot().unwrap_or_default()
            }
        }
    }

    /// [`record_failure`](Self::record_failure) on the blocking pool.
    pub async fn record_failure_async(
        self: &Arc<Self>,
        credential: &str,
        fingerprint: &str,
        model: &str,
        err: &ProviderError,
        now_ms: i64,
    ) -> Result<Option<Standing>, StoreError> {
        let (me, err) = (self.clone(), err.clone());
        let (credential, fingerprint, model) = (
            credential.to_string(),
            fingerprint.to_string(),
            model.to_string(),
        );
        blocking(&self.db, move || {
            me.record_failure(&credential, &fingerprint, &model, &err, now_ms)
        })
        .await
    }

    /// [`record_success`](Self::record_success) on the blocking pool.
    pub async fn record_success_async(
        self: &Arc<Self>,
        credential: &str,
        model: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let me = self.clone();
        let (credential, model) = (credential.to_string(), model.to_string());
        blocking(&self.db, move || {
            me.record_success(&credential, &model, now_ms)
        })
        .await
    }

    /// [`record_success_quiet`](Self::record_success_quiet) for a turn: when the view the
    /// turn started from has no cooldown for the credential there is nothing to clear,
    /// and no store call is made at all.
    pub async fn record_success_quiet_async(
        self: &Arc<Self>,
        credential: &str,
        model: &str,
    ) -> Result<(), StoreError> {
        if self
            .snapshot()
            .is_some_and(|v| !v.has_state(credential, model))
        {
            return Ok(());
        }
        let me = self.clone();
        let (credential, model) = (credential.to_string(), model.to_string());
        blocking(&self.db, move || {
            me.record_success_quiet(&credential, &model)
        })
        .await
    }
}
