//! The wire format of the tapper hub (`tapper.v1`): messages and the `Hub` service, generated
//! from `proto/tapper/v1/*.proto` (the single source of truth) with tonic + prost.
//!
//! - [`v1`] holds the messages, [`v1::hub_client::HubClient`] and [`v1::hub_server`].
//! - [`FILE_DESCRIPTOR_SET`] is the encoded descriptor set, for gRPC server reflection.
//! - [`codec`] is the codec the generated code uses: prost, but a malformed message is
//!   `INVALID_ARGUMENT` instead of `INTERNAL`.
//! - [`json`] (feature `json`) is the JSON form of [`v1::Event`]: serde on the generated
//!   types, the tapper's JSON lines, the client's `--json` and the hub's HTTP API alike (with
//!   loss notices, tappers and stats).
//! - [`limits`] is every wire limit (requests, an event's strings), for the clients and
//!   the hub alike.
//! - [`text`] escapes control characters for human-readable output.
//! - [`table`] is the one event table for people (the tapper's and `hub-client watch`'s).
//! - [`flag_text`] (feature `json`) reads durations, times and listen addresses as people
//!   write them.
//! - [`WarningKind`] is the one list of warning kinds (`Warning.kind`).

pub mod codec;
#[cfg(feature = "json")]
pub mod flag_text;
#[cfg(feature = "json")]
pub mod json;
pub mod limits;
pub mod stack_text;
pub mod table;
pub mod text;
mod warning_kind;

pub use warning_kind::{UnknownWarningKind, WarningKind};

/// Package `tapper.v1`.
pub mod v1 {
    #![allow(
        clippy::doc_lazy_continuation,
        clippy::doc_overindented_list_items,
        clippy::large_enum_variant
    )]
    tonic::include_proto!("tapper.v1");
}

/// The encoded `google.protobuf.FileDescriptorSet` of `tapper.v1` (imports included).
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/tapper_v1_descriptor.bin"));

/// Fully qualified name of the hub service, as reflection and health list it.
pub const HUB_SERVICE_NAME: &str = "tapper.v1.Hub";

pub use prost_types::Timestamp;

/// Converts Unix nanoseconds to a protobuf timestamp.
pub fn timestamp_from_unix_nanos(ns: i64) -> Timestamp {
    Timestamp {
        seconds: ns.div_euclid(1_000_000_000),
        nanos: ns.rem_euclid(1_000_000_000) as i32,
    }
}

/// Converts a protobuf timestamp to Unix nanoseconds (saturating).
pub fn timestamp_to_unix_nanos(ts: &Timestamp) -> i64 {
    ts.seconds
        .saturating_mul(1_000_000_000)
        .saturating_add(i64::from(ts.nanos))
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn descriptor_set_has_both_files_and_the_service() {
        let fds = prost_types::FileDescriptorSet::decode(FILE_DESCRIPTOR_SET).unwrap();
        let names: Vec<_> = fds.file.iter().map(|f| f.name().to_owned()).collect();
        assert!(
            names.contains(&"tapper/v1/event.proto".to_owned()),
            "{names:?}"
        );
        assert!(
            names.contains(&"google/protobuf/timestamp.proto".to_owned()),
            "{names:?}"
        );
        let hub = fds
            .file
            .iter()
            .find(|f| f.name() == "tapper/v1/hub.proto")
            .unwrap();
        assert_eq!(hub.service[0].name(), "Hub");
        assert_eq!(hub.service[0].method.len(), 4);
    }

    #[test]
    fn timestamps_round_trip_including_negative() {
        for ns in [0, 1, 1_700_000_000_123_456_789, -1, -1_500_000_000] {
            assert_eq!(timestamp_to_unix_nanos(&timestamp_from_unix_nanos(ns)), ns);
        }
        assert_eq!(timestamp_from_unix_nanos(-1).nanos, 999_999_999);
    }
}
