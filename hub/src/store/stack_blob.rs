//! How a user stack is kept once per distinct stack in either engine: the frames encoded as
//! an event carrying only them (plain protobuf, readable by any tool that knows
//! `tapper.v1.Event`), keyed by the SHA-256 digest of that encoding.

use prost::Message;
use sha2::{Digest, Sha256};
use tapper_proto::v1::{Event, StackFrame};

/// A stack ready to store: its encoded frames and their digest.
pub struct StackBlob {
    pub digest: Vec<u8>,
    pub frames: Vec<u8>,
}

impl StackBlob {
    /// The blob of `frames`; `None` for an empty stack (nothing to store).
    pub fn of(frames: &[StackFrame]) -> Option<Self> {
        if frames.is_empty() {
            return None;
        }
        let frames = Event {
            user_stack: frames.to_vec(),
            ..Default::default()
        }
        .encode_to_vec();
        Some(Self {
            digest: Sha256::digest(&frames).to_vec(),
            frames,
        })
    }
}

/// The frames of a stored stack blob.
pub fn decode(blob: &[u8]) -> Result<Vec<StackFrame>, prost::DecodeError> {
    Ok(Event::decode(blob)?.user_stack)
}
