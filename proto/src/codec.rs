//! The prost codec the generated code uses, with one change: a malformed message is
//! `INVALID_ARGUMENT` naming it, not `INTERNAL`. Size limits are set per server and per client
//! (`max_decoding_message_size`), where each is built.

use std::marker::PhantomData;

use prost::Message;
use tonic::{
    Status,
    codec::{BufferSettings, Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
};

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

/// Decodes with prost.
#[derive(Debug)]
pub struct HubDecoder<U>(PhantomData<U>);

impl<U: Message + Default> Decoder for HubDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        let name = std::any::type_name::<U>()
            .rsplit("::")
            .next()
            .unwrap_or("message");
        U::decode(buf)
            .map(Some)
            .map_err(|e| Status::invalid_argument(format!("{name}: malformed protobuf: {e}")))
    }

    fn buffer_settings(&self) -> BufferSettings {
        BufferSettings::default()
    }
}
