//! Running a turn in its own task while its reply streams to an HTTP response: the
//! task pushes `TurnEvent`s into a channel that the response body drains. If the client
//! goes away, the turn still finishes (its result is simply not delivered).

use crate::engine::TurnResult;
use std::future::Future;
use tokio::sync::mpsc;

#[derive(Debug)]
pub enum TurnEvent {
    Delta(String),
    Done(Box<TurnResult>),
}

/// Spawn `run`, giving it a sink for deltas; returns the receiving end.
pub fn spawn_streaming<F, Fut>(run: F) -> mpsc::UnboundedReceiver<TurnEvent>
where
    F: FnOnce(mpsc::UnboundedSender<TurnEvent>) -> Fut + Send + 'static,
    Fut: Future<Output = TurnResult> + Send + 'static,
{
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let result = run(tx.clone()).await;
        let _ = tx.send(TurnEvent::Done(Box::new(result)));
    });
    rx
}

/// A sink closure that forwards deltas into the channel.
pub fn sink_for(tx: &mpsc::UnboundedSender<TurnEvent>) -> impl FnMut(&str) + Send + '_ {
    move |d: &str| {
        let _ = tx.send(TurnEvent::Delta(d.to_string()));
    }
}
