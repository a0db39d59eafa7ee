//! `--web-base-path`: the path the page and the HTTP API are served under, checked once.

/// A checked base path: empty for `/`, else `/a/b` without a trailing slash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BasePath(String);

impl BasePath {
    /// Checks `text` (e.g. `/`, `/tapper`, `/tools/tapper/`); the error says what to give.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "{text:?} is not a usable path: start with / and use letters, digits, \
                 - _ . ~ between slashes (e.g. /tapper)"
            )
        };
        let Some(rest) = text.strip_prefix('/') else {
            return Err(bad());
        };
        if rest.is_empty() {
            return Ok(Self(String::new()));
        }
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let segment_ok = |s: &str| {
            !s.is_empty()
                && s != "."
                && s != ".."
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.~".contains(c))
        };
        if !rest.split('/').all(segment_ok) {
            return Err(bad());
        }
        Ok(Self(format!("/{rest}")))
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The base itself, `""` for the root.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `path` (starting with `/`) under the base.
    pub fn join(&self, path: &str) -> String {
        format!("{}{path}", self.0)
    }

    /// The `Path` of the session cookie.
    pub fn cookie_path(&self) -> &str {
        if self.is_root() { "/" } else { &self.0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_normalized_and_bad_ones_refused() {
        assert_eq!(BasePath::parse("/").unwrap().join("/x"), "/x");
        assert_eq!(BasePath::parse("/tapper/").unwrap().as_str(), "/tapper");
        assert_eq!(BasePath::parse("/a/b").unwrap().cookie_path(), "/a/b");
        for bad in ["", "tapper", "//", "/a//b", "/a/../b", "/{x}", "/a b", "/*"] {
            assert!(BasePath::parse(bad).is_err(), "{bad:?}");
        }
    }
}
