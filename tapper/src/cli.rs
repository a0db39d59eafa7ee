//! Command-line flags, with parsers that reject bad values and say what would be accepted.

use std::{path::PathBuf, time::Duration};

use clap::Parser;

use crate::{counters::CountersFormat, identity::SourceChoice, output::Format, probe::ProbeMode};

const ABOUT: &str = "Catch every failed socket() call on this node with eBPF.";
const LONG_ABOUT: &str = "\
Catch every failed socket() call on this node with eBPF.

The tapper attaches to socket() in the kernel and prints one event per failed call: who
failed (pid, tid, comm, exe, cmdline, uid, cgroup), with which arguments (family, type,
protocol, decoded to names), and why (errno name and message). Successful calls are only
counted.

Each event also names the caller's cgroup path, container (id, runtime, name, image), pod
(uid, namespace, name, labels) and quota (memory and pids limits and usage; the system's
file table for ENFILE). Ids come from the cgroup path; names from the container runtime's
CRI socket (containerd, CRI-O) or podman's storage, listed in the background: an event
never waits for them, and what is unknown is null. On SIGINT or SIGTERM it detaches and prints exact final counters to stderr.

It also warns before descriptor exhaustion, as JSON lines of their own: a process whose
descriptors near its soft RLIMIT_NOFILE (kind nofile, seen on its successful socket()
calls), or the system's file table nearing fs.file-max (kind file-max), each with an
estimated time to exhaustion (--warn-* flags).

With --hub it also ships every event to a central hub. Filters (--pid, --comm, --errno)
choose the events printed and shipped; the counters always count every call. Several
hubs (--hub A,B or --hub A --hub B) are tried in order: when a connect fails or the
stream breaks, the tapper moves on to the next one, re-sending only what no hub
acknowledged.

Needs root (CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN).";

#[derive(Debug, Parser)]
#[command(name = "tapper", version, about = ABOUT, long_about = LONG_ABOUT)]
pub struct Cli {
    /// Which kernel probes catch failed socket() system calls.
    #[arg(long, value_enum, default_value_t = ProbeMode::Auto)]
    pub probe: ProbeMode,

    /// Do not capture failed io_uring socket requests (IORING_OP_SOCKET), which are
    /// captured by default where the kernel has the io_uring_complete tracepoint and BTF.
    #[arg(long)]
    pub no_io_uring: bool,

    /// Capture the caller's user-space stack (up to 32 frames) with each failure and
    /// symbolize it (`user_stack` in the event). Full stacks need programs built with frame
    /// pointers. Only failing calls pay for it (BENCHMARKS.md, part 9).
    #[arg(long)]
    pub stacks: bool,

    /// With --stacks, the most that the files kept parsed for symbolization may cost
    /// together, counted by their sizes (e.g. 256MiB, 512KiB or a plain number); past
    /// that, and past 128 files, the least recently used are dropped.
    #[arg(long, value_name = "BYTES", default_value = "256MiB", requires = "stacks",
          value_parser = parse_bytes)]
    pub stacks_cache_bytes: usize,

    /// How to print events [default: table on a terminal, json otherwise].
    #[arg(long, value_enum)]
    pub output: Option<Format>,

    /// Report only these process ids (repeat or separate with commas).
    #[arg(long = "pid", value_name = "PID", value_delimiter = ',', value_parser = parse_pid)]
    pub pids: Vec<u32>,

    /// Report only these command names, matched exactly (repeat or separate with commas).
    #[arg(long = "comm", value_name = "NAME", value_delimiter = ',', value_parser = parse_comm)]
    pub comms: Vec<String>,

    /// Report only these errors, by name (EMFILE) or number (24); repeat or separate with commas.
    #[arg(long = "errno", value_name = "ERRNO", value_delimiter = ',', value_parser = tapper_names::parse_errno)]
    pub errnos: Vec<i32>,

    /// How to print counters on stderr [default: json with --output json, text otherwise].
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub counters: Option<CountersFormat>,

    /// Also print counters at this interval, e.g. 10s or 1m (they always print at exit).
    #[arg(long, value_name = "DURATION", value_parser = parse_interval)]
    pub stats_interval: Option<Duration>,

    /// Kernel ring buffer size in bytes: a power of two, at least one page.
    #[arg(long, value_name = "BYTES", default_value = "4194304", value_parser = parse_ring_size)]
    pub ring_buffer_size: u32,

    /// Events per second that each (process, errno) pair may emit (0 turns the limit off).
    /// The kernel counts failures over it instead of emitting them; the pair's next event
    /// carries their number in `suppressed`, or, once the pair has been quiet for a second,
    /// a record of its own (probe `rate-limit`). Counters always count every failure.
    #[arg(long, value_name = "EVENTS_PER_SEC", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(0..=1_000_000_000))]
    pub rate_limit: u32,

    /// Events that each (process, errno) pair may emit at once before --rate-limit applies.
    #[arg(long, value_name = "EVENTS", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_limit_burst: u32,

    /// Under load, the longest time the kernel holds events before waking the tapper, e.g.
    /// 1ms; 0 wakes it for every event (more CPU for the tapper and the failing process). A
    /// failure after a quiet spell always wakes it at once.
    #[arg(long, value_name = "DURATION", default_value = "1ms", value_parser = parse_wakeup)]
    pub ring_wakeup_interval: Duration,

    /// Also ship events to this hub, e.g. https://hub.example:50051 (TLS) or
    /// http://127.0.0.1:50051 (local output goes on). Several hubs (repeat the flag or
    /// separate them with commas) are tried in order, moving on to the next when one fails;
    /// they should be replicas sharing one database.
    #[arg(long, value_name = "URL", value_delimiter = ',', value_parser = parse_hub_url)]
    pub hub: Vec<String>,

    /// This node's name at the hub [default: the host name].
    #[arg(long, value_name = "NAME", requires = "hub")]
    pub node_name: Option<String>,

    /// Events kept for the hub until it acknowledges them; past that they are dropped and
    /// reported to the hub as a loss.
    #[arg(long, value_name = "EVENTS", default_value_t = 65_536, requires = "hub",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub hub_buffer: u32,

    /// Encoded bytes of events kept for the hub until it acknowledges them (e.g. 64MiB,
    /// 512KiB or a plain number); past that, like past --hub-buffer, events are dropped and
    /// reported to the hub as a loss.
    #[arg(long, value_name = "BYTES", default_value = "64MiB", requires = "hub",
          value_parser = parse_bytes)]
    pub hub_buffer_bytes: usize,

    /// Trust the hub's certificate if this CA (PEM) signed it, instead of the system roots
    /// (an https:// hub only).
    #[arg(long, value_name = "FILE", requires = "hub")]
    pub tls_ca: Option<PathBuf>,

    /// Present this certificate (PEM) to the hub (mTLS): it names this node; needs --tls-key.
    #[arg(long, value_name = "FILE", requires_all = ["hub", "tls_key"])]
    pub tls_cert: Option<PathBuf>,

    /// The private key (PEM) of --tls-cert.
    #[arg(long, value_name = "FILE", requires_all = ["hub", "tls_cert"])]
    pub tls_key: Option<PathBuf>,

    /// Send the token in this file to the hub as `authorization: Bearer TOKEN`, re-read on
    /// each reconnect [default: the token in $HUB_TOKEN, if set].
    #[arg(long, value_name = "FILE", env = "HUB_TOKEN_FILE", requires = "hub")]
    pub token_file: Option<PathBuf>,

    /// The container runtime's CRI socket, for pod and container names: a path, `auto`
    /// (the first that exists of /run/containerd/containerd.sock, /run/crio/crio.sock,
    /// /run/k3s/containerd/containerd.sock) or `none`.
    #[arg(long, value_name = "PATH", default_value = "auto", value_parser = SourceChoice::parse)]
    pub cri_socket: SourceChoice,

    /// podman's storage root, for podman container names: a path, `auto`
    /// (/var/lib/containers/storage if it exists) or `none`.
    #[arg(long, value_name = "DIR", default_value = "auto", value_parser = SourceChoice::parse)]
    pub podman_storage: SourceChoice,

    /// How often the runtimes' containers are listed again, e.g. 2s (a container an event
    /// does not know yet triggers a listing at once).
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_interval)]
    pub runtime_refresh: Duration,

    /// A cgroup under which the kubelet's or a runtime's layout is also believed, e.g.
    /// /kubelet for a kubelet started with --cgroup-root=/kubelet (repeat for several).
    /// Container and pod ids come only from such a layout at the top of a cgroup hierarchy
    /// or right below one of these roots, and only from cgroup directories owned by root:
    /// a user with a delegated cgroup subtree cannot pass for another pod.
    #[arg(long = "kubelet-cgroup-root", value_name = "CGROUP", value_parser = parse_cgroup_root)]
    pub kubelet_cgroup_roots: Vec<String>,

    /// Serve Prometheus metrics (OpenMetrics text) on http://ADDR/metrics, e.g.
    /// 127.0.0.1:9464; port 0 picks a free port (logged, and in the ready line). Off by
    /// default.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<std::net::SocketAddr>,

    #[command(flatten)]
    pub metrics_limits: metrics_http::ConnectionLimits,

    /// Warn (a `{"warning": {"kind": "nofile", ...}}` line) when a process's descriptors
    /// reach this share of its soft RLIMIT_NOFILE, as the kernel sees on its successful
    /// socket() calls: a fraction in (0, 1]; 0 turns nofile warnings off.
    #[arg(long, value_name = "RATIO", default_value = "0.8", allow_hyphen_values = true,
          value_parser = parse_warn_ratio)]
    pub warn_nofile_ratio: f64,

    /// Descriptor numbers below this never warn: the kernel's first compare, and for most
    /// calls its only one. A process whose soft limit times the ratio is below it is not
    /// warned about.
    #[arg(long, value_name = "FD", default_value_t = 64)]
    pub warn_nofile_floor: u32,

    /// Warn (kind "file-max") when the system's file handles (/proc/sys/fs/file-nr) reach
    /// this share of fs.file-max, in (0, 1]; 0 turns file-max warnings off [default: the
    /// --warn-nofile-ratio].
    #[arg(long, value_name = "RATIO", allow_hyphen_values = true, value_parser = parse_warn_ratio)]
    pub warn_file_max_ratio: Option<f64>,

    /// How often /proc/sys/fs/file-nr is sampled for file-max warnings.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_interval)]
    pub warn_file_max_every: Duration,

    /// At most one nofile warning per process, and one file-max warning, per interval.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_interval)]
    pub warn_interval: Duration,

    /// More logging (-v debug, -vv trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

fn parse_pid(text: &str) -> Result<u32, String> {
    match text.trim().parse::<u32>() {
        Ok(pid) if pid > 0 => Ok(pid),
        _ => Err(format!(
            "`{text}` is not a process id; give a positive number such as 1234"
        )),
    }
}

/// The kernel keeps 15 bytes of a command name; a longer filter could never match.
fn parse_comm(text: &str) -> Result<String, String> {
    match text.len() {
        0 => Err("an empty command name matches nothing; give a name such as nginx".into()),
        1..=15 => Ok(text.to_owned()),
        n => Err(format!(
            "`{text}` is {n} bytes, but the kernel keeps only the first 15 bytes of a command \
             name; use `{}`",
            &text[..text.floor_char_boundary(15)]
        )),
    }
}

/// A cgroup path from the hierarchy's top, such as `/kubelet`.
fn parse_cgroup_root(text: &str) -> Result<String, String> {
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
fn parse_hub_url(text: &str) -> Result<String, String> {
    hub_client::parse_hub_address(text).map_err(|e| e.to_string())
}

fn parse_interval(text: &str) -> Result<Duration, String> {
    let interval = humantime::parse_duration(text)
        .map_err(|err| format!("`{text}` is not a duration ({err}); use e.g. 10s, 500ms or 1m"))?;
    if interval < Duration::from_millis(100) {
        return Err(format!("`{text}` is too short; use at least 100ms"));
    }
    Ok(interval)
}

fn parse_wakeup(text: &str) -> Result<Duration, String> {
    let interval = match text.trim() {
        "0" => Duration::ZERO,
        t => humantime::parse_duration(t).map_err(|err| {
            format!("`{text}` is not a duration ({err}); use e.g. 1ms, 200us, or 0")
        })?,
    };
    if interval > Duration::from_millis(100) {
        return Err(format!(
            "`{text}` would hold events too long; use at most 100ms (1ms is the default)"
        ));
    }
    Ok(interval)
}

/// A warn ratio: a fraction in (0, 1], or 0 for off.
fn parse_warn_ratio(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(ratio) if ratio == 0.0 || (ratio > 0.0 && ratio <= 1.0) => Ok(ratio),
        _ => Err(format!(
            "`{text}` is not a warn ratio; give a fraction above 0 and at most 1, such as 0.8, \
             or 0 to turn these warnings off"
        )),
    }
}

/// A byte count: a number with an optional KiB, MiB or GiB suffix, at least 1 KiB.
fn parse_bytes(text: &str) -> Result<usize, String> {
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

fn parse_ring_size(text: &str) -> Result<u32, String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("tapper").chain(args.iter().copied()))
    }

    #[test]
    fn defaults_are_sane() {
        let cli = parse(&[]).unwrap();
        assert_eq!(cli.probe, ProbeMode::Auto);
        assert!(!cli.no_io_uring);
        assert!(!cli.stacks);
        assert_eq!(
            parse(&["--probe", "exit-only"]).unwrap().probe,
            ProbeMode::ExitOnly
        );
        assert!(cli.pids.is_empty() && cli.comms.is_empty() && cli.errnos.is_empty());
        assert_eq!(cli.ring_buffer_size, 4 << 20);
        assert_eq!(cli.stats_interval, None);
        assert_eq!((cli.rate_limit, cli.rate_limit_burst), (1000, 1000));
        assert_eq!(cli.ring_wakeup_interval, Duration::from_millis(1));
        assert_eq!(
            parse(&["--ring-wakeup-interval", "0"])
                .unwrap()
                .ring_wakeup_interval,
            Duration::ZERO
        );
        assert_eq!(cli.counters, None);
        assert_eq!(cli.metrics_listen, None, "metrics are off by default");
        assert_eq!(cli.metrics_limits.max_connections, 64);
        assert_eq!(
            parse(&["--output", "none", "--counters", "json"])
                .unwrap()
                .counters,
            Some(CountersFormat::Json)
        );
        let hub = parse(&["--hub", "127.0.0.1:1"]).unwrap();
        assert_eq!(hub.hub_buffer_bytes, 64 << 20);
        assert_eq!(cli.cri_socket, SourceChoice::Auto);
        assert_eq!(cli.podman_storage, SourceChoice::Auto);
        assert_eq!(cli.runtime_refresh, Duration::from_secs(2));
        assert!(
            cli.kubelet_cgroup_roots.is_empty(),
            "only the top by default"
        );
        assert_eq!(
            parse(&["--kubelet-cgroup-root", "/kubelet/"])
                .unwrap()
                .kubelet_cgroup_roots,
            ["/kubelet"]
        );
        assert_eq!(cli.warn_nofile_ratio, 0.8);
        assert_eq!(cli.warn_nofile_floor, 64);
        assert_eq!(cli.warn_file_max_ratio, None, "the nofile ratio applies");
        assert_eq!(cli.warn_file_max_every, Duration::from_secs(5));
        assert_eq!(cli.warn_interval, Duration::from_secs(10));
    }

    #[test]
    fn warn_ratios_are_fractions_or_zero() {
        let ratio = |flag: &str, text: &str| parse(&[flag, text]).map_err(|e| e.to_string());
        assert_eq!(
            ratio("--warn-nofile-ratio", "1").unwrap().warn_nofile_ratio,
            1.0
        );
        assert_eq!(
            ratio("--warn-nofile-ratio", "0").unwrap().warn_nofile_ratio,
            0.0
        );
        assert_eq!(
            ratio("--warn-file-max-ratio", "0.5")
                .unwrap()
                .warn_file_max_ratio,
            Some(0.5)
        );
        for bad in ["1.5", "-0.2", "NaN", "inf", "eighty"] {
            let err = ratio("--warn-nofile-ratio", bad).unwrap_err();
            assert!(err.contains("not a warn ratio"), "{bad}: {err}");
            assert!(ratio("--warn-file-max-ratio", bad).is_err());
        }
        assert!(
            ratio("--warn-interval", "1ms")
                .unwrap_err()
                .contains("at least 100ms")
        );
    }

    #[test]
    fn hub_buffer_bytes_takes_units() {
        let bytes = |text: &str| {
            parse(&["--hub", "127.0.0.1:1", "--hub-buffer-bytes", text])
                .map(|cli| cli.hub_buffer_bytes)
                .map_err(|e| e.to_string())
        };
        assert_eq!(bytes("512KiB"), Ok(512 << 10));
        assert_eq!(bytes("2GiB"), Ok(2 << 30));
        assert_eq!(bytes("4096"), Ok(4096));
        assert!(bytes("12").unwrap_err().contains("at least 1KiB"));
        assert!(bytes("5MB").unwrap_err().contains("unknown unit"));
        let alone = parse(&["--hub-buffer-bytes", "1MiB"]).unwrap_err();
        assert!(alone.to_string().contains("--hub"), "{alone}");
    }

    #[test]
    fn filters_accept_lists_names_and_numbers() {
        let cli = parse(&[
            "--errno",
            "EMFILE,97",
            "--errno",
            "eacces",
            "--errno",
            "ENOTSUP",
            "--pid",
            "1,2",
            "--comm",
            "nginx",
        ])
        .unwrap();
        assert_eq!(
            cli.errnos,
            vec![
                libc::EMFILE,
                libc::EAFNOSUPPORT,
                libc::EACCES,
                libc::EOPNOTSUPP
            ]
        );
        assert_eq!(cli.pids, vec![1, 2]);
        assert_eq!(cli.comms, vec!["nginx"]);
        assert_eq!(
            parse(&["--hub", "127.0.0.1:50051"]).unwrap().hub,
            ["http://127.0.0.1:50051"]
        );
        let listed = parse(&["--hub", "a:1,https://b:2", "--hub", "c:3"]).unwrap();
        assert_eq!(listed.hub, ["http://a:1", "https://b:2", "http://c:3"]);
        let runtimes = parse(&["--cri-socket", "/run/x.sock", "--podman-storage", "none"]).unwrap();
        assert_eq!(runtimes.cri_socket, SourceChoice::At("/run/x.sock".into()));
        assert_eq!(runtimes.podman_storage, SourceChoice::Off);
        assert_eq!(
            parse(&["--stats-interval", "2s"]).unwrap().stats_interval,
            Some(Duration::from_secs(2))
        );
    }

    #[test]
    fn bad_values_are_rejected_with_the_reason() {
        let message = |args: &[&str]| parse(args).unwrap_err().to_string();
        assert!(
            message(&["--errno", "EFOO"])
                .contains(r#"unknown errno name "EFOO" (use e.g. EMFILE or 24)"#)
        );
        assert!(message(&["--pid", "0"]).contains("not a process id"));
        assert!(message(&["--pid", "abc"]).contains("not a process id"));
        assert!(message(&["--comm", "a-very-long-command-name"]).contains("first 15 bytes"));
        assert!(
            message(&["--probe", "fentry"])
                .contains("possible values: auto, exit-only, fexit, kprobe, tracepoint")
        );
        assert!(message(&["--stats-interval", "soon"]).contains("not a duration"));
        assert!(message(&["--ring-buffer-size", "1000"]).contains("power of two"));
        assert!(message(&["--hub", "ftp://x:1"]).contains("not a hub address"));
        assert!(message(&["--hub", "localhost"]).contains("not a hub address"));
        let in_list = message(&["--hub", "a:1,b:two"]);
        assert!(in_list.contains(r#""b:two""#) && in_list.contains("not a hub address"));
        assert!(message(&["--node-name", "a"]).contains("--hub"));
        assert!(message(&["--cri-socket", ""]).contains("`auto` or `none`"));
        assert!(message(&["--runtime-refresh", "1ms"]).contains("at least 100ms"));
        for bad in ["kubelet", "/", "/a/../b"] {
            let err = message(&["--kubelet-cgroup-root", bad]);
            assert!(
                err.contains("not a cgroup path below the top"),
                "{bad}: {err}"
            );
        }
        assert!(message(&["--metrics-listen", "9464"]).contains("--metrics-listen"));
        assert!(message(&["--rate-limit-burst", "0"]).contains("--rate-limit-burst"));
        assert!(message(&["--rate-limit", "lots"]).contains("--rate-limit"));
        assert!(message(&["--ring-wakeup-interval", "1s"]).contains("at most 100ms"));
        assert!(message(&["--ring-wakeup-interval", "soon"]).contains("not a duration"));
    }
}
