//! A committed item encoded once, as the `SubscribeResponse` that carries it, for every
//! subscriber it goes to: the gRPC stream writes these bytes as they are, and the page's
//! SSE stream renders the item's JSON once for all its subscribers.

use std::sync::OnceLock;

use bytes::Bytes;
use prost::{Message, encoding};
use tapper_proto::v1::{Event, LossNotice, SubscribeResponse, Warning, subscribe_response};

/// The field numbers of `SubscribeResponse.item`'s cases (hub.proto).
const EVENT: u32 = 1;
const LOSS: u32 = 3;
const WARNING: u32 = 4;

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
    /// Encodes `item`, field `tag` of the response's `item` oneof, straight from a reference:
    /// the bytes prost makes of the `SubscribeResponse` holding it, without moving the item
    /// into one, in a buffer of the exact size.
    fn new(hub_seq: u64, tag: u32, item: &impl Message) -> Self {
        let len = item.encoded_len();
        let mut response = Vec::with_capacity(
            encoding::key_len(tag) + encoding::encoded_len_varint(len as u64) + len,
        );
        encoding::message::encode(tag, item, &mut response);
        Self {
            hub_seq,
            response: response.into(),
            json: OnceLock::new(),
        }
    }

    pub fn event(event: &Event) -> Self {
        Self::new(event.hub_seq, EVENT, event)
    }

    pub fn loss(loss: &LossNotice) -> Self {
        Self::new(loss.hub_seq, LOSS, loss)
    }

    pub fn warning(warning: &Warning) -> Self {
        Self::new(warning.hub_seq, WARNING, warning)
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
        let encoded = Encoded::event(&event);
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

    #[test]
    fn losses_and_warnings_are_encoded_as_their_responses() {
        let loss = LossNotice {
            hub_seq: 8,
            node: "n".into(),
            ..Default::default()
        };
        let warning = Warning {
            hub_seq: 9,
            comm: "nginx".into(),
            ..Default::default()
        };
        for (encoded, item) in [
            (
                Encoded::loss(&loss),
                subscribe_response::Item::Loss(loss.clone()),
            ),
            (
                Encoded::warning(&warning),
                subscribe_response::Item::Warning(warning.clone()),
            ),
        ] {
            let want = SubscribeResponse {
                item: Some(item.clone()),
            }
            .encode_to_vec();
            assert_eq!(&encoded.response[..], &want[..]);
            assert_eq!(encoded.decoded(), Some(item));
        }
    }
}
