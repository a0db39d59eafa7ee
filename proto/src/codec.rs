//! The prost codec the generated code uses, with one change: a message that is malformed or
//! larger than [`max_message_bytes`] is `INVALID_ARGUMENT` naming it, not `INTERNAL`.

use std::{
    marker::PhantomData,
    sync::atomic::{AtomicUsize, Ordering},
};

use prost::Message;
use tonic::{
    Status,
    codec::{BufferSettings, Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
};

/// Default limit for one decoded message: 4 MiB.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

static MAX_MESSAGE_BYTES: AtomicUsize = AtomicUsize::new(DEFAULT_MAX_MESSAGE_BYTES);

/// Sets the largest message any [`HubCodec`] in this process decodes. Configure tonic's own
/// `max_decoding_message_size` above it so that this check, with its clearer error, runs.
pub fn set_max_message_bytes(limit: usize) {
    MAX_MESSAGE_BYTES.store(limit, Ordering::Relaxed);
}

/// The current decoding limit.
pub fn max_message_bytes() -> usize {
    MAX_MESSAGE_BYTES.load(Ordering::Relaxed)
}

/// `application/grpc+proto` through prost, with precise errors for bad input.
#[derive(Debug, Clone)]
pub struct HubCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for HubCodec<T, U> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<T, U> Codec for HubCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = HubEncoder<T>;
    type Decoder = HubDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        HubEncoder(PhantomData)
    }

    fn decoder(&mut self) -> Self::Decoder {
        HubDecoder(PhantomData)
    }
}

/// Encodes with prost.
#[derive(Debug)]
pub struct HubEncoder<T>(PhantomData<T>);

impl<T: Message> Encoder for HubEncoder<T> {
    type Item = T;
    type Error = Status;

    fn encode(&mut self, item: T, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(buf)
            .map_err(|e| Status::internal(format!("encoding a response: {e}")))
    }

    fn buffer_settings(&self) -> BufferSettings {
        BufferSettings::default()
    }
}

/// Decodes with prost; checks the size limit first.
#[derive(Debug)]
pub struct HubDecoder<U>(PhantomData<U>);

impl<U: Message + Default> Decoder for HubDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        use prost::bytes::Buf;
        let len = buf.remaining();
        let limit = max_message_bytes();
        let name = std::any::type_name::<U>()
            .rsplit("::")
            .next()
            .unwrap_or("message");
        if len > limit {
            return Err(Status::invalid_argument(format!(
                "{name}: message of {len} bytes exceeds the limit of {limit} bytes"
            )));
        }
        U::decode(buf)
            .map(Some)
            .map_err(|e| Status::invalid_argument(format!("{name}: malformed protobuf: {e}")))
    }

    fn buffer_settings(&self) -> BufferSettings {
        BufferSettings::default()
    }
}
