//! Finds the workspace's binaries: an explicit environment variable, or the build
//! directory the running test or benchmark executable was built into.

use std::path::PathBuf;

use crate::TestkitError;

/// The binary `name`: `$NAME_BIN` (upper case, `-` as `_`, e.g. `HUB_CLIENT_BIN`) if set,
/// otherwise the file next to the running executable, or one level up from a test
/// executable in `target/<profile>/deps/`.
pub fn workspace_bin(name: &str) -> Result<PathBuf, TestkitError> {
    let var = format!("{}_BIN", name.to_uppercase().replace('-', "_"));
    if let Some(path) = std::env::var_os(&var) {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe().map_err(|source| TestkitError::Io {
        what: "finding the running executable".into(),
        source,
    })?;
    let mut dir = exe.parent().map(PathBuf::from).unwrap_or_default();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let path = dir.join(name);
    if path.is_file() {
        Ok(path)
    } else {
        Err(TestkitError::BinaryNotFound { path, var })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_variable_wins() {
        // SAFETY: no other test of this crate reads or writes this variable.
        unsafe { std::env::set_var("SOME_TOOL_BIN", "/opt/some-tool") };
        assert_eq!(
            workspace_bin("some-tool").unwrap(),
            PathBuf::from("/opt/some-tool")
        );
    }

    #[test]
    fn a_missing_binary_says_where_it_looked_and_how_to_override() {
        let err = workspace_bin("no-such-binary").unwrap_err().to_string();
        assert!(err.contains("NO_SUCH_BINARY_BIN"), "{err}");
        assert!(err.contains("no-such-binary"), "{err}");
    }
}
