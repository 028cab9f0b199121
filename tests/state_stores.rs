//! One suite for the cooldown book, pairing, the channels' inbox, usage totals and the
//! credential alerts already reported, over both stores (issue 13): each test is written
//! once against `Stores` and run by `both_backends!` on `state.db` and on Redis (a
//! private `redis-server`, see `support::redis`). `again()` opens a second handle on the same data, as another
//! process or replica would.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support;

use remoteclaw::auth::cooldown::{CooldownBook, FOREVER, ImportEntry, Reason, Standing};
use remoteclaw::clock::ManualClock;
use remoteclaw::config::CooldownConfig;
use remoteclaw::inbox::{Inbox, InboxStore, MarkRetries, PendingMessage, Receipt};
use remoteclaw::pairing::{PairingError, PairingStatus, PairingStore};
use remoteclaw::providers::error::classify;
use remoteclaw::providers::{ProviderError, Usage};
use remoteclaw::state::redis::Redis;
use remoteclaw::state::stores::Stores;
use remoteclaw::state::{StateDb, StoreError, StoreFuture};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use support::redis::RedisServer;

const T0: i64 = 1_767_225_600_000;

/// Stores and what keeps them alive (a directory or a server).
struct Backend {
    stores: Stores,
    dir: Option<tempfile::TempDir>,
    server: Option<RedisServer>,
}

impl Backend {
    async fn sqlite() -> Backend {
        let dir = tempfile::tempdir().unwrap();
        let db = StateDb::open(&dir.path().join("state.db")).unwrap();
        Backend {
            stores: Stores::sqlite(db),
            dir: Some(dir),
            server: None,
        }
    }

    async fn redis() -> Backend {
        let server = RedisServer::start();
        let redis = Redis::connect(&server.url(), "rc-test:").await.unwrap();
        Backend {
            stores: Stores::redis(redis),
            dir: None,
            server: Some(server),
        }
    }

    /// A second, independent handle on the same data.
    async fn again(&self) -> Stores {
        match (&self.dir, &self.server) {
            (Some(dir), _) => Stores::sqlite(StateDb::open(&dir.path().join("state.db")).unwrap()),
            (_, Some(server)) => {
                Stores::redis(Redis::connect(&server.url(), "rc-test:").await.unwrap())
            }
            _ => unreachable!(),
        }
    }
}

macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Backend::sqlite().await).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Backend::redis().await).await;
                }
            )*
        }
    };
}

both_backends!(
    rate_limits_are_per_model_and_reset_on_success,
    a_success_clears_only_the_rows_of_its_own_secret,
    two_secrets_of_one_id_keep_a_cooldown_each,
    quota_billing_and_auth_disable_the_credential,
    another_process_sees_the_cooldown,
    a_turn_sees_its_own_records_at_once_and_others_after_a_recheck,
    usage_stats_are_imported_once,
    pairing_codes_are_issued_approved_listed_and_revoked,
    pairing_codes_expire_and_collisions_are_retried,
    inbox_answers_each_message_once_across_handles,
    inbox_keeps_pending_messages_in_order_and_prunes_answered_marks,
    channel_offsets_round_trip,
    usage_totals_add_up_and_saturate,
    alert_states_are_set_once_across_handles,
);

fn book(stores: &Stores) -> CooldownBook {
    CooldownBook::with_store(stores.cooldowns.clone(), CooldownConfig::default())
        .with_recheck(Duration::ZERO)
}

fn err(status: u16, body: &str, retry: Option<u64>) -> ProviderError {
    classify("p", Some(status), retry.map(Duration::from_secs), body)
}

async fn standing(
    b: &CooldownBook,
    cred: &str,
    fp: &str,
    model: &str,
    now: i64,
) -> Option<Standing> {
    b.view().await.standing(cred, fp, model, now)
}

/// The fingerprints a success clears (a secret's; an OAuth sign-in's is the second).
fn fps(fp: &str) -> [String; 2] {
    [fp.to_string(), format!("sign-in of {fp}")]
}

/// Two agents each have a profile `anthropic:x`, with different keys: one agent's
/// success must not lift the other's billing disable (nor its rate limit).
async fn a_success_clears_only_the_rows_of_its_own_secret(be: Backend) {
    let b = book(&be.stores);
    let billing = err(
        402,
        r#"{"error":{"type":"billing_error","message":"pay"}}"#,
        None,
    );
    b.record_failure("anthropic:x", "fpW", "anthropic/a", &billing, 0)
        .await
        .unwrap();
    assert_eq!(
        standing(&b, "anthropic:x", "fpW", "anthropic/a", 1)
            .await
            .map(|s| s.reason),
        Some(Reason::Billing)
    );
    // The other agent's key answers: its success has nothing of its own to clear.
    b.record_success("anthropic:x", &fps("fpM"), "anthropic/a", 10)
        .await
        .unwrap();
    b.record_success_quiet("anthropic:x", &fps("fpM"), "anthropic/a")
        .await
        .unwrap();
    let fresh = book(&be.again().await);
    for view in [&b, &fresh] {
        assert_eq!(
            standing(view, "anthropic:x", "fpW", "anthropic/a", 20)
                .await
                .map(|s| s.reason),
            Some(Reason::Billing),
            "the disabled key stays disabled, in memory and in the store"
        );
    }
    // Its own success lifts it.
    b.record_success("anthropic:x", &fps("fpW"), "anthropic/a", 30)
        .await
        .unwrap();
    assert_eq!(
        standing(&fresh, "anthropic:x", "fpW", "anthropic/a", 40).await,
        None
    );
}

/// Two agents' `anthropic:default` profiles hold different keys; both get rate limited
/// on one model. Each keeps its own cooldown (neither overwrites the other's row), in
/// memory and for another process, with its own backoff count; a success of one ends
/// only its own.
async fn two_secrets_of_one_id_keep_a_cooldown_each(be: Backend) {
    let b = book(&be.stores);
    let rl = err(
        429,
        r#"{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}"#,
        None,
    );
    let id = "anthropic:default";
    b.record_failure(id, "fpA", "anthropic/a", &rl, 0)
        .await
        .unwrap();
    b.record_failure(id, "fpB", "anthropic/a", &rl, 1_000)
        .await
        .unwrap();
    // A's key again: its second rate limit backs off further (5 min), B's stays 1 min.
    b.record_failure(id, "fpA", "anthropic/a", &rl, 2_000)
        .await
        .unwrap();
    let fresh = book(&be.again().await);
    for view in [&b, &fresh] {
        assert_eq!(
            standing(view, id, "fpA", "anthropic/a", 3_000).await,
            Some(Standing {
                reason: Reason::RateLimit,
                until: 302_000
            })
        );
        assert_eq!(
            standing(view, id, "fpB", "anthropic/a", 3_000).await,
            Some(Standing {
                reason: Reason::RateLimit,
                until: 61_000
            })
        );
    }
    let listed = fresh.list(3_000).await.unwrap();
    let mut seen: Vec<&str> = listed.iter().map(|e| e.fingerprint.as_str()).collect();
    seen.sort_unstable();
    assert_eq!(seen, ["fpA", "fpB"], "{listed:?}");
    // B's key answers: A's cooldown stays.
    b.record_success(id, &fps("fpB"), "anthropic/a", 4_000)
        .await
        .unwrap();
    let fresh = book(&be.again().await);
    assert!(
        standing(&fresh, id, "fpA", "anthropic/a", 5_000)
            .await
            .is_some()
    );
    assert_eq!(
        standing(&fresh, id, "fpB", "anthropic/a", 5_000).await,
        None
    );
    // An operator clears B's row again (an agent's own entries): A's stays.
    b.record_failure(id, "fpB", "anthropic/a", &rl, 6_000)
        .await
        .unwrap();
    let b_only: Vec<_> = b
        .list(7_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.fingerprint == "fpB")
        .collect();
    assert_eq!(b.clear_entries(&b_only).await.unwrap(), 1);
    let fresh = book(&be.again().await);
    assert!(
        standing(&fresh, id, "fpA", "anthropic/a", 8_000)
            .await
            .is_some()
    );
    assert_eq!(
        standing(&fresh, id, "fpB", "anthropic/a", 8_000).await,
        None
    );
}

async fn rate_limits_are_per_model_and_reset_on_success(be: Backend) {
    let b = book(&be.stores);
    let rl = err(
        429,
        r#"{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}"#,
        None,
    );
    b.record_failure("env:K", "fp1", "anthropic/a", &rl, 0)
        .await
        .unwrap();
    assert_eq!(
        standing(&b, "env:K", "fp1", "anthropic/a", 1).await,
        Some(Standing {
            reason: Reason::RateLimit,
            until: 60_000
        })
    );
    assert_eq!(
        standing(&b, "env:K", "fp1", "anthropic/b", 1).await,
        None,
        "other models are unaffected"
    );
    assert_eq!(
        standing(&b, "env:K", "fp2", "anthropic/a", 1).await,
        None,
        "a new secret starts clean"
    );
    assert_eq!(
        standing(&b, "env:K", "fp1", "anthropic/a", 60_000).await,
        None,
        "expires on its own"
    );
    b.record_failure("env:K", "fp1", "anthropic/a", &rl, 70_000)
        .await
        .unwrap();
    assert_eq!(
        standing(&b, "env:K", "fp1", "anthropic/a", 70_001)
            .await
            .map(|s| s.until),
        Some(370_000),
        "second step is 5 min"
    );
    b.record_success("env:K", &fps("fp1"), "anthropic/a", 80_000)
        .await
        .unwrap();
    assert_eq!(
        standing(&b, "env:K", "fp1", "anthropic/a", 80_001).await,
        None
    );
    b.record_failure("env:K", "fp1", "anthropic/a", &rl, 90_000)
        .await
        .unwrap();
    assert_eq!(
        standing(&b, "env:K", "fp1", "anthropic/a", 90_001)
            .await
            .map(|s| s.until),
        Some(150_000),
        "count was reset"
    );
    assert_eq!(b.view().await.last_used("env:K"), Some(90_000));
    // A fresh book over the same data sees all of it.
    let again = book(&be.again().await);
    assert_eq!(
        standing(&again, "env:K", "fp1", "anthropic/a", 90_001)
            .await
            .map(|s| s.until),
        Some(150_000)
    );
    assert_eq!(again.view().await.last_used("env:K"), Some(90_000));
}

async fn quota_billing_and_auth_disable_the_credential(be: Backend) {
    let b = book(&be.stores);
    let quota = err(
        429,
        r#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}"#,
        None,
    );
    let s = b
        .record_failure("openai:a", "f", "openai/x", &quota, 0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((s.reason, s.until), (Reason::Quota, 5 * 3_600_000));
    assert_eq!(
        standing(&b, "openai:a", "f", "openai/other", 1)
            .await
            .map(|s| s.reason),
        Some(Reason::Quota),
        "credential-wide"
    );
    let billing = err(402, r#"{"error":{"message":"Insufficient credits"}}"#, None);
    assert_eq!(
        b.record_failure("or:b", "f", "m", &billing, 0)
            .await
            .unwrap()
            .map(|s| s.reason),
        Some(Reason::Billing)
    );
    let auth = err(
        401,
        r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#,
        None,
    );
    assert_eq!(
        b.record_failure("k", "f", "m", &auth, 0)
            .await
            .unwrap()
            .map(|s| s.until),
        Some(FOREVER)
    );
    let fmt = err(
        400,
        r#"{"type":"error","error":{"type":"invalid_request_error","message":"bad"}}"#,
        None,
    );
    assert_eq!(
        b.record_failure("z", "f", "m", &fmt, 0).await.unwrap(),
        None,
        "format errors do not set a credential aside"
    );
    assert_eq!(b.list(1).await.unwrap().len(), 3);
    assert_eq!(b.clear(Some("k")).await.unwrap(), 1);
    assert_eq!(b.clear(None).await.unwrap(), 2);
    assert!(b.list(1).await.unwrap().is_empty());
}

async fn another_process_sees_the_cooldown(be: Backend) {
    let a = book(&be.stores);
    let b = book(&be.again().await);
    assert_eq!(standing(&b, "k", "f", "m", 1).await, None);
    a.record_failure("k", "f", "m", &err(429, "{}", Some(30)), 0)
        .await
        .unwrap();
    assert_eq!(
        standing(&b, "k", "f", "m", 1).await.map(|s| s.until),
        Some(30_000)
    );
    b.clear(None).await.unwrap();
    assert_eq!(standing(&a, "k", "f", "m", 1).await, None);
}

async fn a_turn_sees_its_own_records_at_once_and_others_after_a_recheck(be: Backend) {
    let hour = Duration::from_secs(3600);
    let a = CooldownBook::with_store(be.stores.cooldowns.clone(), CooldownConfig::default())
        .with_recheck(hour);
    let other = be.again().await;
    let b = book(&other);
    assert_eq!(standing(&a, "k", "f", "m", 1).await, None);
    let rl = err(429, "{}", Some(30));
    a.record_failure("k", "f", "m", &rl, 0).await.unwrap();
    assert_eq!(
        standing(&a, "k", "f", "m", 1).await.map(|s| s.until),
        Some(30_000),
        "own records at once"
    );
    b.record_failure("j", "f", "m", &rl, 0).await.unwrap();
    assert_eq!(
        standing(&a, "k", "f", "m", 1).await.map(|s| s.until),
        Some(30_000)
    );
    assert_eq!(
        standing(&a, "j", "f", "m", 1).await,
        None,
        "another process's record waits for the next check"
    );
    let fresh = book(&be.again().await);
    fresh.view().await;
    b.clear(Some("k")).await.unwrap();
    assert_eq!(
        standing(&fresh, "k", "f", "m", 1).await,
        None,
        "a due check reloads"
    );
    assert_eq!(
        standing(&fresh, "j", "f", "m", 1).await.map(|s| s.until),
        Some(30_000)
    );
    a.record_success("k", &fps("f"), "m", 5).await.unwrap();
    assert_eq!(a.view().await.last_used("k"), Some(5));
}

async fn usage_stats_are_imported_once(be: Backend) {
    let b = book(&be.stores);
    let entries = vec![
        ImportEntry {
            credential: "anthropic:work".into(),
            fingerprint: Some("fp".into()),
            last_used: Some(T0 - 5),
            error_count: Some(2),
            cooldown_until: Some(T0 + 60_000),
            disabled_until: None,
            disabled_reason: None,
        },
        ImportEntry {
            credential: "openai:old".into(),
            fingerprint: Some("fp".into()),
            last_used: None,
            error_count: None,
            cooldown_until: Some(T0 - 1),
            disabled_until: Some(T0 + 3_600_000),
            disabled_reason: Some("billing".into()),
        },
    ];
    assert!(
        b.import_once("/x/auth-profiles.json", &entries, T0)
            .await
            .unwrap()
    );
    assert!(
        !b.import_once("/x/auth-profiles.json", &entries, T0)
            .await
            .unwrap(),
        "once per file"
    );
    let view = b.view().await;
    assert_eq!(
        view.standing("anthropic:work", "fp", "any/model", T0 + 1),
        Some(Standing {
            reason: Reason::RateLimit,
            until: T0 + 60_000
        })
    );
    assert_eq!(
        view.standing("openai:old", "fp", "m", T0 + 1)
            .map(|s| s.reason),
        Some(Reason::Billing),
        "an expired cooldown is not imported, a live disable is"
    );
    assert_eq!(view.last_used("anthropic:work"), Some(T0 - 5));
    let listed = b.list(T0).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].error_count, 2);
}

fn pairing(stores: &Stores, clock: &Arc<ManualClock>) -> PairingStore {
    PairingStore::with_backend(stores.pairing.clone(), clock.clone())
}

async fn pairing_codes_are_issued_approved_listed_and_revoked(be: Backend) {
    let clock = ManualClock::new(T0);
    let s = pairing(&be.stores, &clock);
    let req = s
        .request("telegram", "123", Some(" @alice "))
        .await
        .unwrap();
    assert!(req.fresh && !req.approved);
    assert_eq!(req.code.len(), 8);
    assert_eq!(req.expires_at, T0 + 3_600_000);
    assert!(!s.is_approved("telegram", "123").await.unwrap());
    let again = s.request("telegram", "123", None).await.unwrap();
    assert_eq!(
        (again.code.as_str(), again.fresh),
        (req.code.as_str(), false)
    );
    // Pending requests list with their codes; the label was trimmed.
    let list = s.list().await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].status, PairingStatus::Pending);
    assert_eq!(list[0].code.as_deref(), Some(req.code.as_str()));
    assert_eq!(list[0].label.as_deref(), Some("@alice"));
    // Another handle approves it (the CLI), in lower case with a dash.
    let other = pairing(&be.again().await, &clock);
    let typed = format!("{}-{}", &req.code[..4], &req.code[4..]).to_lowercase();
    clock.advance_ms(10000);
    let ok = other.approve("telegram", &typed).await.unwrap();
    assert_eq!(
        (ok.sender.as_str(), ok.label.as_deref()),
        ("123", Some("@alice"))
    );
    assert_eq!(ok.approved_at, T0 + 10_000);
    assert!(s.is_approved("telegram", "123").await.unwrap());
    assert!(
        !s.is_approved("discord", "123").await.unwrap(),
        "per channel"
    );
    assert!(matches!(
        other.approve("telegram", &req.code).await,
        Err(PairingError::AlreadyApproved { .. })
    ));
    assert!(matches!(
        other.approve("telegram", "NOPE2345").await,
        Err(PairingError::UnknownCode { .. })
    ));
    // An approved sender asking again is let through.
    let back = s.request("telegram", "123", None).await.unwrap();
    assert!(back.approved && !back.fresh);
    // Listing: pending first, then approved, most recent first.
    s.request("discord", "9", None).await.unwrap();
    let list = s.list().await.unwrap();
    assert_eq!(
        list.iter()
            .map(|e| (e.channel.as_str(), e.sender.as_str(), e.status))
            .collect::<Vec<_>>(),
        vec![
            ("discord", "9", PairingStatus::Pending),
            ("telegram", "123", PairingStatus::Approved)
        ]
    );
    assert!(list[1].code.is_none(), "an approved entry shows no code");
    assert!(s.revoke("telegram", "123").await.unwrap());
    assert!(!s.revoke("telegram", "123").await.unwrap());
    assert!(!s.is_approved("telegram", "123").await.unwrap());
}

async fn pairing_codes_expire_and_collisions_are_retried(be: Backend) {
    let clock = ManualClock::new(T0);
    let fixed = |codes: &'static [&'static str]| {
        let next = std::sync::Mutex::new(0usize);
        let generator: remoteclaw::pairing::CodeGenerator = Arc::new(move || {
            let mut i = next.lock().unwrap();
            let c = codes[(*i).min(codes.len() - 1)].to_string();
            *i += 1;
            c
        });
        generator
    };
    let s = pairing(&be.stores, &clock).with_code_generator(fixed(&["AAAA2222"]));
    let a = s.request("telegram", "1", None).await.unwrap();
    assert_eq!(a.code, "AAAA2222");
    // Sender 2 draws the same code first: it is retried, not shared.
    let s2 = pairing(&be.stores, &clock).with_code_generator(fixed(&["AAAA2222", "BBBB3333"]));
    let b = s2.request("telegram", "2", None).await.unwrap();
    assert_eq!(b.code, "BBBB3333");
    // An hour later the code is expired: approving says so, and a new code is issued.
    clock.advance_ms(3600000);
    match s.approve("telegram", "AAAA2222").await {
        Err(PairingError::Expired { sender, .. }) => assert_eq!(sender, "1"),
        other => panic!("expected Expired, got {other:?}"),
    }
    assert!(
        s.list().await.unwrap().is_empty(),
        "expired requests are not listed"
    );
    let s3 = pairing(&be.stores, &clock).with_code_generator(fixed(&["CCCC4444"]));
    let fresh = s3.request("telegram", "1", None).await.unwrap();
    assert!(fresh.fresh);
    assert_eq!(fresh.code, "CCCC4444");
    assert!(matches!(
        s.approve("telegram", "AAAA2222").await,
        Err(PairingError::UnknownCode { .. })
    ));
    s.approve("telegram", "CCCC4444").await.unwrap();
}

async fn inbox_answers_each_message_once_across_handles(be: Backend) {
    let clock = ManualClock::new(T0);
    let a = Inbox::with_store(be.stores.inbox.clone(), clock.clone());
    let b = Inbox::with_store(be.again().await.inbox, clock.clone());
    // Two replicas receive the same update at the same time: exactly one answers it.
    let (ra, rb) = tokio::join!(
        a.receive("telegram:1", "77", "{\"u\":77}"),
        b.receive("telegram:1", "77", "{\"u\":77}")
    );
    let mut got = [ra.unwrap(), rb.unwrap()];
    got.sort_by_key(|r| *r != Receipt::New);
    assert_eq!(got, [Receipt::New, Receipt::Pending]);
    a.answered("telegram:1", "77").await.unwrap();
    assert_eq!(
        b.receive("telegram:1", "77", "{}").await.unwrap(),
        Receipt::Answered
    );
    assert_eq!(
        a.receive("discord", "77", "{}").await.unwrap(),
        Receipt::New,
        "ids are per channel"
    );
    // Many concurrent receipts of distinct ids from both handles: each new exactly once.
    let mut tasks = Vec::new();
    for i in 0..40 {
        let inbox = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            inbox
                .receive("web", &(i / 2).to_string(), "p")
                .await
                .unwrap()
        }));
    }
    let mut new = 0;
    for t in tasks {
        if t.await.unwrap() == Receipt::New {
            new += 1;
        }
    }
    assert_eq!(new, 20);
}

async fn inbox_keeps_pending_messages_in_order_and_prunes_answered_marks(be: Backend) {
    let clock = ManualClock::new(T0);
    let inbox = Inbox::with_store(be.stores.inbox.clone(), clock.clone());
    for id in ["3", "1", "2"] {
        inbox
            .receive("telegram:1", id, &format!("payload {id}\nline two"))
            .await
            .unwrap();
        clock.advance_ms(1);
    }
    inbox.answered("telegram:1", "1").await.unwrap();
    let pending = inbox.pending("telegram:1").await.unwrap();
    assert_eq!(
        pending.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(),
        ["3", "2"],
        "arrival order, answered ones gone"
    );
    assert_eq!(pending[0].payload, "payload 3\nline two");
    assert_eq!(pending[0].received_at, T0);
    assert!(inbox.pending("discord").await.unwrap().is_empty());
    // Marking answered something never received still blocks a later delivery.
    inbox.answered("telegram:1", "9").await.unwrap();
    assert_eq!(
        inbox.receive("telegram:1", "9", "x").await.unwrap(),
        Receipt::Answered
    );
    clock.advance_ms(3600000);
    inbox.answered("telegram:1", "3").await.unwrap();
    assert_eq!(
        inbox.prune("telegram:1", 1_800_000).await.unwrap(),
        2,
        "the two old marks go, the recent one stays"
    );
    assert_eq!(
        inbox.receive("telegram:1", "3", "x").await.unwrap(),
        Receipt::Answered
    );
    assert_eq!(
        inbox.receive("telegram:1", "1", "again").await.unwrap(),
        Receipt::New,
        "a pruned mark is forgotten"
    );
}

async fn channel_offsets_round_trip(be: Backend) {
    let inbox = Inbox::with_store(be.stores.inbox.clone(), ManualClock::new(T0));
    assert_eq!(inbox.offset("telegram:offset:1").await.unwrap(), None);
    inbox.set_offset("telegram:offset:1", 41).await.unwrap();
    inbox.set_offset("telegram:offset:1", 42).await.unwrap();
    let other = Inbox::with_store(be.again().await.inbox, ManualClock::new(T0));
    assert_eq!(other.offset("telegram:offset:1").await.unwrap(), Some(42));
}

async fn usage_totals_add_up_and_saturate(be: Backend) {
    let book = be.stores.usage.clone();
    let u = |i, o| Usage {
        input_tokens: i,
        output_tokens: o,
    };
    book.record("s1", "anthropic:work", u(10, 5), 1)
        .await
        .unwrap();
    book.record("s1", "env:ANTHROPIC_API_KEY", u(3, 2), 2)
        .await
        .unwrap();
    book.record("s2", "anthropic:work", u(1, 1), 3)
        .await
        .unwrap();
    let (t, turns) = book.session("s1").await.unwrap();
    assert_eq!((t.input_tokens, t.output_tokens, turns), (13, 7, 2));
    assert_eq!(book.session("nobody").await.unwrap().1, 0);
    let by = be.again().await.usage.by_credential().await.unwrap();
    assert_eq!(
        (
            by["anthropic:work"].input_tokens,
            by["anthropic:work"].output_tokens
        ),
        (11, 6)
    );
    book.record("s2", "anthropic:work", u(u64::MAX, u64::MAX), 4)
        .await
        .unwrap();
    let (t, _) = book.session("s2").await.unwrap();
    assert_eq!(t.input_tokens, i64::MAX as u64, "capped, not wrapped");
    // More on a capped row stays capped (never a float, never an error).
    book.record("s2", "anthropic:work", u(5, 5), 4)
        .await
        .unwrap();
    let (t, turns) = book.session("s2").await.unwrap();
    assert_eq!((t.input_tokens, turns), (i64::MAX as u64, 3));
    // Two capped rows of one session (two credentials) add up without an overflow
    // error, in the session's totals and per credential.
    book.record("s2", "env:ANTHROPIC_API_KEY", u(u64::MAX, 1), 5)
        .await
        .unwrap();
    book.record("s3", "env:ANTHROPIC_API_KEY", u(u64::MAX, 1), 6)
        .await
        .unwrap();
    let (t, turns) = book.session("s2").await.unwrap();
    assert_eq!((t.input_tokens, turns), (2 * (i64::MAX as u64), 4));
    let by = book.by_credential().await.unwrap();
    assert!(by["env:ANTHROPIC_API_KEY"].input_tokens >= i64::MAX as u64);
}

// ---------------------------------------------------------------- credential alerts

async fn alert_states_are_set_once_across_handles(be: Backend) {
    let a = be.stores.alerts.clone();
    let b = be.again().await.alerts;
    let key = "telegram:777|cred:main:anthropic:work";
    assert!(a.set(key, Some("expired"), T0).await.unwrap());
    assert!(
        !b.set(key, Some("expired"), T0).await.unwrap(),
        "the other handle sees it reported"
    );
    assert!(b.set(key, Some("disabled:auth"), T0).await.unwrap());
    assert_eq!(
        a.load().await.unwrap(),
        vec![(key.to_string(), "disabled:auth".to_string())]
    );
    // Two handles racing for one change: exactly one wins.
    let other = "discord:9|provider:main:openai";
    let (x, y) = tokio::join!(
        a.set(other, Some("no_credential"), T0),
        b.set(other, Some("no_credential"), T0)
    );
    assert!(x.unwrap() ^ y.unwrap(), "exactly one handle changed it");
    // Removing: once.
    assert!(a.set(key, None, T0).await.unwrap());
    assert!(!b.set(key, None, T0).await.unwrap());
    let mut left = b.load().await.unwrap();
    left.sort();
    assert_eq!(left, vec![(other.to_string(), "no_credential".to_string())]);
}

// ---------------------------------------------------------------- replica coordination
// (Redis only: one process needs no lease.) TTL expiry is Redis's own clock, so the
// tests that wait for it use a short TTL and real time.

/// An inbox store whose answered marks fail while `down` is set (a blip of the
/// store that the claims, renewed separately, happen to ride out).
#[derive(Debug)]
struct MarksDown {
    inner: Arc<dyn InboxStore>,
    down: AtomicBool,
}

impl InboxStore for MarksDown {
    fn receive(&self, c: &str, id: &str, payload: &str, now: i64) -> StoreFuture<Receipt> {
        self.inner.receive(c, id, payload, now)
    }
    fn answered(&self, c: &str, id: &str, now: i64) -> StoreFuture<()> {
        if self.down.load(Ordering::SeqCst) {
            return Box::pin(async {
                Err(StoreError::Backend {
                    path: "redis".into(),
                    message: "state store unavailable: a blip".into(),
                })
            });
        }
        self.inner.answered(c, id, now)
    }
    fn pending(&self, c: &str) -> StoreFuture<Vec<PendingMessage>> {
        self.inner.pending(c)
    }
    fn prune(&self, c: &str, cutoff: i64) -> StoreFuture<usize> {
        self.inner.prune(c, cutoff)
    }
    fn offset(&self, key: &str) -> StoreFuture<Option<i64>> {
        self.inner.offset(key)
    }
    fn set_offset(&self, key: &str, value: i64) -> StoreFuture<()> {
        self.inner.set_offset(key, value)
    }
}

/// A reply went out but its answered mark could not be written (a store blip): the
/// mark is tried again (after 1 s, then doubling) until it is written, and meanwhile the
/// message is not pending for this process (no replay here answers it again).
#[tokio::test(start_paused = true)]
async fn an_answered_mark_that_failed_is_written_on_a_later_try() {
    let be = Backend::sqlite().await;
    let marks = Arc::new(MarksDown {
        inner: be.stores.inbox.clone(),
        down: AtomicBool::new(true),
    });
    let inbox = Inbox::with_store(marks.clone(), ManualClock::new(T0));
    assert_eq!(inbox.receive("tg", "1", "a").await.unwrap(), Receipt::New);
    assert!(
        inbox.answered("tg", "1").await.is_err(),
        "the first try fails"
    );
    // The tries at 1 s and 3 s fail too.
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    let stored = || async { be.stores.inbox.pending("tg").await.unwrap().len() };
    assert_eq!(stored().await, 1, "still failing");
    assert!(
        inbox.pending("tg").await.unwrap().is_empty(),
        "answered, as far as this process goes"
    );
    // The store is back: the try at 7 s writes the mark. (Paused time runs on while
    // the write is on the store's thread, so this waits for it rather than timing it.)
    marks.down.store(false, Ordering::SeqCst);
    let back = tokio::time::Instant::now();
    while stored().await > 0 {
        assert!(back.elapsed() < Duration::from_secs(30), "never marked");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        inbox.receive("tg", "1", "a").await.unwrap(),
        Receipt::Answered,
        "never answered again"
    );
}

/// At exit (`App::settle`), a mark being retried gets one last try at once rather than
/// being dropped with the process (the message would be answered again at the next
/// start).
#[tokio::test]
async fn a_mark_being_retried_gets_a_last_try_at_exit() {
    let be = Backend::sqlite().await;
    let marks = Arc::new(MarksDown {
        inner: be.stores.inbox.clone(),
        down: AtomicBool::new(true),
    });
    let retries = Arc::new(MarkRetries::default());
    let inbox =
        Inbox::with_store(marks.clone(), ManualClock::new(T0)).with_retries(retries.clone());
    inbox.receive("tg", "1", "a").await.unwrap();
    assert!(inbox.answered("tg", "1").await.is_err());
    marks.down.store(false, Ordering::SeqCst);
    // Exit comes before the first retry (1 s) is due; the last try does not wait for it.
    let asked = std::time::Instant::now();
    retries.finish(Duration::from_secs(10)).await;
    assert!(
        asked.elapsed() < Duration::from_millis(900),
        "waited for the retry's pause: {:?}",
        asked.elapsed()
    );
    assert!(
        be.stores.inbox.pending("tg").await.unwrap().is_empty(),
        "written by the last try"
    );
}

mod coordination {
    use super::support::redis::RedisServer;
    use super::{MarksDown, T0};
    use remoteclaw::clock::ManualClock;
    use remoteclaw::inbox::{Inbox, Receipt};
    use remoteclaw::state::lease::Coordinator;
    use remoteclaw::state::redis::Redis;
    use remoteclaw::state::stores::Stores;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    async fn pair(server: &RedisServer, ttl: Duration) -> (Coordinator, Coordinator) {
        let a = Redis::connect(&server.url(), "rc-test:").await.unwrap();
        let b = Redis::connect(&server.url(), "rc-test:").await.unwrap();
        (
            Coordinator::new(a).with_ttl(ttl),
            Coordinator::new(b).with_ttl(ttl),
        )
    }

    /// The Telegram poller records updates (and claims them) on a runtime of its own,
    /// which ends when polling stops while their turns still run: a claim stays renewed
    /// (on the coordinator's runtime) until it is given back, and once given back, it is
    /// free at once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_claim_taken_on_a_runtime_that_ended_stays_held_until_released() {
        let server = RedisServer::start();
        let (a, b) = pair(&server, Duration::from_millis(600)).await;
        let on_thread = a.clone();
        let held = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async { on_thread.hold_claim("inbox:telegram:7:1").await.unwrap() })
        })
        .join()
        .unwrap();
        assert!(held);
        assert!(!b.hold_claim("inbox:telegram:7:1").await.unwrap());
        // Three TTLs later the claim is still this replica's.
        tokio::time::sleep(Duration::from_millis(1800)).await;
        assert!(
            !b.take_lease("inbox:telegram:7:1").await.unwrap(),
            "the claim lapsed with the runtime it was taken on"
        );
        assert!(
            a.hold_claim("inbox:telegram:7:1").await.unwrap(),
            "still ours"
        );
        a.release("inbox:telegram:7:1");
        let started = Instant::now();
        while !b.hold_claim("inbox:telegram:7:1").await.unwrap() {
            assert!(
                started.elapsed() < Duration::from_millis(500),
                "never given back"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A reply went out but its answered mark could not be written: the message stays
    /// claimed (no other replica answers it again) until a later try writes the mark.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_message_whose_mark_failed_stays_claimed_until_the_mark_is_written() {
        let server = RedisServer::start();
        let (a, b) = pair(&server, Duration::from_millis(600)).await;
        let stores = Stores::redis(Redis::connect(&server.url(), "rc-test:").await.unwrap());
        let marks = Arc::new(MarksDown {
            inner: stores.inbox.clone(),
            down: AtomicBool::new(false),
        });
        let here = Inbox::with_store(marks.clone(), ManualClock::new(T0)).with_claims(Some(a));
        let there = Inbox::with_store(stores.inbox.clone(), ManualClock::new(T0))
            .with_claims(Some(b.clone()));
        assert_eq!(
            here.receive("telegram:1", "5", "p").await.unwrap(),
            Receipt::New
        );
        marks.down.store(true, Ordering::SeqCst);
        assert!(here.answered("telegram:1", "5").await.is_err());
        assert!(
            here.pending_to_answer("telegram:1")
                .await
                .unwrap()
                .is_empty(),
            "this replica's own sweep would answer it again"
        );
        // Past the first retry (1 s, still failing) and three TTLs: still claimed here.
        tokio::time::sleep(Duration::from_millis(1_800)).await;
        assert!(
            !b.hold_claim("inbox:telegram:1:5").await.unwrap(),
            "the claim was given back with the mark unwritten"
        );
        assert!(
            there
                .pending_to_answer("telegram:1")
                .await
                .unwrap()
                .is_empty(),
            "another replica would answer it again"
        );
        // The store is back: the next try (at 3 s) writes the mark and gives the claim back.
        marks.down.store(false, Ordering::SeqCst);
        let started = Instant::now();
        while !b.hold_claim("inbox:telegram:1:5").await.unwrap() {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "never given back"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        b.release("inbox:telegram:1:5");
        assert_eq!(
            there.receive("telegram:1", "5", "p").await.unwrap(),
            Receipt::Answered
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lease_has_one_holder_and_is_free_after_release_or_expiry() {
        let server = RedisServer::start();
        let (a, b) = pair(&server, Duration::from_millis(300)).await;
        assert_ne!(a.holder(), b.holder());
        assert!(a.take_lease("telegram-poller:1").await.unwrap());
        assert!(!b.take_lease("telegram-poller:1").await.unwrap());
        assert!(a.take_lease("telegram-poller:1").await.unwrap(), "renewed");
        assert!(b.take_lease("other").await.unwrap(), "per name");
        b.free_lease("telegram-poller:1").await.unwrap();
        assert!(
            !b.take_lease("telegram-poller:1").await.unwrap(),
            "only the holder can give it back"
        );
        a.free_lease("telegram-poller:1").await.unwrap();
        // (Timed from before B takes it: its TTL starts within the call.)
        let started = Instant::now();
        assert!(b.take_lease("telegram-poller:1").await.unwrap());
        // B stops renewing (it died): A gets it once the TTL has run out.
        while !a.take_lease("telegram-poller:1").await.unwrap() {
            assert!(started.elapsed() < Duration::from_secs(10));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            started.elapsed() >= Duration::from_millis(290),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn turns_of_a_session_never_overlap_across_replicas_and_keep_their_order() {
        let server = RedisServer::start();
        let (a, b) = pair(&server, Duration::from_secs(15)).await;
        let watch = Redis::connect(&server.url(), "rc-test:").await.unwrap();
        let running = Arc::new(AtomicUsize::new(0));
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..8 {
            let c = if i % 2 == 0 { a.clone() } else { b.clone() };
            let (running, order) = (running.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let ticket = c.turn("web:shared").await.unwrap();
                assert_eq!(running.fetch_add(1, Ordering::SeqCst), 0, "overlap");
                order.lock().unwrap().push(i);
                tokio::time::sleep(Duration::from_millis(20)).await;
                running.fetch_sub(1, Ordering::SeqCst);
                ticket.finish().await;
            }));
            // The next message arrives once this one has its ticket (seen in Redis, so a
            // slow scheduler cannot reorder the arrivals).
            let started = Instant::now();
            loop {
                let seq: Option<i64> = watch
                    .cmd(
                        redis::cmd("GET")
                            .arg(watch.key("turn:web:shared:seq"))
                            .clone(),
                    )
                    .await
                    .unwrap();
                if seq == Some(i + 1) {
                    break;
                }
                assert!(
                    started.elapsed() < Duration::from_secs(10),
                    "ticket {i} taken"
                );
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), (0..8).collect::<Vec<_>>());
        // Another session is not held up by this one.
        let t = a.turn("web:shared").await.unwrap();
        let other = tokio::time::timeout(Duration::from_secs(10), b.turn("web:other")).await;
        assert!(other.is_ok(), "sessions are independent");
        drop(t);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dead_holders_turn_is_freed_by_its_ttl() {
        let server = RedisServer::start();
        let (a, b) = pair(&server, Duration::from_millis(600)).await;
        let held = a.turn("s").await.unwrap();
        // The holder dies: its renewals stop and nothing ends the turn.
        held.abandon();
        let started = Instant::now();
        let t = tokio::time::timeout(Duration::from_secs(5), b.turn("s"))
            .await
            .expect("the other replica gets the session")
            .unwrap();
        assert!(
            started.elapsed() >= Duration::from_millis(300),
            "not before the TTL ran out: {:?}",
            started.elapsed()
        );
        t.finish().await;
    }
}

/// A cooldown row written before rows were kept per secret (field
/// `["<credential>","<model>"]`) is still read, and a success of its secret clears it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_row_of_the_older_shape_is_read_and_cleared() {
    use remoteclaw::state::redis_stores::RedisCooldowns;
    let server = RedisServer::start();
    let redis = Redis::connect(&server.url(), "rc-legacy:").await.unwrap();
    let _: () = redis
        .cmd(
            ::redis::cmd("HSET")
                .arg(redis.key("cooldowns"))
                .arg(r#"["env:K","anthropic/a"]"#)
                .arg(r#"{"fingerprint":"fp1","reason":"rate_limit","until":60000,"count":1}"#)
                .clone(),
        )
        .await
        .unwrap();
    let b = CooldownBook::with_store(
        Arc::new(RedisCooldowns::new(redis.clone())),
        CooldownConfig::default(),
    )
    .with_recheck(Duration::ZERO);
    assert_eq!(
        standing(&b, "env:K", "fp1", "anthropic/a", 1).await,
        Some(Standing {
            reason: Reason::RateLimit,
            until: 60_000
        })
    );
    b.record_success("env:K", &fps("fp1"), "anthropic/a", 2)
        .await
        .unwrap();
    let left: i64 = redis
        .cmd(::redis::cmd("HLEN").arg(redis.key("cooldowns")).clone())
        .await
        .unwrap();
    assert_eq!(left, 0);
}
