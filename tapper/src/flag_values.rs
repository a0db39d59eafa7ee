//! Parsers of flag values: each rejects a bad value with a one-line reason that says what
//! would be accepted.

use std::time::Duration;

use globset::GlobMatcher;
use tapper_proto::flag_text::{name_glob, parse_duration};

pub fn parse_pid(text: &str) -> Result<u32, String> {
    match text.trim().parse::<u32>() {
        Ok(pid) if pid > 0 => Ok(pid),
        _ => Err(format!(
            "`{text}` is not a process id; give a positive number such as 1234"
        )),
    }
}

/// A command-name glob (`nginx*`). The kernel keeps 15 bytes of a command name, so a
/// longer pattern without wildcards could never match.
pub fn parse_comm(text: &str) -> Result<GlobMatcher, String> {
    let literal = !text.contains(['*', '?', '[', '{', '\\']);
    match text.len() {
        0 => Err("an empty command name matches nothing; give a name such as nginx".into()),
        n if literal && n > 15 => Err(format!(
            "`{text}` is {n} bytes, but the kernel keeps only the first 15 bytes of a command \
             name; use `{}`",
            &text[..text.floor_char_boundary(15)]
        )),
        _ => name_glob(text),
    }
}

/// A cgroup path from the hierarchy's top, such as `/kubelet`.
pub fn parse_cgroup_root(text: &str) -> Result<String, String> {
    let fine = text.starts_with('/')
        && text.len() > 1
        && !text
            .split('/')
            .any(|segment| segment == "." || segment == "..");
    match fine {
        true => Ok(text.trim_end_matches('/').to_owned()),
        false => Err(format!(
            "`{text}` is not a cgroup path below the top; give one such as /kubelet"
        )),
    }
}

/// Accepts `http(s)://HOST:PORT` or a bare `HOST:PORT`.
pub fn parse_hub_url(text: &str) -> Result<String, String> {
    hub_client::parse_hub_address(text).map_err(|e| e.to_string())
}

/// A duration of at least 100 ms (`10s`, `500ms`, `1m`, or bare seconds).
pub fn parse_interval(text: &str) -> Result<Duration, String> {
    let interval = parse_duration(text)?;
    if interval < Duration::from_millis(100) {
        return Err(format!("`{text}` is too short; use at least 100ms"));
    }
    Ok(interval)
}

/// How long events may be held back: 0, or a duration of at most 100 ms (`20ms`, `1ms`).
pub fn parse_hold(text: &str) -> Result<Duration, String> {
    let interval = match text.trim() {
        "0" => Duration::ZERO,
        t => parse_duration(t)?,
    };
    if interval > Duration::from_millis(100) {
        return Err(format!(
            "`{text}` would hold events too long; use at most 100ms"
        ));
    }
    Ok(interval)
}

/// A warn ratio: a fraction in (0, 1], or 0 for off.
pub fn parse_warn_ratio(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(ratio) if ratio == 0.0 || (ratio > 0.0 && ratio <= 1.0) => Ok(ratio),
        _ => Err(format!(
            "`{text}` is not a warn ratio; give a fraction above 0 and at most 1, such as 0.8, \
             or 0 to turn these warnings off"
        )),
    }
}

/// A byte count: a number with an optional KiB, MiB or GiB suffix, at least 1 KiB.
pub fn parse_bytes(text: &str) -> Result<usize, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let shift = match unit.trim() {
        "" | "B" => 0,
        "KiB" => 10,
        "MiB" => 20,
        "GiB" => 30,
        _ => {
            return Err(format!(
                "`{text}`: unknown unit; use e.g. 64MiB, 512KiB or 1048576"
            ));
        }
    };
    match number
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
    {
        Some(n) if n >= 1024 => Ok(n),
        _ => Err(format!(
            "`{text}` is not a byte count of at least 1KiB; use e.g. 64MiB, 512KiB or 1048576"
        )),
    }
}

pub fn parse_ring_size(text: &str) -> Result<u32, String> {
    let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .unwrap_or(4096) as u32;
    match text.trim().parse::<u32>() {
        Ok(n) if n.is_power_of_two() && n >= page => Ok(n),
        _ => Err(format!(
            "`{text}` is not a valid ring buffer size; give a power of two of at least {page} \
             bytes, such as 4194304"
        )),
    }
}
