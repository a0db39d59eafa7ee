//! Compiles proto/tapper/v1/*.proto without a system protoc: protox parses them into a file
//! descriptor set, which feeds both the generated Rust and the reflection service.

use std::{env, fs, path::PathBuf};

use prost::Message;

const PROTOS: &[&str] = &["tapper/v1/event.proto", "tapper/v1/hub.proto"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    for p in PROTOS {
        println!("cargo:rerun-if-changed={}", manifest.join(p).display());
    }
    let fds = protox::compile(PROTOS, [&manifest])?;
    let out = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(out.join("tapper_v1_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .codec_path("crate::codec::HubCodec")
        .compile_fds(fds)?;
    Ok(())
}
