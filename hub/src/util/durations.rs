//! Durations as operators write them in flags and rule files ("90s", "15m", "24h", "7d").

use std::time::Duration;

/// Parses a humantime duration ("90s", "15m", "24h", "7d", "1h30m") or bare seconds ("90");
/// zero is refused.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let d = match t.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => humantime::parse_duration(t)
            .map_err(|e| format!("{text:?} is not a duration ({e}); use e.g. 30s, 15m, 24h, 7d"))?,
    };
    if d.is_zero() {
        return Err(format!("{text:?}: the duration must be longer than 0"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(604_800)));
        assert_eq!(parse_duration(" 1h30m "), Ok(Duration::from_secs(5400)));
        assert!(parse_duration("5x").unwrap_err().contains("not a duration"));
        assert!(parse_duration("-5s").is_err());
        assert!(parse_duration("0").unwrap_err().contains("longer than 0"));
        // Too big for a Duration: an error, not a wrap or a panic.
        assert!(parse_duration("99999999999999999999d").is_err());
        assert!(parse_duration("99999999999999999999").is_err());
    }
}
