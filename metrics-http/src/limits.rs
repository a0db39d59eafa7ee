//! The endpoint's connection limits and their flags, the same in the tapper and the hub:
//! a cap on open connections, and how long a request head and a silent connection may take.

use std::time::Duration;

/// How many `/metrics` connections are held, and for how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::Args)]
pub struct ConnectionLimits {
    /// Open connections to /metrics at most; more are accepted and closed at once (and
    /// logged, at most every 10 s). A scraper needs one.
    #[arg(id = "metrics_max_connections", long = "metrics-max-connections", value_name = "N", default_value_t = 64,
          value_parser = clap::value_parser!(u32).range(1..=65_536))]
    pub max_connections: u32,
    /// A /metrics connection must send a whole request head within this time, after it
    /// opens and between requests on a kept-alive connection, or it is closed.
    #[arg(id = "metrics_header_timeout", long = "metrics-header-timeout", value_name = "DURATION", default_value = "5s",
          value_parser = parse_timeout)]
    pub header_timeout: Duration,
    /// A /metrics connection that neither sends nor takes a byte for this long is closed.
    #[arg(id = "metrics_idle_timeout", long = "metrics-idle-timeout", value_name = "DURATION", default_value = "30s",
          value_parser = parse_timeout)]
    pub idle_timeout: Duration,
}

impl Default for ConnectionLimits {
    /// The flags' defaults: they are declared once, on the flags above.
    fn default() -> Self {
        #[derive(clap::Parser)]
        struct Flags {
            #[command(flatten)]
            limits: ConnectionLimits,
        }
        <Flags as clap::Parser>::parse_from(["metrics"]).limits
    }
}

/// A timeout of at least 100 ms, e.g. `5s` or `500ms`.
fn parse_timeout(text: &str) -> Result<Duration, String> {
    let timeout = humantime::parse_duration(text)
        .map_err(|err| format!("`{text}` is not a duration ({err}); use e.g. 5s or 500ms"))?;
    if timeout < Duration::from_millis(100) {
        return Err(format!("`{text}` is too short; use at least 100ms"));
    }
    Ok(timeout)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Flags {
        #[command(flatten)]
        limits: ConnectionLimits,
    }

    fn parse(args: &[&str]) -> Result<ConnectionLimits, String> {
        Flags::try_parse_from(std::iter::once("x").chain(args.iter().copied()))
            .map(|f| f.limits)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn the_flags_default_to_the_documented_limits_and_check_their_values() {
        let default = ConnectionLimits::default();
        assert_eq!(parse(&[]).unwrap(), default);
        assert_eq!(default.max_connections, 64);
        assert_eq!(default.header_timeout, Duration::from_secs(5));
        assert_eq!(default.idle_timeout, Duration::from_secs(30));
        let set = parse(&[
            "--metrics-max-connections",
            "8",
            "--metrics-header-timeout",
            "1s",
            "--metrics-idle-timeout",
            "2m",
        ])
        .unwrap();
        assert_eq!(set.max_connections, 8);
        assert_eq!(set.header_timeout, Duration::from_secs(1));
        assert_eq!(set.idle_timeout, Duration::from_secs(120));
        assert!(parse(&["--metrics-max-connections", "0"]).is_err());
        let short = parse(&["--metrics-header-timeout", "1ms"]).unwrap_err();
        assert!(short.contains("at least 100ms"), "{short}");
        let bad = parse(&["--metrics-idle-timeout", "soon"]).unwrap_err();
        assert!(bad.contains("not a duration"), "{bad}");
    }
}
