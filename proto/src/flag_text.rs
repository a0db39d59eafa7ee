//! Values as people write them in flags, query strings and rule files (durations, times,
//! listen addresses, name globs): one rule for the tapper, the hub, its HTTP API and
//! hub-client.

use std::{
    net::{SocketAddr, ToSocketAddrs},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use globset::{GlobBuilder, GlobMatcher};
use prost_types::Timestamp;

use crate::json::parse_rfc3339;

/// Parses a humantime duration ("90s", "15m", "24h", "7d", "1h30m", "500ms") or bare
/// seconds ("90"); zero is refused.
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

/// Parses a time: RFC 3339 (any offset), or an age back from now ("15m", "1h", "7d").
pub fn parse_time_or_age(text: &str) -> Result<Timestamp, String> {
    time_or_age_at(text, SystemTime::now())
}

fn time_or_age_at(text: &str, now: SystemTime) -> Result<Timestamp, String> {
    if let Ok(ts) = parse_rfc3339(text.trim()) {
        return Ok(ts);
    }
    let age = parse_duration(text).map_err(|_| {
        format!(
            "{text:?} is neither an RFC 3339 time (e.g. 2026-01-02T03:04:05Z) nor an age back \
             from now (e.g. 15m, 1h, 7d)"
        )
    })?;
    let then = now
        .checked_sub(age)
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .unwrap_or_default();
    Ok(Timestamp {
        seconds: then.as_secs() as i64,
        nanos: then.subsec_nanos() as i32,
    })
}

/// Parses a listen address, `HOST:PORT`, where HOST is an IP address or a name that
/// resolves (`localhost:0`); port 0 picks a free port. A name takes its first address.
pub fn parse_listen_addr(text: &str) -> Result<SocketAddr, String> {
    let t = text.trim();
    if let Ok(addr) = t.parse() {
        return Ok(addr);
    }
    let mut addrs = t.to_socket_addrs().map_err(|e| {
        format!("{text:?} is not a listen address HOST:PORT ({e}); use e.g. 127.0.0.1:50051 or localhost:0")
    })?;
    addrs.next().ok_or_else(|| {
        format!("{text:?} resolves to no address; use an IP address such as 127.0.0.1:50051")
    })
}

/// Compiles a name glob (`*`, `?`, `[a-z]`, `[!a-z]`, `\\` escapes, `{a,b}`) that must
/// match the whole name (a command or pod name; `/` is an ordinary character there).
pub fn name_glob(pattern: &str) -> Result<GlobMatcher, String> {
    GlobBuilder::new(pattern)
        .literal_separator(false)
        .backslash_escape(true)
        .build()
        .map(|g| g.compile_matcher())
        .map_err(|e| {
            format!(
                "{pattern:?} is not a glob ({}); use e.g. 'nginx*'",
                e.kind()
            )
        })
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
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert!(parse_duration("5x").unwrap_err().contains("not a duration"));
        assert!(parse_duration("0s").unwrap_err().contains("longer than 0"));
    }

    #[test]
    fn times_are_rfc3339_or_an_age_back_from_now() {
        let now = UNIX_EPOCH + Duration::from_secs(10_000);
        assert_eq!(
            time_or_age_at("1970-01-01T00:00:05.5Z", now),
            Ok(Timestamp {
                seconds: 5,
                nanos: 500_000_000
            })
        );
        assert_eq!(
            time_or_age_at("1h", now),
            Ok(Timestamp {
                seconds: 10_000 - 3600,
                nanos: 0
            })
        );
        let err = time_or_age_at("yesterday", now).unwrap_err();
        assert!(err.contains("neither an RFC 3339 time"), "{err}");
    }

    #[test]
    fn name_globs_match_whole_names() {
        let glob = name_glob("ngin[x]*").unwrap();
        assert!(glob.is_match("nginx") && glob.is_match("nginx: worker"));
        assert!(!glob.is_match("my-nginx"));
        assert!(name_glob("a/b").unwrap().is_match("a/b"));
        assert!(name_glob("[a").unwrap_err().contains("not a glob"));
    }

    #[test]
    fn listen_addresses_resolve_host_names() {
        assert_eq!(
            parse_listen_addr("0.0.0.0:7"),
            Ok("0.0.0.0:7".parse().unwrap())
        );
        assert!(parse_listen_addr("localhost:0").unwrap().ip().is_loopback());
        assert!(
            parse_listen_addr("localhost")
                .unwrap_err()
                .contains("HOST:PORT")
        );
    }
}
