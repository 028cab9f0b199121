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

/// Turn outcomes shown from the start: `ok` and the provider error kinds of
/// `agent --json`, plus a turn that found no credential.
const TURN_OUTCOMES: &[&str] = &[
    "ok",
    "rate_limit",
    "billing",
    "auth",
    "overloaded",
    "timeout",
    "format",
    "unknown",
    "no_credentials",
];

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
        // The series every gateway has, at 0 from the start, so a scrape (and a rate())
        // sees them before the first turn or message.
        for outcome in TURN_OUTCOMES {
            turns
                .get_or_create(&OutcomeLabels {
                    outcome: (*outcome).to_string(),
                })
                .get();
        }
        for channel in ["telegram", "discord", "web", "http", "local"] {
            for direction in ["in", "out"] {
                messages
                    .get_or_create(&MessageLabels { channel, direction })
                    .get();
            }
        }
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

    /// The Prometheus text format, version 0.0.4 (what `/metrics` serves as
    /// `text/plain; version=0.0.4`).
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        openmetrics_to_text(&out)
    }
}

/// prometheus-client writes OpenMetrics, where a counter family `x` has samples named
/// `x_total` and the text ends with `# EOF`. In the 0.0.4 text format a family's HELP
/// and TYPE lines carry the samples' own name (`# TYPE x_total counter`) and there is no
/// EOF marker; without this a 0.0.4 parser sees an empty counter `x` and an untyped
/// `x_total`.
fn openmetrics_to_text(om: &str) -> String {
    let counters: std::collections::HashSet<&str> = om
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(om.len() + 16 * counters.len());
    for line in om.lines() {
        if line == "# EOF" {
            continue;
        }
        let meta = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|p| line.strip_prefix(p).map(|rest| (p, rest)));
        match meta {
            Some((prefix, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                out.push_str(prefix);
                out.push_str(name);
                if counters.contains(name) && !name.ends_with("_total") {
                    out.push_str("_total");
                }
                if !tail.is_empty() {
                    out.push(' ');
                    out.push_str(tail);
                }
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_typed_under_their_sample_names_and_no_eof() {
        let m = Metrics::new();
        m.message("web", "in");
        let text = m.render();
        assert!(
            text.contains("# TYPE remoteclaw_messages_total counter\n"),
            "{text}"
        );
        assert!(
            text.contains("# HELP remoteclaw_messages_total Chat messages"),
            "{text}"
        );
        assert!(
            text.contains("remoteclaw_messages_total{channel=\"web\",direction=\"in\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE remoteclaw_turns_in_flight gauge\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE remoteclaw_turn_duration_seconds histogram\n"),
            "{text}"
        );
        assert!(!text.contains("# EOF"), "{text}");
        // Every sample line belongs to the family whose TYPE line precedes it.
        let mut family = String::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                family = rest.split(' ').next().unwrap_or("").to_string();
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap_or("");
                let base = ["_bucket", "_sum", "_count"]
                    .into_iter()
                    .find_map(|s| name.strip_suffix(s))
                    .unwrap_or(name);
                assert!(name == family || base == family, "{line} under {family}");
            }
        }
    }

    #[test]
    fn a_fresh_registry_already_shows_the_turn_and_message_series() {
        let text = Metrics::new().render();
        assert!(
            text.contains("remoteclaw_turns_total{outcome=\"ok\"} 0\n"),
            "{text}"
        );
        for channel in ["telegram", "discord", "web", "http", "local"] {
            for direction in ["in", "out"] {
                let series = format!(
                    "remoteclaw_messages_total{{channel=\"{channel}\",direction=\"{direction}\"}} 0\n"
                );
                assert!(text.contains(&series), "{series} in {text}");
            }
        }
    }
}
