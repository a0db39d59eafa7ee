//! One reply of a Subscribe stream: a fan-out item encoded once for every subscriber
//! (its bytes written as they are) or a reply made for one stream (encoded with prost), so
//! every client reads prost's encoding of a `SubscribeResponse` either way.

use bytes::BufMut;
use prost::Message;
use tapper_proto::v1::{Lagged, SubscribeResponse, subscribe_response};

use crate::ingest::fanout::Item;

/// One reply of a Subscribe stream.
#[derive(Debug)]
pub enum Reply {
    /// From the fan-out: a committed item encoded once, or a lagged notice.
    Live(Item),
    /// Made for this stream alone: a stored item of a replay, or a final notice.
    Own(Box<SubscribeResponse>),
}

impl Reply {
    /// A notice that `skipped` items were skipped here.
    pub fn lagged(skipped: u64) -> Self {
        Self::Own(Box::new(SubscribeResponse {
            item: Some(subscribe_response::Item::Lagged(Lagged { skipped })),
        }))
    }

    /// Its hub_seq (0 for a lagged notice, which is never stored).
    pub fn hub_seq(&self) -> u64 {
        match self {
            Self::Live(Item::Event(e) | Item::Loss(e) | Item::Warning(e)) => e.hub_seq,
            Self::Live(Item::Lagged(_)) => 0,
            Self::Own(r) => r.item.as_ref().map_or(0, hub_seq),
        }
    }

    /// Writes its encoded `SubscribeResponse` to `buf`.
    pub fn encode(self, buf: &mut impl BufMut) -> Result<(), prost::EncodeError> {
        match self {
            Self::Live(Item::Event(e) | Item::Loss(e) | Item::Warning(e)) => {
                buf.put_slice(&e.response);
                Ok(())
            }
            Self::Live(Item::Lagged(skipped)) => Self::lagged(skipped).encode(buf),
            Self::Own(r) => r.encode(buf),
        }
    }
}

/// The hub_seq of a stored item (0 for a lagged notice, which is never stored).
pub fn hub_seq(item: &subscribe_response::Item) -> u64 {
    use subscribe_response::Item as R;
    match item {
        R::Event(e) => e.hub_seq,
        R::Loss(l) => l.hub_seq,
        R::Warning(w) => w.hub_seq,
        R::Lagged(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tapper_proto::v1::Event;

    use super::*;
    use crate::ingest::fanout::Encoded;

    fn bytes(reply: Reply) -> Vec<u8> {
        let mut buf = Vec::new();
        reply.encode(&mut buf).unwrap();
        buf
    }

    #[test]
    fn a_shared_item_goes_out_as_prost_would_encode_it() {
        let event = Event {
            hub_seq: 9,
            comm: "nginx".into(),
            ..Default::default()
        };
        let own = Reply::Own(Box::new(SubscribeResponse {
            item: Some(subscribe_response::Item::Event(event.clone())),
        }));
        let live = Reply::Live(Item::Event(Arc::new(Encoded::event(&event))));
        assert_eq!(live.hub_seq(), 9);
        assert_eq!(bytes(live), bytes(own));
        assert_eq!(bytes(Reply::Live(Item::Lagged(3))), bytes(Reply::lagged(3)));
    }
}
