//! Prometheus metrics for `/metrics`: turns, provider attempts, in-flight turns and
//! turn latency. Labels never carry secrets or message text.

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

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub turns: Family<OutcomeLabels, Counter>,
    pub attempts: Family<AttemptLabels, Counter>,
    pub in_flight: Gauge,
    pub turn_seconds: Histogram,
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
        Metrics {
            registry,
            turns,
            attempts,
            in_flight,
            turn_seconds,
        }
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
