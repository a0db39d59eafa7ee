//! A server stream with final items: the producer's last items (e.g. a final `lagged`
//! notice and an error status) are handed over out of band, so they reach the client after
//! everything queued even when the queue is full and the producer cannot wait for room.

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use tokio::sync::{mpsc, oneshot};
use tokio_stream::{Stream, wrappers::ReceiverStream};
use tonic::Status;

type Item<T> = Result<T, Status>;

/// Hands the stream its last items; dropping it ends the stream after the queue instead.
pub struct Closer<T>(oneshot::Sender<Vec<Item<T>>>);

impl<T> Closer<T> {
    /// Queues `last` after everything already sent; the stream ends after them.
    pub fn close_with(self, last: Vec<Item<T>>) {
        let _ = self.0.send(last);
    }
}

/// The client's side: the queued items, then the final items, then the end.
pub struct ClosingStream<T> {
    queue: ReceiverStream<Item<T>>,
    final_items: Option<oneshot::Receiver<Vec<Item<T>>>>,
    last: std::vec::IntoIter<Item<T>>,
}

/// A queue of `capacity` items with a closer.
pub fn channel<T>(capacity: usize) -> (mpsc::Sender<Item<T>>, Closer<T>, ClosingStream<T>) {
    let (tx, rx) = mpsc::channel(capacity);
    let (close_tx, close_rx) = oneshot::channel();
    let stream = ClosingStream {
        queue: ReceiverStream::new(rx),
        final_items: Some(close_rx),
        last: Vec::new().into_iter(),
    };
    (tx, Closer(close_tx), stream)
}

// Nothing in it is ever pinned in place: items are moved in and out whole.
impl<T> Unpin for ClosingStream<T> {}

impl<T> Stream for ClosingStream<T> {
    type Item = Item<T>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Item<T>>> {
        let this = self.get_mut();
        if let Some(final_items) = &mut this.final_items {
            match Pin::new(&mut this.queue).poll_next(cx) {
                Poll::Ready(Some(item)) => return Poll::Ready(Some(item)),
                Poll::Pending => return Poll::Pending,
                // Every sender is gone: now the final items, if the producer left any.
                Poll::Ready(None) => match Pin::new(final_items).poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(last) => {
                        this.last = last.unwrap_or_default().into_iter();
                        this.final_items = None;
                    }
                },
            }
        }
        Poll::Ready(this.last.next())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_stream::StreamExt;

    #[tokio::test]
    async fn final_items_follow_a_full_queue() {
        let (tx, closer, stream) = channel::<u32>(2);
        tx.try_send(Ok(1)).unwrap();
        tx.try_send(Ok(2)).unwrap();
        assert!(tx.try_send(Ok(3)).is_err(), "the queue is full");
        closer.close_with(vec![Ok(9), Err(Status::resource_exhausted("bye"))]);
        drop(tx);
        let got: Vec<_> = stream.collect().await;
        assert_eq!(got.len(), 4);
        assert_eq!(
            got[..3]
                .iter()
                .map(|r| *r.as_ref().unwrap())
                .collect::<Vec<_>>(),
            [1, 2, 9]
        );
        assert_eq!(got[3].as_ref().unwrap_err().message(), "bye");
    }

    #[tokio::test]
    async fn a_dropped_closer_just_ends_the_stream() {
        let (tx, closer, stream) = channel::<u32>(2);
        tx.try_send(Ok(1)).unwrap();
        drop((tx, closer));
        assert_eq!(stream.collect::<Vec<_>>().await.len(), 1);
    }
}
