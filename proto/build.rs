//! Compiles proto/tapper/v1/*.proto without a system protoc: protox parses them into a file
//! descriptor set, which feeds both the generated Rust and the reflection service.

use std::{env, fs, path::PathBuf};

use prost::Message;

const PROTOS: &[&str] = &["tapper/v1/event.proto", "tapper/v1/hub.proto"];

/// The JSON form of an event (feature `json`): serde on the generated types, keyed by the
/// proto field names, with the conventions `event.proto`'s header states.
const JSON_TYPES: &[&str] = &[
    ".tapper.v1.Event",
    ".tapper.v1.Limits",
    ".tapper.v1.Container",
    ".tapper.v1.Pod",
    ".tapper.v1.Quota",
    ".tapper.v1.StackFrame",
    ".tapper.v1.Diagnosis",
    ".tapper.v1.Warning",
];

/// Per-field serde attributes of that JSON form, for the fields of `Event` and of
/// `Warning` with the same name (both messages share these conventions).
const JSON_FIELDS: &[(&str, &str)] = &[
    (
        "seq",
        r#"default, skip_serializing_if = "crate::json::is_zero""#,
    ),
    ("ts", r#"with = "crate::json::timestamp""#),
    ("exe", r#"with = "crate::json::empty_as_null""#),
    ("cmdline", r#"with = "crate::json::empty_as_null""#),
    ("family_name", r#"with = "crate::json::empty_as_null""#),
    ("type_name", r#"with = "crate::json::empty_as_null""#),
    ("protocol_name", r#"with = "crate::json::empty_as_null""#),
    (
        "limits",
        r#"default, skip_serializing_if = "Option::is_none""#,
    ),
    ("source", r#"default"#),
    ("cgroup_path", r#"default"#),
    ("container", r#"default"#),
    ("pod", r#"default"#),
    ("quota", r#"default"#),
    ("suppressed", r#"default"#),
    (
        "user_stack",
        r#"default, skip_serializing_if = "Vec::is_empty""#,
    ),
    ("cap_effective", r#"default"#),
    (
        "seccomp_mode",
        r#"default, with = "crate::json::empty_as_null""#,
    ),
    (
        "from_kernel",
        r#"default, skip_serializing_if = "Vec::is_empty""#,
    ),
    ("diagnosis", r#"default"#),
    ("eta_seconds", r#"default"#),
    ("pid", r#"default"#),
    (
        "truncated",
        r#"default, skip_serializing_if = "Vec::is_empty""#,
    ),
    (
        "node",
        r#"default, skip_serializing_if = "String::is_empty""#,
    ),
    (
        "instance_id",
        r#"default, skip_serializing_if = "String::is_empty""#,
    ),
    (
        "hub_seq",
        r#"default, skip_serializing_if = "crate::json::is_zero""#,
    ),
    (
        "received",
        r#"default, with = "crate::json::timestamp", skip_serializing_if = "Option::is_none""#,
    ),
];

/// The messages `JSON_FIELDS` applies to (a name a message lacks is ignored).
const JSON_FIELD_MESSAGES: &[&str] = &[".tapper.v1.Event", ".tapper.v1.Warning"];

/// Attributes of `Warning` alone: a "file-max" warning has no process, so its `comm` is
/// null (an event's comm is always known).
const WARNING_JSON_FIELDS: &[(&str, &str)] = &[("comm", r#"with = "crate::json::empty_as_null""#)];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    for p in PROTOS {
        println!("cargo:rerun-if-changed={}", manifest.join(p).display());
    }
    let fds = protox::compile(PROTOS, [&manifest])?;
    let out = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(out.join("tapper_v1_descriptor.bin"), fds.encode_to_vec())?;
    let mut config = tonic_prost_build::configure().codec_path("crate::codec::HubCodec");
    for path in JSON_TYPES {
        config = config.type_attribute(
            path,
            r#"#[cfg_attr(feature = "json", derive(serde::Serialize, serde::Deserialize))]"#,
        );
    }
    let field_paths = JSON_FIELDS
        .iter()
        .flat_map(|(field, serde)| {
            JSON_FIELD_MESSAGES
                .iter()
                .map(move |message| (format!("{message}.{field}"), *serde))
        })
        .chain(
            WARNING_JSON_FIELDS
                .iter()
                .map(|(field, serde)| (format!(".tapper.v1.Warning.{field}"), *serde)),
        );
    for (path, serde) in field_paths {
        config = config.field_attribute(
            path,
            format!(r#"#[cfg_attr(feature = "json", serde({serde}))]"#),
        );
    }
    config.compile_fds(fds)?;
    Ok(())
}
