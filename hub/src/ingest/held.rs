//! What a decoded Report message holds in memory, the unit of the ingest budget: decoded,
//! an event takes several times its encoded size (its struct, and a heap block per string).

use std::mem::size_of;

use prost::Message;
use tapper_proto::v1::{Event, ReportRequest, report_request::Msg};

/// The heap a decoded message's strings and nested lists take per encoded byte, at most:
/// each string is its own allocation, rounded up to the allocator's block (a 10-byte comm
/// takes 32 bytes).
const HEAP_PER_ENCODED_BYTE: usize = 2;

/// The bytes `msg` holds decoded, estimated from its structs and its encoded size.
pub fn bytes(msg: &ReportRequest) -> usize {
    let structs = match &msg.msg {
        Some(Msg::Events(batch)) => batch.events.capacity() * size_of::<Event>(),
        _ => 0,
    };
    size_of::<ReportRequest>() + structs + HEAP_PER_ENCODED_BYTE * msg.encoded_len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tapper_proto::v1::{EventBatch, Warning};

    fn event() -> Event {
        Event {
            comm: "worker".into(),
            exe: "/usr/bin/worker".into(),
            cmdline: "/usr/bin/worker --serve".into(),
            errno_name: "EMFILE".into(),
            message: "Too many open files".into(),
            ..Default::default()
        }
    }

    fn batch(n: usize) -> ReportRequest {
        ReportRequest {
            msg: Some(Msg::Events(EventBatch {
                events: vec![event(); n],
            })),
        }
    }

    #[test]
    fn a_batch_holds_several_times_its_encoding_and_grows_with_its_events() {
        let (one, ten) = (batch(1), batch(10));
        // Decoded, an event holds several times its encoded size: its struct alone does.
        assert!(bytes(&ten) > 4 * ten.encoded_len(), "{}", bytes(&ten));
        assert!(bytes(&ten) - bytes(&one) >= 9 * size_of::<Event>());
    }

    #[test]
    fn other_messages_count_their_encoding() {
        let warning = ReportRequest {
            msg: Some(Msg::Warning(Warning {
                kind: "nofile".into(),
                ..Default::default()
            })),
        };
        assert_eq!(
            bytes(&warning),
            size_of::<ReportRequest>() + 2 * warning.encoded_len()
        );
    }
}
