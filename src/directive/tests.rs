//! The parser's table: `(message, bot username, expected)` for every rule of DESIGN §4.

use super::*;

/// The aliases every case is parsed with (the `ParseContext` holds them lower-cased).
const ALIASES: [&str; 5] = ["opus", "sonnet", "gpt-4o", "haiku-4.5", "or/free"];
const OURS: Option<&str> = Some("OurBot");

/// What a case expects.
enum Want {
    Plain,
    NotForUs,
    /// The directive, the exact text of `start..end`, and the rest.
    Dir(Directive, &'static str, &'static str),
    /// The error and the rest.
    Bad(DirectiveError, &'static str),
}
use Want::{Bad, Dir, NotForUs, Plain};

fn sel(model: &str) -> Directive {
    Directive::ModelSelect {
        model: model.into(),
        profile: None,
    }
}

fn pin(model: &str, profile: &str) -> Directive {
    Directive::ModelSelect {
        model: model.into(),
        profile: Some(profile.into()),
    }
}

fn needs(input: &str, profile: &str, offset: usize) -> DirectiveError {
    DirectiveError::ProfileNeedsModel {
        input: input.into(),
        profile: profile.into(),
        offset,
    }
}

fn numeric(input: &str, offset: usize) -> DirectiveError {
    DirectiveError::NumericModel {
        input: input.into(),
        offset,
    }
}

fn aliases() -> BTreeSet<String> {
    ALIASES.iter().map(|a| (*a).to_owned()).collect()
}

#[rustfmt::skip]
fn cases() -> Vec<(&'static str, Option<&'static str>, Want)> {
    use Directive::{Help, ModelDefault, ModelList, ModelShow, ModelStatus, New, Reset};
    vec![
        // --- DESIGN §4, one per bullet ---
        ("/model", OURS, Dir(ModelShow, "/model", "")),
        ("/model list", OURS, Dir(ModelList, "/model list", "")),
        ("/model status", OURS, Dir(ModelStatus, "/model status", "")),
        ("/model opus", OURS, Dir(sel("opus"), "/model opus", "")),
        ("/model anthropic/claude-opus-4-5", OURS, Dir(sel("anthropic/claude-opus-4-5"), "/model anthropic/claude-opus-4-5", "")),
        ("/model opus@anthropic:work", OURS, Dir(pin("opus", "anthropic:work"), "/model opus@anthropic:work", "")),
        ("/model default", OURS, Dir(ModelDefault, "/model default", "")),
        ("/opus", OURS, Dir(sel("opus"), "/opus", "")),
        ("/new", OURS, Dir(New, "/new", "")),
        ("/reset", OURS, Dir(Reset, "/reset", "")),
        ("/help", OURS, Dir(Help, "/help", "")),
        ("/MODEL", OURS, Dir(ModelShow, "/MODEL", "")),
        ("/Model list", OURS, Dir(ModelList, "/Model list", "")),
        ("/models", OURS, Plain),
        ("/model/x", OURS, Plain),
        ("a/model", OURS, Plain),
        ("/model@OurBot", OURS, Dir(ModelShow, "/model@OurBot", "")),
        ("/model@OtherBot", OURS, NotForUs),
        ("/model opus summarise this", OURS, Dir(sel("opus"), "/model opus", "summarise this")),
        ("/model status@x", OURS, Bad(needs("status@x", "x", 7), "")),
        ("/model list@work", OURS, Bad(needs("list@work", "work", 7), "")),
        ("/model default@p", OURS, Bad(needs("default@p", "p", 7), "")),
        ("/model 3", OURS, Bad(numeric("3", 7), "")),
        ("/model 12@work", OURS, Bad(numeric("12@work", 7), "")),
        ("/model opus /model sonnet", OURS, Dir(sel("opus"), "/model opus", "/model sonnet")),
        ("/model openai/@cf/openai/gpt-oss-20b@cf:default", OURS, Dir(pin("openai/@cf/openai/gpt-oss-20b", "cf:default"), "/model openai/@cf/openai/gpt-oss-20b@cf:default", "")),
        ("/model flash@google-gemini-cli:me@gmail.com", OURS, Dir(pin("flash", "google-gemini-cli:me@gmail.com"), "/model flash@google-gemini-cli:me@gmail.com", "")),
        ("/model claude-haiku@20251001", OURS, Dir(sel("claude-haiku@20251001"), "/model claude-haiku@20251001", "")),
        ("/model claude-haiku@20251001@work", OURS, Dir(pin("claude-haiku@20251001", "work"), "/model claude-haiku@20251001@work", "")),
        ("/model anthropic/claude-opus-4-5@anthropic:work", OURS, Dir(pin("anthropic/claude-opus-4-5", "anthropic:work"), "/model anthropic/claude-opus-4-5@anthropic:work", "")),
        ("/model gpt@v1.2.3", OURS, Dir(sel("gpt@v1.2.3"), "/model gpt@v1.2.3", "")),
        ("/model gpt@1234", OURS, Dir(sel("gpt@1234"), "/model gpt@1234", "")),
        ("/model @work", OURS, Dir(sel("@work"), "/model @work", "")),
        ("/model opus@", OURS, Dir(sel("opus"), "/model opus@", "")),
        ("/model z.ai/glm-4.6", OURS, Dir(sel("z.ai/glm-4.6"), "/model z.ai/glm-4.6", "")),
        ("/model Anthropic/Claude-Opus-4-5@Anthropic:Work", OURS, Dir(pin("Anthropic/Claude-Opus-4-5", "Anthropic:Work"), "/model Anthropic/Claude-Opus-4-5@Anthropic:Work", "")),
        ("/model a@b/c@d", OURS, Dir(pin("a@b/c", "d"), "/model a@b/c@d", "")),
        ("/model opus@v2", OURS, Dir(sel("opus@v2"), "/model opus@v2", "")),
        // --- Telegram bot suffixes ---
        ("/model@OurBot opus", OURS, Dir(sel("opus"), "/model@OurBot opus", "")),
        ("/model@ourbot opus", OURS, Dir(sel("opus"), "/model@ourbot opus", "")),
        ("/model@OURBOT list", OURS, Dir(ModelList, "/model@OURBOT list", "")),
        ("/model@OurBot: opus", OURS, Dir(sel("opus"), "/model@OurBot: opus", "")),
        ("/model@OurBot:opus@anthropic:work", OURS, Dir(pin("opus", "anthropic:work"), "/model@OurBot:opus@anthropic:work", "")),
        ("/model@OurBot opus", Some("@OurBot"), Dir(sel("opus"), "/model@OurBot opus", "")),
        ("/model@OtherBot opus", OURS, NotForUs),
        ("/model@OurBot opus", None, Bad(DirectiveError::SuffixHere { input: "/model@OurBot opus".into(), hint: "/model opus".into(), offset: 0 }, "")),
        ("/model@OurBot2 opus", OURS, NotForUs),
        ("/new@OurBot", OURS, Dir(New, "/new@OurBot", "")),
        ("/new@OtherBot hello", OURS, NotForUs),
        ("/help@OurBot", OURS, Dir(Help, "/help@OurBot", "")),
        ("/reset@OurBot please", OURS, Dir(Reset, "/reset@OurBot", "please")),
        ("/model@", OURS, Plain),
        ("/model@ opus", OURS, Plain),
        ("/model@Our-Bot", OURS, Plain),
        ("/model@OurBot/x", OURS, Plain),
        ("/model@OurBot.", OURS, Plain),
        ("/model@Bot@OurBot", OURS, Plain),
        ("hi /model@OtherBot /new", OURS, NotForUs),
        ("hi /new /model@OtherBot", OURS, Dir(New, "/new", "hi /model@OtherBot")),
        ("/foo@OtherBot", OURS, Plain),
        ("/opus@OurBot", OURS, Dir(sel("opus"), "/opus@OurBot", "")),
        ("/opus@ourbot: hi", OURS, Dir(sel("opus"), "/opus@ourbot:", "hi")),
        ("/opus@work", OURS, NotForUs),
        ("/opus@anthropic:work", OURS, NotForUs),
        // --- the `:` form ---
        ("/model:opus", OURS, Dir(sel("opus"), "/model:opus", "")),
        ("/model: opus", OURS, Dir(sel("opus"), "/model: opus", "")),
        ("/model:\topus thanks", OURS, Dir(sel("opus"), "/model:\topus", "thanks")),
        ("/model:", OURS, Dir(ModelShow, "/model:", "")),
        ("/model: ", OURS, Dir(ModelShow, "/model:", "")),
        ("/model: list", OURS, Dir(ModelList, "/model: list", "")),
        ("/MODEL:STATUS", OURS, Dir(ModelStatus, "/MODEL:STATUS", "")),
        ("/model:\nopus", OURS, Dir(ModelShow, "/model:", "opus")),
        ("/model::opus", OURS, Dir(sel(":opus"), "/model::opus", "")),
        ("/model : opus", OURS, Dir(ModelShow, "/model", ": opus")),
        ("/new: hello", OURS, Dir(New, "/new:", "hello")),
        ("/new:hello", OURS, Dir(New, "/new:", "hello")),
        ("/help:", OURS, Dir(Help, "/help:", "")),
        // --- keywords, any case ---
        ("/model lIsT", OURS, Dir(ModelList, "/model lIsT", "")),
        ("/model STATUS", OURS, Dir(ModelStatus, "/model STATUS", "")),
        ("/model Default", OURS, Dir(ModelDefault, "/model Default", "")),
        ("/model status please", OURS, Dir(ModelStatus, "/model status", "please")),
        ("/model list.", OURS, Dir(ModelList, "/model list", ".")),
        ("/model status@", OURS, Dir(ModelStatus, "/model status@", "")),
        ("/model listing", OURS, Dir(sel("listing"), "/model listing", "")),
        ("/model defaults", OURS, Dir(sel("defaults"), "/model defaults", "")),
        ("/model list/x", OURS, Dir(sel("list/x"), "/model list/x", "")),
        // --- errors, with their offsets ---
        ("/model STATUS@Work", OURS, Bad(needs("STATUS@Work", "Work", 7), "")),
        ("/model status@1234", OURS, Bad(needs("status@1234", "1234", 7), "")),
        ("/model@OurBot status@work", OURS, Bad(needs("status@work", "work", 14), "")),
        ("/model: default@anthropic:work now", OURS, Bad(needs("default@anthropic:work", "anthropic:work", 8), "now")),
        ("please /model 3 now", OURS, Bad(numeric("3", 14), "please now")),
        ("héllo /model 12@work", OURS, Bad(numeric("12@work", 14), "héllo")),
        ("/model: 42", OURS, Bad(numeric("42", 8), "")),
        ("/model 0.", OURS, Bad(numeric("0", 7), ".")),
        ("/model 12@20251001", OURS, Bad(numeric("12@20251001", 7), "")),
        ("/model 3 /model opus", OURS, Bad(numeric("3", 7), "/model opus")),
        ("🌍 /model\u{a0}list@x", OURS, Bad(needs("list@x", "x", 13), "🌍")),
        // --- Unicode before / after ---
        ("héllo /model opus 🌍", OURS, Dir(sel("opus"), "/model opus", "héllo 🌍")),
        ("🌍 /new 🌍", OURS, Dir(New, "/new", "🌍 🌍")),
        ("日本語 /model sonnet", OURS, Dir(sel("sonnet"), "/model sonnet", "日本語")),
        ("/model ¿qué?", OURS, Dir(ModelShow, "/model", "¿qué?")),
        ("/model opusé", OURS, Dir(sel("opus"), "/model opus", "é")),
        ("/modelé", OURS, Plain),
        ("/mödel opus", OURS, Plain),
        ("\u{a0}/model opus", OURS, Dir(sel("opus"), "/model opus", "")),
        ("/model\u{a0}opus", OURS, Dir(sel("opus"), "/model\u{a0}opus", "")),
        ("/model\u{3000}opus", OURS, Dir(sel("opus"), "/model\u{3000}opus", "")),
        ("/model\u{2028}opus", OURS, Dir(ModelShow, "/model", "opus")),
        ("é/model opus", OURS, Plain),
        // --- whitespace ---
        ("  /model   opus  ", OURS, Dir(sel("opus"), "/model   opus", "")),
        ("/model\topus", OURS, Dir(sel("opus"), "/model\topus", "")),
        ("\t/new\t\thello\t", OURS, Dir(New, "/new", "hello")),
        ("/model\nopus", OURS, Dir(ModelShow, "/model", "opus")),
        ("/model \n opus", OURS, Dir(ModelShow, "/model", " opus")),
        ("line one\n/model opus\nline two", OURS, Dir(sel("opus"), "/model opus", "line one\nline two")),
        ("/model opus\r\nthanks", OURS, Dir(sel("opus"), "/model opus", "thanks")),
        ("hello   world /new  again", OURS, Dir(New, "/new", "hello   world again")),
        ("/model ", OURS, Dir(ModelShow, "/model", "")),
        // --- punctuation after the argument ---
        ("/model opus.", OURS, Dir(sel("opus"), "/model opus", ".")),
        ("/model opus, thanks", OURS, Dir(sel("opus"), "/model opus", ", thanks")),
        ("/model opus?", OURS, Dir(sel("opus"), "/model opus", "?")),
        ("/model opus!", OURS, Dir(sel("opus"), "/model opus", "!")),
        ("/model opus:", OURS, Dir(sel("opus"), "/model opus", ":")),
        ("/model opus;", OURS, Dir(sel("opus"), "/model opus", ";")),
        ("/model opus...", OURS, Dir(sel("opus"), "/model opus", "...")),
        ("/model gpt-4.1.", OURS, Dir(sel("gpt-4.1"), "/model gpt-4.1", ".")),
        ("/model opus@work.", OURS, Dir(pin("opus", "work"), "/model opus@work", ".")),
        // An empty profile side keeps the punctuation before it in the model.
        ("/model opus:@", OURS, Dir(sel("opus:"), "/model opus:@", "")),
        ("/model (opus)", OURS, Dir(ModelShow, "/model", "(opus)")),
        ("/model ...", OURS, Dir(ModelShow, "/model", "...")),
        ("/model , x", OURS, Dir(ModelShow, "/model", ", x")),
        ("use /model opus.", OURS, Dir(sel("opus"), "/model opus", "use .")),
        // --- not directives ---
        ("/models list", OURS, Plain),
        ("/model-x", OURS, Plain),
        ("/modelx", OURS, Plain),
        ("/model,", OURS, Plain),
        ("a/model opus", OURS, Plain),
        ("x:/model", OURS, Plain),
        ("(/model opus)", OURS, Plain),
        ("http://x/model", OURS, Plain),
        ("//model", OURS, Plain),
        ("see https://example.com/a/b", OURS, Plain),
        ("hello there", OURS, Plain),
        ("", OURS, Plain),
        ("/", OURS, Plain),
        ("/ model", OURS, Plain),
        ("/help?", OURS, Plain),
        ("/new!", OURS, Plain),
        ("/model/x then /model opus", OURS, Dir(sel("opus"), "/model opus", "/model/x then")),
        ("a/model then /new", OURS, Dir(New, "/new", "a/model then")),
        ("/usr/bin/env then /reset", OURS, Dir(Reset, "/reset", "/usr/bin/env then")),
        // --- only the first directive is applied ---
        ("/new /reset", OURS, Dir(New, "/new", "/reset")),
        ("/model opus /new", OURS, Dir(sel("opus"), "/model opus", "/new")),
        ("/reset please /model   sonnet  now", OURS, Dir(Reset, "/reset", "please /model   sonnet  now")),
        ("/help /help", OURS, Dir(Help, "/help", "/help")),
        ("/opus /sonnet", OURS, Dir(sel("opus"), "/opus", "/sonnet")),
        // --- alias shortcuts ---
        ("/OPUS", OURS, Dir(sel("OPUS"), "/OPUS", "")),
        ("/Opus hello", OURS, Dir(sel("Opus"), "/Opus", "hello")),
        ("/opus extra text", OURS, Dir(sel("opus"), "/opus", "extra text")),
        ("/opus sonnet", OURS, Dir(sel("opus"), "/opus", "sonnet")),
        ("/opus: hi", OURS, Dir(sel("opus"), "/opus:", "hi")),
        ("tell /sonnet: hi", OURS, Dir(sel("sonnet"), "/sonnet:", "tell hi")),
        ("/gpt-4o", OURS, Dir(sel("gpt-4o"), "/gpt-4o", "")),
        ("/GPT-4O", OURS, Dir(sel("GPT-4O"), "/GPT-4O", "")),
        ("/haiku-4.5 hi", OURS, Dir(sel("haiku-4.5"), "/haiku-4.5", "hi")),
        ("/or/free", OURS, Dir(sel("or/free"), "/or/free", "")),
        ("/foo", OURS, Plain),
        ("/opus.", OURS, Plain),
        ("/opusx", OURS, Plain),
        ("/opus/x", OURS, Plain),
        ("/opus, please", OURS, Plain),
        // --- /new, /reset, /help with rest ---
        ("/new hello", OURS, Dir(New, "/new", "hello")),
        ("/new opus", OURS, Dir(New, "/new", "opus")),
        ("/reset  start over", OURS, Dir(Reset, "/reset", "start over")),
        ("/help me", OURS, Dir(Help, "/help", "me")),
        ("/NEW", OURS, Dir(New, "/NEW", "")),
        ("/Reset", OURS, Dir(Reset, "/Reset", "")),
        ("/HeLp", OURS, Dir(Help, "/HeLp", "")),
        ("please /new", OURS, Dir(New, "/new", "please")),
        ("/new\nfirst line\nsecond line", OURS, Dir(New, "/new", "first line\nsecond line")),
    ]
}

#[test]
fn table() {
    let aliases = aliases();
    let cases = cases();
    assert!(cases.len() >= 100, "only {} cases", cases.len());
    let mut failures = Vec::new();
    for (text, bot, want) in cases {
        let ctx = ParseContext {
            bot_username: bot,
            aliases: &aliases,
        };
        let got = parse(text, &ctx);
        let ok = match (&want, &got) {
            (Plain, Parsed::Plain) | (NotForUs, Parsed::NotForUs) => true,
            (
                Dir(want_d, want_span, want_rest),
                Parsed::Directive {
                    directive,
                    start,
                    end,
                    rest,
                },
            ) => {
                directive == want_d
                    && text.get(*start..*end) == Some(*want_span)
                    && rest == want_rest
            }
            (Bad(want_e, want_rest), Parsed::Error { error, rest }) => {
                error == want_e && rest == want_rest
            }
            _ => false,
        };
        if !ok {
            failures.push(format!("{text:?} (bot {bot:?}): got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn display_is_canonical() {
    use Directive::*;
    let cases = [
        (ModelShow, "/model"),
        (ModelList, "/model list"),
        (ModelStatus, "/model status"),
        (ModelDefault, "/model default"),
        (sel("opus"), "/model opus"),
        (pin("opus", "anthropic:work"), "/model opus@anthropic:work"),
        (New, "/new"),
        (Reset, "/reset"),
        (Help, "/help"),
    ];
    for (directive, text) in cases {
        assert_eq!(directive.to_string(), text);
    }
}

/// A hand-built value whose text re-splits differently is printed verbatim (documented on
/// `Directive`): the profile `1234` is version-like, so it reads back as part of the model.
#[test]
fn display_of_unsplittable_select_is_verbatim() {
    let aliases = BTreeSet::new();
    let ctx = ParseContext {
        bot_username: None,
        aliases: &aliases,
    };
    let odd = pin("gpt", "1234");
    assert_eq!(odd.to_string(), "/model gpt@1234");
    assert!(matches!(
        parse(&odd.to_string(), &ctx),
        Parsed::Directive { directive, .. } if directive == sel("gpt@1234")
    ));
}

#[test]
fn error_messages_are_exact() {
    assert_eq!(
        needs("status@x", "x", 7).to_string(),
        "\"status@x\": a profile override needs a model, e.g. /model opus@x"
    );
    assert_eq!(
        numeric("12@work", 7).to_string(),
        "\"12@work\": there is no numeric model picker in chat; use /model list and then \
         /model <alias-or-id>"
    );
    assert_eq!(needs("a", "b", 3).offset(), 3);
    assert_eq!(numeric("a", 9).offset(), 9);
}

#[test]
fn error_offset_points_at_the_argument() {
    let aliases = aliases();
    let ctx = ParseContext {
        bot_username: OURS,
        aliases: &aliases,
    };
    for text in [
        "/model 3",
        "héllo wörld 🌍 /model:  12@work tail",
        "x\t/model@OurBot status@work",
    ] {
        let Parsed::Error { error, .. } = parse(text, &ctx) else {
            panic!("{text:?} is not an error");
        };
        let input = match &error {
            DirectiveError::ProfileNeedsModel { input, .. }
            | DirectiveError::NumericModel { input, .. }
            | DirectiveError::SuffixHere { input, .. } => input,
        };
        assert_eq!(
            text.get(error.offset()..)
                .map(|t| t.starts_with(input.as_str())),
            Some(true)
        );
    }
}

/// Regression: `agent --message "/opus@work"` printed nothing and exited 0 — the
/// terminal has no bot name, so the suffix was taken for another bot's.
#[test]
fn opus_at_work_in_the_terminal_is_explained_not_ignored() {
    let aliases = aliases();
    let ctx = ParseContext {
        bot_username: None,
        aliases: &aliases,
    };
    match parse("/opus@work", &ctx) {
        Parsed::Error { error, .. } => assert_eq!(
            error.to_string(),
            "\"/opus@work\": an @suffix after a command names a bot, and there is none here; did you mean /model opus@work?"
        ),
        other => panic!("{other:?}"),
    }
    // A profile id's `:` is part of what was typed: quoted whole, suggested whole.
    match parse("/opus@anthropic:work please", &ctx) {
        Parsed::Error { error, .. } => assert_eq!(
            error.to_string(),
            "\"/opus@anthropic:work\": an @suffix after a command names a bot, and there is none here; did you mean /model opus@anthropic:work?"
        ),
        other => panic!("{other:?}"),
    }
    match parse("/model@SomeBot list", &ctx) {
        Parsed::Error { error, .. } => assert!(
            error.to_string().contains("did you mean /model list?"),
            "{error}"
        ),
        other => panic!("{other:?}"),
    }
}

/// Regression: the rest of a message after a directive had its whitespace collapsed, so
/// pasted code lost its newlines and indentation (DESIGN §8: text as written).
#[test]
fn rest_after_a_directive_keeps_newlines_and_indentation() {
    let aliases = aliases();
    let ctx = ParseContext {
        bot_username: OURS,
        aliases: &aliases,
    };
    let text = "/model opus\n\ndef f():\n    return  1\n";
    let Parsed::Directive { rest, .. } = parse(text, &ctx) else {
        panic!("not a directive");
    };
    assert_eq!(rest, "def f():\n    return  1");
    let Parsed::Directive { rest, .. } = parse("look:\n  a  b\n/new\n    c", &ctx) else {
        panic!("not a directive");
    };
    assert_eq!(rest, "look:\n  a  b\n    c");
}

#[test]
fn builtin_words_win_over_aliases() {
    let aliases: BTreeSet<String> = ["new", "model"].iter().map(|a| (*a).to_owned()).collect();
    let ctx = ParseContext {
        bot_username: None,
        aliases: &aliases,
    };
    assert!(matches!(
        parse("/new", &ctx),
        Parsed::Directive {
            directive: Directive::New,
            ..
        }
    ));
    assert!(matches!(
        parse("/model", &ctx),
        Parsed::Directive {
            directive: Directive::ModelShow,
            ..
        }
    ));
}

#[test]
fn no_aliases_means_no_shortcuts() {
    let aliases = BTreeSet::new();
    let ctx = ParseContext {
        bot_username: None,
        aliases: &aliases,
    };
    assert_eq!(parse("/opus", &ctx), Parsed::Plain);
}
