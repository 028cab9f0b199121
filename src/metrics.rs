//! Prometheus metrics for `/metrics` (DESIGN §11): turns by outcome, provider attempts,
//! in-flight turns, turn latency, active cooldowns, messages per channel and direction,
//! OAuth refreshes. Labels never carry secrets or message text.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AttemptLabels {
    pub provider: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MessageLabels {
    /// telegram | discord | web | http | local
    pub channel: &'static str,
    /// in | out
    pub direction: &'static str,
}

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub turns: Family<OutcomeLabels, Counter>,
    pub attempts: Family<AttemptLabels, Counter>,
    pub in_flight: Gauge,
    pub turn_seconds: Histogram,
    /// Credentials cooling down or disabled now (set when `/metrics` is read).
    pub active_cooldowns: Gauge,
    pub messages: Family<MessageLabels, Counter>,
    /// OAuth refreshes by provider and outcome (`ok`, `refresh_failed`, `refresh_unavailable`).
    pub oauth_refreshes: Family<AttemptLabels, Counter>,
}

/// The `channel` label of a session key (`telegram:…`, `discord:…`, `web:…`, `local:…`).
pub fn channel_of(session: &str) -> &'static str {
    match session.split(':').next() {
        Some("telegram") => "telegram",
        Some("discord") => "discord",
        Some("web") => "web",
        _ => "local",
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("remoteclaw");
        let turns = Family::<OutcomeLabels, Counter>::default();
        let attempts = Family::<AttemptLabels, Counter>::default();
        let in_flight = Gauge::default();
        let turn_seconds =
            Histogram::new([0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0]);
        registry.register("turns", "Chat turns by outcome", turns.clone());
        registry.register(
            "provider_attempts",
            "Provider calls by provider and outcome",
            attempts.clone(),
        );
        registry.register(
            "turns_in_flight",
            "Turns being answered now",
            in_flight.clone(),
        );
        registry.register(
            "turn_duration_seconds",
            "Time from a turn's start to its last byte",
            turn_seconds.clone(),
        );
        let active_cooldowns = Gauge::default();
        registry.register(
            "active_cooldowns",
            "Credentials cooling down or disabled now",
            active_cooldowns.clone(),
        );
        let messages = Family::<MessageLabels, Counter>::default();
        registry.register(
            "messages",
            "Chat messages by channel and direction (in: received, out: replies sent)",
            messages.clone(),
        );
        let oauth_refreshes = Family::<AttemptLabels, Counter>::default();
        registry.register(
            "oauth_refreshes",
            "OAuth token refreshes by provider and outcome",
            oauth_refreshes.clone(),
        );
        Metrics {
            registry,
            turns,
            attempts,
            in_flight,
            turn_seconds,
            active_cooldowns,
            messages,
            oauth_refreshes,
        }
    }

    /// Count a message of `channel` going `direction` (`in` or `out`).
    pub fn message(&self, channel: &'static str, direction: &'static str) {
        self.messages
            .get_or_create(&MessageLabels { channel, direction })
            .inc();
    }

    /// Count an OAuth refresh of `provider`.
    pub fn refresh(&self, provider: &str, outcome: &str) {
        self.oauth_refreshes
            .get_or_create(&AttemptLabels {
                provider: provider.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
