//! The images check of a turn (DESIGN §10). When the messages carry images: models
//! whose `[agents.defaults.models."<ref>"]` entry says `images = false` leave the chain,
//! and a first model (chosen or default) that takes none ends the turn before any
//! provider call; a provider's HTTP refusal of the request then reads as the model
//! refusing the image, in the provider's own words. Pure: no I/O.

use super::{TurnError, TurnResult};
use crate::catalog::{Catalog, ModelRef};
use crate::config::{AgentDefaults, Config};
use crate::media::MAX_IMAGES;
use crate::providers::{ChatMessage, ErrorKind, ProviderError};

/// Whether any message of the turn carries an image.
pub(super) fn carried(messages: &[ChatMessage]) -> bool {
    messages.iter().any(|m| !m.images.is_empty())
}

/// Whether `model` takes image input: false only when a `models` entry naming it says
/// `images = false` (keys are parsed as the catalog parses them, so spellings match).
pub(super) fn accepts(defaults: &AgentDefaults, model: &ModelRef) -> bool {
    !defaults.models.iter().any(|(key, entry)| {
        entry.images == Some(false) && ModelRef::parse(key, "anthropic").as_ref() == Ok(model)
    })
}

/// The chain for a turn (unchanged without images). With images: no message may carry
/// more than `MAX_IMAGES` (channels check this already; this is the last line), the
/// first model must take images (else `ImagesNotAccepted`, naming a model that does),
/// and later ones that do not are skipped. `Err` is the finished turn: no provider call.
pub(super) fn chain(
    config: &Config,
    catalog: &Catalog,
    messages: &[ChatMessage],
    chain: Vec<ModelRef>,
) -> Result<Vec<ModelRef>, Box<TurnResult>> {
    if !carried(messages) {
        return Ok(chain);
    }
    let defaults = &config.agents.defaults;
    let first = chain
        .first()
        .cloned()
        .unwrap_or_else(|| catalog.default.clone());
    let error = if messages.iter().any(|m| m.images.len() > MAX_IMAGES) {
        TurnError::TooManyImages
    } else if !accepts(defaults, &first) {
        TurnError::ImagesNotAccepted {
            model: first.to_string(),
            instead: suggestion(defaults, catalog, &first),
        }
    } else {
        return Ok(chain.into_iter().filter(|m| accepts(defaults, m)).collect());
    };
    tracing::info!(model = %first, "{error}");
    Err(Box::new(TurnResult {
        reply: String::new(),
        model: first,
        credential: None,
        attempts: Vec::new(),
        usage: None,
        error: Some(error),
    }))
}

/// The end of the `ImagesNotAccepted` message.
pub(super) fn switch_hint(instead: &Option<String>) -> String {
    match instead {
        Some(m) => format!("switch to a model that does with `/model {m}`"),
        None => "switch with `/model <a model that takes images>`".to_string(),
    }
}

/// A model to switch to that takes images, as `/model` accepts it (its alias when it has
/// one): the default, a fallback, or an allowlisted model, in that order.
fn suggestion(defaults: &AgentDefaults, catalog: &Catalog, refused: &ModelRef) -> Option<String> {
    std::iter::once(&catalog.default)
        .chain(&catalog.fallbacks)
        .chain(catalog.allowed.keys())
        .find(|m| *m != refused && accepts(defaults, m))
        .map(|m| {
            catalog
                .alias_of(m)
                .map_or_else(|| m.to_string(), str::to_string)
        })
}

/// A turn with images that a provider refused over HTTP (a 4xx request error, not a
/// reply it could not read) becomes `ImageRefused`; any other error stays as it is.
pub(super) fn refusal(images: bool, model: &ModelRef, error: TurnError) -> TurnError {
    match error {
        TurnError::Provider(e)
            if images
                && e.kind == ErrorKind::Format
                && e.status.is_some_and(|s| (400..500).contains(&s)) =>
        {
            TurnError::ImageRefused {
                model: model.to_string(),
                said: provider_words(&e),
                status: e.status.unwrap_or(400),
                error: e,
            }
        }
        other => other,
    }
}

/// The provider's own message out of a classified error
/// (`<provider>: <kind> (HTTP 400 <code>): <message>`); the whole text when it has
/// another form.
fn provider_words(e: &ProviderError) -> String {
    match e.message.split_once("): ") {
        Some((_, said)) if !said.trim().is_empty() => said.trim().to_string(),
        _ => e.message.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(text: &str) -> Config {
        crate::config::parse(std::path::Path::new("t.toml"), text).expect("valid config")
    }

    fn m(s: &str) -> ModelRef {
        ModelRef::parse(s, "anthropic").unwrap()
    }

    /// One user message carrying `n` images.
    fn with_images(n: usize) -> Vec<ChatMessage> {
        let bytes = bytes::Bytes::from_static(b"GIF89a");
        let img = crate::media::ImagePart::from_bytes("a", bytes, 10).unwrap();
        let mut msg = ChatMessage::user("x");
        msg.images = vec![img; n];
        vec![ChatMessage::system("s"), msg]
    }

    fn refused(r: Result<Vec<ModelRef>, Box<TurnResult>>) -> String {
        let turn = r.unwrap_err();
        assert!(turn.attempts.is_empty() && turn.credential.is_none());
        turn.error.unwrap().to_string()
    }

    const CONFIG: &str = r#"
[agents.defaults.model]
primary = "openai/gpt-text"
fallbacks = ["openai/gpt-4o", "google/gemini-text"]
[agents.defaults.models."openai/gpt-text"]
images = false
[agents.defaults.models."Gemini/gemini-text"]
images = false
[agents.defaults.models."openai/gpt-4o"]
alias = "four"
"#;

    #[test]
    fn models_without_images_leave_the_chain_and_a_first_one_ends_the_turn() {
        let c = cfg(CONFIG);
        let catalog = Catalog::from_config(&c);
        let one = with_images(1);
        assert!(
            !accepts(&c.agents.defaults, &m("google/gemini-text")),
            "keys match as parsed"
        );
        assert_eq!(
            refused(chain(&c, &catalog, &one, catalog.chain(None))),
            "openai/gpt-text does not accept images — send text only, or switch to a model that does with `/model four`"
        );
        let chosen = m("anthropic/claude-x");
        let only = chain(&c, &catalog, &one, catalog.chain(Some(&chosen))).unwrap();
        assert_eq!(only, [chosen]);
        let with_fallbacks = vec![m("openai/gpt-4o"), m("google/gemini-text"), m("a/b")];
        assert_eq!(
            chain(&c, &catalog, &one, with_fallbacks).unwrap(),
            [m("openai/gpt-4o"), m("a/b")]
        );
        // Without images the chain is what it was.
        let text = [ChatMessage::user("hi")];
        assert_eq!(
            chain(&c, &catalog, &text, catalog.chain(None)).unwrap(),
            catalog.chain(None)
        );
    }

    #[test]
    fn five_images_in_one_message_end_the_turn() {
        let c = cfg(CONFIG);
        let catalog = Catalog::from_config(&c);
        let chosen = vec![m("openai/gpt-4o")];
        assert_eq!(
            refused(chain(&c, &catalog, &with_images(5), chosen.clone())),
            "a message may carry at most 4 images — send the others in another message"
        );
        assert!(chain(&c, &catalog, &with_images(4), chosen).is_ok());
    }

    #[test]
    fn with_no_model_that_takes_images_the_reply_still_says_what_to_do() {
        let c = cfg(
            "[agents.defaults.model]\nprimary = \"openai/t\"\n[agents.defaults.models.\"openai/t\"]\nimages = false\n",
        );
        let catalog = Catalog::from_config(&c);
        assert_eq!(
            refused(chain(&c, &catalog, &with_images(1), catalog.chain(None))),
            "openai/t does not accept images — send text only, or switch with `/model <a model that takes images>`"
        );
    }

    #[test]
    fn a_provider_400_on_a_turn_with_images_is_reported_in_its_own_words() {
        let body = r#"{"type":"error","error":{"type":"invalid_request_error","message":"messages.0.content.0.image.source.base64: image exceeds 5 MB maximum"}}"#;
        let e = crate::providers::error::classify("anthropic", Some(400), None, body);
        let model = m("anthropic/claude-x");
        let turned = refusal(true, &model, TurnError::Provider(e.clone()));
        assert_eq!(
            turned.to_string(),
            "anthropic/claude-x refused the image (HTTP 400): messages.0.content.0.image.source.base64: image exceeds 5 MB maximum — send a smaller image (PNG or JPEG), or text only"
        );
        assert_eq!(turned.kind(), Some(ErrorKind::Format));
        // Without images, or for a reply that could not be read, nothing changes.
        assert!(matches!(
            refusal(false, &model, TurnError::Provider(e)),
            TurnError::Provider(_)
        ));
        let unreadable = crate::providers::ProviderError::new(ErrorKind::Format, "x");
        assert!(matches!(
            refusal(true, &model, TurnError::Provider(unreadable)),
            TurnError::Provider(_)
        ));
    }
}
