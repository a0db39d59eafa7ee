//! podman's containers, from its storage's `containers.json` (containers/storage, one per
//! storage driver, e.g. `overlay-containers/containers.json`): names and images without a
//! podman service running.

use std::{
    fs,
    path::{Path, PathBuf},
};

use serde::Deserialize;

use super::cache::{ContainerMeta, Listing};

/// One entry of `containers.json`.
#[derive(Deserialize)]
struct StoredContainer {
    id: String,
    #[serde(default)]
    names: Vec<String>,
    /// A JSON document in a string; podman puts `image-name` there.
    #[serde(default)]
    metadata: String,
}

#[derive(Deserialize)]
struct StoredMetadata {
    #[serde(rename = "image-name")]
    image_name: Option<String>,
}

pub struct PodmanStorage {
    root: PathBuf,
}

impl PodmanStorage {
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Every container in the storage, by id; an unreadable file is an error that names it.
    pub fn list(&self) -> Result<Listing, String> {
        let dirs = fs::read_dir(&self.root)
            .map_err(|err| format!("reading {}: {err}", self.root.display()))?;
        let mut containers = Vec::new();
        for dir in dirs.flatten() {
            let is_containers = dir.file_name().to_string_lossy().ends_with("-containers");
            let file = dir.path().join("containers.json");
            if !is_containers || !file.exists() {
                continue;
            }
            let text = fs::read_to_string(&file)
                .map_err(|err| format!("reading {}: {err}", file.display()))?;
            containers
                .extend(parse(&text).map_err(|err| format!("parsing {}: {err}", file.display()))?);
        }
        Ok(Listing {
            containers,
            pods: Vec::new(),
        })
    }
}

fn parse(text: &str) -> serde_json::Result<Vec<(String, ContainerMeta)>> {
    let stored: Vec<StoredContainer> = serde_json::from_str(text)?;
    Ok(stored
        .into_iter()
        .map(|c| {
            let image = serde_json::from_str::<StoredMetadata>(&c.metadata)
                .ok()
                .and_then(|m| m.image_name);
            let meta = ContainerMeta {
                runtime: "podman",
                name: c.names.into_iter().next(),
                image,
                pod: None,
            };
            (c.id, meta)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_storage_entry() {
        let text = r#"[{"id":"ca9d","names":["web"],"image":"04a8","layer":"dcee",
            "metadata":"{\"image-name\":\"localhost/web:1\",\"name\":\"web\"}"},
            {"id":"b2","names":[],"metadata":"not json"}]"#;
        let listing = parse(text).unwrap();
        assert_eq!(listing[0].0, "ca9d");
        assert_eq!(listing[0].1.name.as_deref(), Some("web"));
        assert_eq!(listing[0].1.image.as_deref(), Some("localhost/web:1"));
        assert_eq!(listing[1].1.name, None);
        assert_eq!(listing[1].1.image, None);
        assert!(parse("{").is_err());
    }
}
