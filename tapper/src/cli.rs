//! Command-line flags, declared once in groups by concern (each its own heading in
//! `--help`); the filter and identity groups are those parts' own configuration.

use std::{path::PathBuf, time::Duration};

use clap::{Parser, builder::ArgPredicate};

use crate::{
    counters::CountersFormat,
    filter::Filter,
    flag_values::{
        parse_bytes, parse_hold, parse_hub_url, parse_interval, parse_ring_size, parse_warn_ratio,
    },
    identity::IdentityOptions,
    output::Format,
    probe::ProbeMode,
};

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
    /// Each -v logs one level more than the default, info (-v debug, -vv trace); RUST_LOG
    /// overrides.
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(flatten)]
    pub capture: CaptureArgs,

    #[command(flatten)]
    pub output: OutputArgs,

    #[command(flatten)]
    pub filter: Filter,

    #[command(flatten)]
    pub hub: HubArgs,

    #[command(flatten)]
    pub identity: IdentityOptions,

    #[command(flatten)]
    pub metrics: MetricsArgs,

    #[command(flatten)]
    pub warn: WarnArgs,
}

/// What the kernel probes catch and how the kernel hands it over.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Capture")]
pub struct CaptureArgs {
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
    /// failure after a quiet spell always wakes it at once [default: 1ms, or 20ms with
    /// --hub, where events are batched anyway: a batch is then one wake-up].
    #[arg(long, value_name = "DURATION", default_value = "1ms", value_parser = parse_hold,
          default_value_if("hub", ArgPredicate::IsPresent, "20ms"), hide_default_value = true)]
    pub ring_wakeup_interval: Duration,
}

/// How events and counters are printed.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Output")]
pub struct OutputArgs {
    /// How to print events [default: table on a terminal, json otherwise].
    #[arg(long, value_enum)]
    pub output: Option<Format>,

    /// How to print counters on stderr [default: json with --output json, text otherwise].
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub counters: Option<CountersFormat>,

    /// Also print counters at this interval, e.g. 10s or 1m (they always print at exit).
    #[arg(long, value_name = "DURATION", value_parser = parse_interval)]
    pub stats_interval: Option<Duration>,
}

/// The help heading of the hub credentials.
const TLS_AND_AUTH: &str = "TLS and auth";

/// Shipping events to hubs: where, how much to keep for them, and the credentials.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Hub link")]
pub struct HubArgs {
    /// Also ship events to this hub, e.g. https://hub.example:50051 (TLS) or
    /// http://127.0.0.1:50051 (local output goes on). Several hubs (repeat the flag or
    /// separate them with commas) are tried in order, moving on to the next when one fails;
    /// they should be replicas sharing one database.
    #[arg(id = "hub", long = "hub", value_name = "URL", value_delimiter = ',',
          value_parser = parse_hub_url)]
    pub urls: Vec<String>,

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

    /// Most messages a second to the hub under load: events that arrive soon after a
    /// message wait for the next one, so batches grow with the rate; the first event after
    /// a quiet spell goes at once. 0: no bound (a message whenever events wait).
    #[arg(long, value_name = "N", default_value_t = 100, requires = "hub")]
    pub hub_max_sends_per_second: u32,

    /// The longest an event waits for others to share its message (0 to 100ms); when it is
    /// shorter than 1/--hub-max-sends-per-second it wins, and more messages go.
    #[arg(long, value_name = "DURATION", default_value = "20ms", requires = "hub",
          value_parser = parse_hold)]
    pub hub_max_linger: Duration,

    /// Trust the hub's certificate if this CA (PEM) signed it, instead of the system roots
    /// (an https:// hub only).
    #[arg(long, value_name = "FILE", requires = "hub", help_heading = TLS_AND_AUTH)]
    pub tls_ca: Option<PathBuf>,

    /// Present this certificate (PEM) to the hub (mTLS): it names this node; needs --tls-key.
    #[arg(long, value_name = "FILE", requires_all = ["hub", "tls_key"],
          help_heading = TLS_AND_AUTH)]
    pub tls_cert: Option<PathBuf>,

    /// The private key (PEM) of --tls-cert.
    #[arg(long, value_name = "FILE", requires_all = ["hub", "tls_cert"],
          help_heading = TLS_AND_AUTH)]
    pub tls_key: Option<PathBuf>,

    /// Send the token in this file to the hub as `authorization: Bearer TOKEN`, re-read on
    /// each reconnect [default: the token in $HUB_TOKEN, if set].
    #[arg(long, value_name = "FILE", env = "HUB_TOKEN_FILE", requires = "hub",
          help_heading = TLS_AND_AUTH)]
    pub token_file: Option<PathBuf>,
}

/// The Prometheus endpoint.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Metrics")]
pub struct MetricsArgs {
    /// Serve Prometheus metrics (OpenMetrics text) on http://ADDR/metrics, e.g.
    /// 127.0.0.1:9464; port 0 picks a free port (logged, and in the ready line). Off by
    /// default.
    #[arg(long, value_name = "ADDR", value_parser = tapper_proto::flag_text::parse_listen_addr)]
    pub metrics_listen: Option<std::net::SocketAddr>,

    #[command(flatten)]
    pub limits: metrics_http::ConnectionLimits,
}

/// Early warnings of descriptor exhaustion.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Warnings")]
pub struct WarnArgs {
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
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;
    use crate::identity::SourceChoice;

    #[test]
    fn help_groups_the_flags_under_headings() {
        let help = Cli::command().render_long_help().to_string();
        let at = |text: &str| {
            help.find(text)
                .unwrap_or_else(|| panic!("{text} missing from:\n{help}"))
        };
        let order = [
            "Capture:",
            "--ring-wakeup-interval <DURATION>",
            "Output:",
            "--stats-interval <DURATION>",
            "Filters:",
            "--errno <ERRNO>",
            "Hub link:",
            "--hub-buffer-bytes <BYTES>",
            "TLS and auth:",
            "--token-file <FILE>",
            "Containers and pods:",
            "--kubelet-cgroup-root <CGROUP>",
            "Metrics:",
            "--metrics-idle-timeout <DURATION>",
            "Warnings:",
            "--warn-interval <DURATION>",
        ];
        for pair in order.windows(2) {
            assert!(at(pair[0]) < at(pair[1]), "{pair:?} out of order:\n{help}");
        }
    }

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("tapper").chain(args.iter().copied()))
    }

    #[test]
    fn shipping_batches_by_default_and_the_ring_wakes_once_per_batch() {
        let hub = parse(&["--hub", "127.0.0.1:1"]).unwrap();
        assert_eq!(hub.hub.hub_max_sends_per_second, 100);
        assert_eq!(hub.hub.hub_max_linger, Duration::from_millis(20));
        assert_eq!(hub.capture.ring_wakeup_interval, Duration::from_millis(20));
        let given = ["--hub", "127.0.0.1:1", "--ring-wakeup-interval", "2ms"];
        assert_eq!(
            parse(&given).unwrap().capture.ring_wakeup_interval,
            Duration::from_millis(2)
        );
        let long = parse(&["--hub", "127.0.0.1:1", "--hub-max-linger", "1s"]).unwrap_err();
        assert!(long.to_string().contains("at most 100ms"), "{long}");
        let alone = parse(&["--hub-max-sends-per-second", "10"]).unwrap_err();
        assert!(alone.to_string().contains("--hub"), "{alone}");
    }

    #[test]
    fn defaults_are_sane() {
        let cli = parse(&[]).unwrap();
        assert_eq!(cli.capture.probe, ProbeMode::Auto);
        assert!(!cli.capture.no_io_uring);
        assert!(!cli.capture.stacks);
        assert_eq!(
            parse(&["--probe", "exit-only"]).unwrap().capture.probe,
            ProbeMode::ExitOnly
        );
        assert!(
            cli.filter.pids.is_empty()
                && cli.filter.comms.is_empty()
                && cli.filter.errnos.is_empty()
        );
        assert_eq!(cli.capture.ring_buffer_size, 4 << 20);
        assert_eq!(cli.output.stats_interval, None);
        assert_eq!(
            (cli.capture.rate_limit, cli.capture.rate_limit_burst),
            (1000, 1000)
        );
        assert_eq!(cli.capture.ring_wakeup_interval, Duration::from_millis(1));
        assert_eq!(
            parse(&["--ring-wakeup-interval", "0"])
                .unwrap()
                .capture
                .ring_wakeup_interval,
            Duration::ZERO
        );
        assert_eq!(cli.output.counters, None);
        assert_eq!(
            cli.metrics.metrics_listen, None,
            "metrics are off by default"
        );
        assert_eq!(cli.metrics.limits.max_connections, 64);
        assert_eq!(
            parse(&["--output", "none", "--counters", "json"])
                .unwrap()
                .output
                .counters,
            Some(CountersFormat::Json)
        );
        let hub = parse(&["--hub", "127.0.0.1:1"]).unwrap();
        assert_eq!(hub.hub.hub_buffer_bytes, 64 << 20);
        assert_eq!(cli.identity.cri_socket, SourceChoice::Auto);
        assert_eq!(cli.identity.podman_storage, SourceChoice::Auto);
        assert_eq!(cli.identity.refresh_every, Duration::from_secs(2));
        assert!(
            cli.identity.kubelet_roots.is_empty(),
            "only the top by default"
        );
        assert_eq!(
            parse(&["--kubelet-cgroup-root", "/kubelet/"])
                .unwrap()
                .identity
                .kubelet_roots,
            ["/kubelet"]
        );
        assert_eq!(cli.warn.warn_nofile_ratio, 0.8);
        assert_eq!(cli.warn.warn_nofile_floor, 64);
        assert_eq!(
            cli.warn.warn_file_max_ratio, None,
            "the nofile ratio applies"
        );
        assert_eq!(cli.warn.warn_file_max_every, Duration::from_secs(5));
        assert_eq!(cli.warn.warn_interval, Duration::from_secs(10));
    }

    #[test]
    fn warn_ratios_are_fractions_or_zero() {
        let ratio = |flag: &str, text: &str| parse(&[flag, text]).map_err(|e| e.to_string());
        assert_eq!(
            ratio("--warn-nofile-ratio", "1")
                .unwrap()
                .warn
                .warn_nofile_ratio,
            1.0
        );
        assert_eq!(
            ratio("--warn-nofile-ratio", "0")
                .unwrap()
                .warn
                .warn_nofile_ratio,
            0.0
        );
        assert_eq!(
            ratio("--warn-file-max-ratio", "0.5")
                .unwrap()
                .warn
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
                .map(|cli| cli.hub.hub_buffer_bytes)
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
            cli.filter.errnos,
            vec![
                libc::EMFILE,
                libc::EAFNOSUPPORT,
                libc::EACCES,
                libc::EOPNOTSUPP
            ]
        );
        assert_eq!(cli.filter.pids, vec![1, 2]);
        let globs: Vec<_> = cli.filter.comms.iter().map(|g| g.glob().glob()).collect();
        assert_eq!(globs, ["nginx"]);
        assert_eq!(
            parse(&["--hub", "127.0.0.1:50051"]).unwrap().hub.urls,
            ["http://127.0.0.1:50051"]
        );
        let listed = parse(&["--hub", "a:1,https://b:2", "--hub", "c:3"]).unwrap();
        assert_eq!(listed.hub.urls, ["http://a:1", "https://b:2", "http://c:3"]);
        let runtimes = parse(&["--cri-socket", "/run/x.sock", "--podman-storage", "none"]).unwrap();
        assert_eq!(
            runtimes.identity.cri_socket,
            SourceChoice::At("/run/x.sock".into())
        );
        assert_eq!(runtimes.identity.podman_storage, SourceChoice::Off);
        assert_eq!(
            parse(&["--stats-interval", "2s"])
                .unwrap()
                .output
                .stats_interval,
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
