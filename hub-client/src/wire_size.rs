//! Encoded (protobuf) sizes of events, for the reporter's byte budgets.

use prost::{
    Message,
    encoding::{encoded_len_varint, key_len},
};
use tapper_proto::v1::Event;

/// Bytes of `event` on the wire.
pub fn event_len(event: &Event) -> usize {
    event.encoded_len()
}

/// What an event of `len` encoded bytes adds to an `EventBatch` (its tag and length too).
pub fn in_batch(len: usize) -> usize {
    key_len(1) + encoded_len_varint(len as u64) + len
}

#[cfg(test)]
mod tests {
    use super::*;
    use tapper_proto::v1::EventBatch;

    #[test]
    fn batch_size_is_the_sum_of_its_events() {
        let events: Vec<_> = (1..=3)
            .map(|i| Event {
                seq: i,
                cmdline: "x".repeat(200 * i as usize),
                ..Default::default()
            })
            .collect();
        let sum: usize = events.iter().map(|e| in_batch(event_len(e))).sum();
        assert_eq!(EventBatch { events }.encoded_len(), sum);
    }
}
