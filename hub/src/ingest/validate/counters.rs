//! Checks a tapper's Counters before they are kept: the per-errno map is keyed by errno
//! (a name or a number 1..4095), so it stays small.

use tapper_proto::{limits::MAX_ERRNO_ENTRIES, v1::Counters};

use crate::error::HubError;

/// Every per-errno key is an errno, and there are not too many of them.
pub fn check(c: &Counters) -> Result<(), HubError> {
    if c.per_errno.len() > MAX_ERRNO_ENTRIES {
        return Err(HubError::invalid(
            "counters.per_errno",
            format!(
                "{} entries exceed the limit of {MAX_ERRNO_ENTRIES}",
                c.per_errno.len()
            ),
        ));
    }
    // Sorted, so the error names the same key every time.
    let mut keys: Vec<&String> = c.per_errno.keys().collect();
    keys.sort();
    for k in keys {
        if k.len() > 32 {
            return Err(HubError::invalid(
                "counters.per_errno",
                "key longer than 32 bytes is no errno",
            ));
        }
        tapper_names::parse_errno(k)
            .map_err(|e| HubError::invalid(format!("counters.per_errno[{k:?}]"), e.to_string()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(keys: impl IntoIterator<Item = String>) -> Counters {
        Counters {
            per_errno: keys.into_iter().map(|k| (k, 1)).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn errno_keys_are_errnos_and_bounded() {
        assert!(check(&with(["EMFILE".into(), "24".into(), "4095".into()])).is_ok());
        for bad in ["0", "4096", "-1", "EFOO", "x"] {
            let e = check(&with([bad.to_owned()])).unwrap_err().to_string();
            assert!(e.starts_with("counters.per_errno["), "{bad}: {e}");
        }
        let e = check(&with((0..5000).map(|i| format!("{i}"))))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("counters.per_errno: 5000 entries"), "{e}");
    }
}
