use super::*;
use std::sync::Arc;

const CH: ChannelId = ChannelId::new(7);

fn id(n: u64) -> MessageId {
    MessageId::new(n)
}

/// Handlers that start in the reverse order still go in the order of arrival, each
/// once the one before it has left.
#[tokio::test(start_paused = true)]
async fn handlers_go_in_arrival_order_whatever_order_they_start_in() {
    let a = Arc::new(Arrivals::default());
    for n in 1..=4 {
        a.arrive(CH, id(n), Instant::now());
    }
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for n in (1..=4).rev() {
        let (a, order) = (a.clone(), order.clone());
        tasks.push(tokio::spawn(async move {
            let Turn::Go(place) = a.turn(CH, id(n)).await else {
                panic!("message {n} was noted");
            };
            order.lock().unwrap().push(n);
            tokio::time::sleep(Duration::from_millis(50)).await;
            drop(place);
        }));
        tokio::task::yield_now().await;
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(*order.lock().unwrap(), [1, 2, 3, 4]);
    assert!(a.channels.lock().unwrap().queues.is_empty(), "all left");
}

#[tokio::test(start_paused = true)]
async fn a_message_not_noted_goes_at_once() {
    let a = Arrivals::default();
    assert!(matches!(a.turn(CH, id(1)).await, Turn::Unordered));
    a.arrive(CH, id(2), Instant::now());
    assert!(matches!(a.turn(CH, id(3)).await, Turn::Unordered));
}

#[tokio::test(start_paused = true)]
async fn past_the_depth_a_message_is_busy() {
    let a = Arrivals::default();
    for n in 0..=DEPTH as u64 {
        a.arrive(CH, id(n + 1), Instant::now());
    }
    let extra = id(100);
    a.arrive(CH, extra, Instant::now());
    assert!(matches!(a.turn(CH, extra).await, Turn::Busy));
    // Other channels are not affected.
    let other = ChannelId::new(8);
    a.arrive(other, id(200), Instant::now());
    assert!(matches!(a.turn(other, id(200)).await, Turn::Go(_)));
}

/// A noted message whose handler never comes holds the channel up for `CLAIM_WAIT`
/// at most.
#[tokio::test(start_paused = true)]
async fn a_message_whose_handler_never_comes_is_passed_over() {
    let a = Arrivals::default();
    a.arrive(CH, id(1), Instant::now());
    a.arrive(CH, id(2), Instant::now());
    let started = Instant::now();
    assert!(matches!(a.turn(CH, id(2)).await, Turn::Go(_)));
    let waited = started.elapsed();
    assert!(
        waited >= CLAIM_WAIT && waited < CLAIM_WAIT * 2,
        "{waited:?}"
    );
}

/// A claimed message that is slow (a long turn) is waited for, however long.
#[tokio::test(start_paused = true)]
async fn a_long_turn_is_waited_for() {
    let a = Arc::new(Arrivals::default());
    a.arrive(CH, id(1), Instant::now());
    a.arrive(CH, id(2), Instant::now());
    let Turn::Go(first) = a.turn(CH, id(1)).await else {
        panic!("first");
    };
    let a2 = a.clone();
    let second = tokio::spawn(async move { matches!(a2.turn(CH, id(2)).await, Turn::Go(_)) });
    tokio::time::sleep(CLAIM_WAIT * 6).await;
    assert!(!second.is_finished(), "went before the first was answered");
    drop(first);
    assert!(second.await.unwrap());
}

#[test]
fn a_newer_collector_retires_the_older_one() {
    let a = Arc::new(Arrivals::default());
    let old = a.collector(0, |_, _| true);
    let new = a.collector(0, |_, _| true);
    let other_shard = a.collector(1, |_, _| true);
    let event = serenity::all::Event::Unknown(
        serde_json::from_value(serde_json::json!({"t": "X", "d": {}})).unwrap(),
    );
    assert!(!(old.0)(&event), "retired");
    assert!((new.0)(&event));
    assert!((other_shard.0)(&event));
}

/// A handler that ends without taking its turn (not for the bot, seen before) frees
/// its place at once; one that claimed is not passed over while it takes its message in.
#[tokio::test(start_paused = true)]
async fn a_claim_dropped_frees_the_place_and_a_held_one_is_not_passed_over() {
    let a = Arrivals::default();
    a.arrive(CH, id(1), Instant::now());
    a.arrive(CH, id(2), Instant::now());
    let started = Instant::now();
    drop(a.claim(CH, id(1)));
    assert!(matches!(a.claim(CH, id(2)).turn().await, Turn::Go(_)));
    assert_eq!(
        started.elapsed(),
        Duration::ZERO,
        "no wait for the dropped one"
    );

    a.arrive(CH, id(3), Instant::now());
    a.arrive(CH, id(4), Instant::now());
    let slow = a.claim(CH, id(3));
    let fourth = a.claim(CH, id(4));
    let waiting = tokio::time::timeout(CLAIM_WAIT * 3, fourth.turn()).await;
    assert!(waiting.is_err(), "went before the claimed third");
    assert!(matches!(slow.turn().await, Turn::Go(_)));
}
