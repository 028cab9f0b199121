//! Property tests: `parse` never panics, its offsets are sound, and every directive it
//! returns prints as text that parses back to the same directive.

use super::*;
use proptest::prelude::*;

fn aliases() -> BTreeSet<String> {
    ["opus", "sonnet", "gpt-4o", "a", "3", "list", "é"]
        .iter()
        .map(|a| (*a).to_owned())
        .collect()
}

/// Strings over the characters the grammar cares about.
fn interesting() -> impl Strategy<Value = String> {
    prop_oneof![
        "[/model@: \t\nabc0123.\\-_é]{0,40}",
        "[/@:.\\- \tMODELmodelnewresthlpOurBot0-9é🌍\u{a0}\u{2028}]{0,40}",
        // Concatenations of meaningful pieces.
        prop::collection::vec(
            prop::sample::select(vec![
                "/model",
                "/MODEL",
                "/new",
                "/reset",
                "/help",
                "/opus",
                "/OPUS",
                "/3",
                "/list",
                "@OurBot",
                "@other",
                "@",
                ":",
                " ",
                "\t",
                "\n",
                "\u{a0}",
                "list",
                "Status",
                "default",
                "opus",
                "12",
                "20251001",
                "v1.2",
                "anthropic:work",
                "/",
                ".",
                "é",
                "🌍",
                "openai/",
                "x",
            ]),
            0..10,
        )
        .prop_map(|pieces| pieces.concat()),
    ]
}

fn bot() -> impl Strategy<Value = Option<&'static str>> {
    prop::sample::select(vec![None, Some("OurBot"), Some("ourbot"), Some("@OurBot")])
}

/// Invariants of one result; panics (fails the property) on a violation.
fn check(text: &str, ctx: &ParseContext<'_>) {
    let parsed = parse(text, ctx);
    if !text.contains('/') {
        assert_eq!(parsed, Parsed::Plain);
    }
    let Parsed::Directive {
        directive,
        start,
        end,
        rest,
    } = parsed
    else {
        if let Parsed::Error { error, rest } = parsed {
            assert!(text.is_char_boundary(error.offset()));
            assert!(error.offset() < text.len());
            assert_eq!(crate::directive::tidy(&rest), rest);
        }
        return;
    };
    assert!(start < end && end <= text.len());
    assert!(text.is_char_boundary(start) && text.is_char_boundary(end));
    assert!(text[start..].starts_with('/'));
    assert_eq!(crate::directive::tidy(&rest), rest);
    // Nothing but the directive and the blanks around it is removed.
    let kept: String = text[..start]
        .chars()
        .chain(text[end..].chars())
        .filter(|c| !c.is_whitespace())
        .collect();
    let got: String = rest.chars().filter(|c| !c.is_whitespace()).collect();
    assert_eq!(got, kept);

    let canonical = directive.to_string();
    match parse(&canonical, ctx) {
        Parsed::Directive {
            directive: again,
            start,
            end,
            rest,
        } => {
            assert_eq!(again, directive, "{canonical:?} from {text:?}");
            assert_eq!((start, end), (0, canonical.len()), "{canonical:?}");
            assert_eq!(rest, "", "{canonical:?}");
        }
        other => panic!("{canonical:?} (from {text:?}) parses to {other:?}"),
    }
}

/// Cases the properties found (CI seeds are not kept): a model ending in `.` or `:`
/// before an empty profile side must print as text that reads back the same.
#[test]
fn found_cases_hold() {
    let aliases = aliases();
    for text in [
        "/MODEL\u{a0}/help:@",
        "/model opus:@",
        "/model opus.@ thanks",
        "/model :@",
        "/model .@",
        "/model a.:@work",
        "/model x:@20251001",
    ] {
        for bot in [None, Some("OurBot")] {
            check(
                text,
                &ParseContext {
                    bot_username: bot,
                    aliases: &aliases,
                },
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn never_panics_on_any_string(text in any::<String>(), bot in bot()) {
        let aliases = aliases();
        check(&text, &ParseContext { bot_username: bot, aliases: &aliases });
    }

    #[test]
    fn sound_on_interesting_strings(text in interesting(), bot in bot()) {
        let aliases = aliases();
        check(&text, &ParseContext { bot_username: bot, aliases: &aliases });
    }

    #[test]
    fn split_never_panics_and_rejoins(arg in "[a-z0-9@/:.é-]{0,24}") {
        let (model, profile) = split_model_profile(&arg);
        match profile {
            // No profile: the whole argument, or the model before an `@` with nothing after.
            None if model.len() < arg.len() => {
                prop_assert_eq!(format!("{model}@"), arg.clone());
            }
            None => prop_assert_eq!(model, arg.as_str()),
            Some(profile) => {
                prop_assert!(!model.is_empty() && !profile.is_empty());
                prop_assert_eq!(format!("{model}@{profile}"), arg.clone());
                prop_assert!(!profile.contains('/'));
            }
        }
    }

    #[test]
    fn selected_model_round_trips(
        model in "[A-Za-z][A-Za-z0-9_.:/-]{0,20}[A-Za-z0-9]",
        profile in proptest::option::of("[a-z][a-z0-9_-]{0,10}(:[a-z0-9_-]{1,10})?"),
        before in "[a-zé🌍 ]{0,8}",
    ) {
        let aliases = BTreeSet::new();
        let ctx = ParseContext { bot_username: None, aliases: &aliases };
        let text = match &profile {
            Some(p) => format!("{before} /model {model}@{p} after"),
            None => format!("{before} /model {model} after"),
        };
        check(&text, &ctx);
    }
}
