//! A committed item encoded once, as the `SubscribeResponse` that carries it, for every
//! subscriber it goes to: the gRPC stream writes these bytes as they are, and the page's
//! SSE stream renders the item's JSON once for all its subscribers.

use std::sync::OnceLock;

use bytes::Bytes;
use prost::Message;
use tapper_proto::v1::{Event, LossNotice, SubscribeResponse, Warning, subscribe_response};

/// One committed item in its wire form, shared by every queue it goes to.
#[derive(Debug)]
pub struct Encoded {
    /// Its hub sequence number.
    pub hub_seq: u64,
    /// The encoded `SubscribeResponse` holding it: what goes on the wire.
    pub response: Bytes,
    /// Its JSON, rendered by the first subscriber that wants it.
    json: OnceLock<String>,
}

impl Encoded {
    /// Encodes `item` once; its size against a queue's byte budget is the item's own.
    fn new(hub_seq: u64, item: subscribe_response::Item) -> Self {
        let response = SubscribeResponse { item: Some(item) }
            .encode_to_vec()
            .into();
        Self {
            hub_seq,
            response,
            json: OnceLock::new(),
        }
    }

    pub fn event(event: Event) -> Self {
        Self::new(event.hub_seq, subscribe_response::Item::Event(event))
    }

    pub fn loss(loss: LossNotice) -> Self {
        Self::new(loss.hub_seq, subscribe_response::Item::Loss(loss))
    }

    pub fn warning(warning: Warning) -> Self {
        Self::new(warning.hub_seq, subscribe_response::Item::Warning(warning))
    }

    /// The item decoded again (for a rendering other than protobuf).
    pub fn decoded(&self) -> Option<subscribe_response::Item> {
        SubscribeResponse::decode(&self.response[..])
            .ok()
            .and_then(|r| r.item)
    }

    /// Its JSON: `render`ed by the first caller, the same text for every later one.
    pub fn json(&self, render: impl FnOnce(&Self) -> String) -> &str {
        self.json.get_or_init(|| render(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bytes_are_prosts_encoding_of_the_response() {
        let event = Event {
            hub_seq: 7,
            comm: "curl".into(),
            errno: 97,
            ..Default::default()
        };
        let want = SubscribeResponse {
            item: Some(subscribe_response::Item::Event(event.clone())),
        }
        .encode_to_vec();
        let encoded = Encoded::event(event.clone());
        assert_eq!(encoded.hub_seq, 7);
        assert_eq!(&encoded.response[..], &want[..]);
        assert_eq!(
            encoded.decoded(),
            Some(subscribe_response::Item::Event(event))
        );
        let mut renders = 0;
        for _ in 0..2 {
            encoded.json(|_| {
                renders += 1;
                "{}".into()
            });
        }
        assert_eq!(renders, 1, "rendered once");
    }
}
