//! The Report stream's requests as the reporter sends them: each event is encoded once, when
//! it is buffered, and an `EventBatch` is written from those bytes (tag, length, bytes per
//! event), byte for byte what prost writes for the same `ReportRequest`.

use prost::{
    Message,
    bytes::{BufMut, Bytes},
    encoding::{WireType, encode_key, encode_varint, encoded_len_varint, key_len},
};
use tapper_proto::{
    codec::{HubCodec, HubDecoder},
    v1::{Event, ReportRequest, ReportResponse},
};
use tonic::{
    Status,
    codec::{Codec, EncodeBuf, Encoder},
};

/// Field number of `events` in `ReportRequest.msg`.
const REQUEST_EVENTS: u32 = 2;
/// Field number of `events` in `EventBatch`.
const BATCH_EVENTS: u32 = 1;

/// Bytes of `event` on the wire.
pub fn event_len(event: &Event) -> usize {
    event.encoded_len()
}

/// What an event of `len` encoded bytes adds to an `EventBatch` (its tag and length too).
pub fn in_batch(len: usize) -> usize {
    key_len(BATCH_EVENTS) + encoded_len_varint(len as u64) + len
}

/// One request of the Report stream.
#[derive(Debug, Clone)]
pub enum Outgoing {
    /// Anything but events, encoded by prost when sent.
    Request(Box<ReportRequest>),
    /// An `EventBatch` of events encoded when they were buffered, in seq order.
    Events {
        first_seq: u64,
        last_seq: u64,
        events: Vec<Bytes>,
    },
}

impl Outgoing {
    /// The seq numbers it covers (counters and hello have none).
    pub fn seq_range(&self) -> Option<(u64, u64)> {
        use tapper_proto::v1::report_request::Msg;
        match self {
            Outgoing::Events {
                first_seq,
                last_seq,
                ..
            } => Some((*first_seq, *last_seq)),
            Outgoing::Request(r) => match &r.msg {
                Some(Msg::Loss(l)) => Some((l.first_seq, l.last_seq)),
                Some(Msg::Warning(w)) => Some((w.seq, w.seq)),
                _ => None,
            },
        }
    }

    /// Writes the encoded `ReportRequest`.
    pub fn encode(&self, buf: &mut impl BufMut) {
        match self {
            Outgoing::Request(r) => r.encode_raw(buf),
            Outgoing::Events { events, .. } => {
                let batch: usize = events.iter().map(|e| in_batch(e.len())).sum();
                encode_key(REQUEST_EVENTS, WireType::LengthDelimited, buf);
                encode_varint(batch as u64, buf);
                for e in events {
                    encode_key(BATCH_EVENTS, WireType::LengthDelimited, buf);
                    encode_varint(e.len() as u64, buf);
                    buf.put_slice(e);
                }
            }
        }
    }

    /// The `ReportRequest` the hub decodes from it.
    #[cfg(test)]
    pub fn decoded(&self) -> ReportRequest {
        let mut buf = Vec::new();
        self.encode(&mut buf);
        ReportRequest::decode(buf.as_slice()).expect("a valid ReportRequest")
    }
}

/// The Report stream's codec: [`Outgoing`] requests, responses decoded as the hub's codec does.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReportCodec;

impl Codec for ReportCodec {
    type Encode = Outgoing;
    type Decode = ReportResponse;
    type Encoder = OutgoingEncoder;
    type Decoder = HubDecoder<ReportResponse>;

    fn encoder(&mut self) -> OutgoingEncoder {
        OutgoingEncoder
    }

    fn decoder(&mut self) -> HubDecoder<ReportResponse> {
        HubCodec::<ReportRequest, ReportResponse>::default().decoder()
    }
}

/// Writes [`Outgoing`] requests.
#[derive(Debug)]
pub struct OutgoingEncoder;

impl Encoder for OutgoingEncoder {
    type Item = Outgoing;
    type Error = Status;

    fn encode(&mut self, item: Outgoing, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(buf);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tapper_proto::v1::{EventBatch, report_request::Msg};

    fn events() -> Vec<Event> {
        (1..=3)
            .map(|i| Event {
                seq: i,
                cmdline: "x".repeat(200 * i as usize),
                ..Default::default()
            })
            .collect()
    }

    #[test]
    fn batch_size_is_the_sum_of_its_events() {
        let events = events();
        let sum: usize = events.iter().map(|e| in_batch(event_len(e))).sum();
        assert_eq!(EventBatch { events }.encoded_len(), sum);
    }

    #[test]
    fn a_batch_of_encoded_events_is_what_prost_writes() {
        let events = events();
        let out = Outgoing::Events {
            first_seq: 1,
            last_seq: 3,
            events: events
                .iter()
                .map(|e| Bytes::from(e.encode_to_vec()))
                .collect(),
        };
        let mut ours = Vec::new();
        out.encode(&mut ours);
        let prost = ReportRequest {
            msg: Some(Msg::Events(EventBatch { events })),
        }
        .encode_to_vec();
        assert_eq!(ours, prost);
    }
}
