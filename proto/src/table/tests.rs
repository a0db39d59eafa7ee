use super::*;
use crate::v1::{Diagnosis, Limits};

fn render(node: &str, event: &Event) -> String {
    let mut out = Vec::new();
    write_row(&mut out, node, event).unwrap();
    String::from_utf8(out).unwrap()
}

fn header() -> String {
    let mut out = Vec::new();
    write_header(&mut out).unwrap();
    String::from_utf8(out).unwrap()
}

/// The cell of `column` in `row`: the text within the column's width (the rest of the
/// line for CAUSE), as the header places it.
fn cell(row: &str, column: &str) -> String {
    let header = header();
    let at = header.find(column).unwrap();
    let width = COLUMNS
        .iter()
        .find(|(name, _)| *name == column)
        .map(|(_, width)| *width);
    // A right-aligned header ends where its column ends.
    let start = match width {
        Some(width) if NUMERIC.contains(&column) => at + column.len() - width,
        _ => at,
    };
    let chars: Vec<char> = row.trim_end().chars().collect();
    let end = width.map_or(chars.len(), |width| (start + width).min(chars.len()));
    chars[start.min(end)..end]
        .iter()
        .collect::<String>()
        .trim()
        .to_owned()
}

fn emfile() -> Event {
    Event {
        ts: Some(Timestamp {
            seconds: 1_700_000_000 + 3_600 * 5 + 61,
            nanos: 85_327_999,
        }),
        pid: 22_202,
        uid: 1_000,
        comm: "python3".into(),
        errno_name: "EMFILE".into(),
        family_name: "AF_INET".into(),
        type_name: "SOCK_STREAM|SOCK_CLOEXEC".into(),
        protocol_name: "IPPROTO_IP".into(),
        limits: Some(Limits {
            nofile_soft: Some(64),
            nofile_hard: Some(4096),
            open_fds: Some(64),
        }),
        diagnosis: Some(Diagnosis {
            cause: "rlimit_nofile".into(),
            text: "open fds 64 of RLIMIT_NOFILE 64".into(),
        }),
        ..Default::default()
    }
}

#[test]
fn a_row_has_every_column_on_one_line() {
    let row = render("node-a", &emfile());
    assert_eq!(row.lines().count(), 1, "{row}");
    assert_eq!(
        row.split_whitespace().collect::<Vec<_>>(),
        [
            "03:14:21.085",
            "node-a",
            "-",
            "python3",
            "22202",
            "1000",
            "EMFILE",
            "INET/STREAM/IP",
            "rlimit_nofile",
            "64/64"
        ],
        "{row}"
    );
    assert_eq!(
        header().split_whitespace().collect::<Vec<_>>(),
        [
            "TIME",
            "NODE",
            "POD/CONTAINER",
            "COMM",
            "PID",
            "UID",
            "ERRNO",
            "SOCKET",
            "CAUSE"
        ]
    );
}

#[test]
fn limits_are_shown_only_for_running_out_of_descriptors() {
    let enfile = Event {
        errno_name: "ENFILE".into(),
        ..emfile()
    };
    assert_eq!(cell(&render("n", &enfile), "CAUSE"), "rlimit_nofile 64/64");
    let eperm = Event {
        errno_name: "EPERM".into(),
        diagnosis: Some(Diagnosis {
            cause: "capability".into(),
            text: String::new(),
        }),
        ..emfile()
    };
    assert_eq!(cell(&render("n", &eperm), "CAUSE"), "capability");
}

#[test]
fn every_errno_name_keeps_the_columns_aligned() {
    let header = header();
    let socket_at = header.find("SOCKET").unwrap();
    let cause_at = header.find("CAUSE").unwrap();
    for errno in 1..=tapper_names::MAX_ERRNO {
        let event = Event {
            errno_name: tapper_names::errno_name(errno),
            ..emfile()
        };
        let row = render("node-a", &event);
        assert_eq!(cell(&row, "ERRNO"), event.errno_name, "{row}");
        assert_eq!(cell(&row, "SOCKET"), "INET/STREAM/IP", "{row}");
        let cause = match errno {
            23 | 24 => "rlimit_nofile 64/64",
            _ => "rlimit_nofile",
        };
        assert_eq!(cell(&row, "CAUSE"), cause, "{row}");
        assert_eq!(row[socket_at - 1..socket_at], *" ", "{row}");
        assert_eq!(row[cause_at - 1..cause_at], *" ", "{row}");
    }
}

#[test]
fn the_longest_cells_are_cut_with_an_ellipsis_within_120_columns() {
    let event = Event {
        pid: 4_194_304,
        uid: 65_534,
        comm: "fifteen-chars-x".into(),
        errno_name: "EMFILE".into(),
        family_name: "AF_NETLINK".into(),
        type_name: "SOCK_SEQPACKET|SOCK_CLOEXEC".into(),
        protocol_name: "NETLINK_KOBJECT_UEVENT".into(),
        container: Some(Container {
            name: Some("web".into()),
            ..Default::default()
        }),
        pod: Some(Pod {
            namespace: Some("shop".into()),
            name: Some("front-7d9f8c6b5-x2x4q".into()),
            ..Default::default()
        }),
        limits: Some(Limits {
            nofile_soft: Some(1_048_576),
            nofile_hard: Some(1_048_576),
            open_fds: Some(1_048_576),
        }),
        ..emfile()
    };
    let row = render("ip-10-0-1-23.eu-west-1.compute.internal", &event);
    let text = format!("{}{row}", header());
    for line in text.lines() {
        assert!(line.chars().count() <= MAX_COLUMNS, "{line}");
    }
    assert_eq!(row.trim_end().chars().count(), MAX_COLUMNS, "{row}");
    assert!(row.trim_end().ends_with('…'), "{row}");
    assert_eq!(cell(&row, "NODE"), "ip-…ternal");
    assert_eq!(cell(&row, "POD/CONTAINER"), "shop…2x4q/web");
    assert_eq!(cell(&row, "COMM"), "fifteen-ch…");
    assert_eq!(cell(&row, "PID"), "4194304");
    assert_eq!(cell(&row, "ERRNO"), "EMFILE");
    assert_eq!(cell(&row, "SOCKET"), "NETLINK/SEQPACK…");
}

#[test]
fn a_number_wider_than_its_column_is_never_cut() {
    let event = Event {
        uid: 4_294_967_294,
        ..emfile()
    };
    let row = render("node-a", &event);
    assert!(row.contains(" 4294967294 EMFILE"), "{row}");
    assert!(row.trim_end().chars().count() <= MAX_COLUMNS, "{row}");
}

#[test]
fn the_cause_is_a_dash_without_a_diagnosis_and_limits_show_only_when_read_and_out_of_descriptors() {
    let mut event = Event {
        errno_name: "EPERM".into(),
        ..Default::default()
    };
    let row = render("n", &event);
    assert_eq!(row.trim_end().rsplit(' ').next(), Some("-"), "{row}");
    assert_eq!(cell(&row, "SOCKET"), "?/?/?", "{row}");
    assert_eq!(cell(&row, "TIME"), "?", "{row}");
    event.limits = Some(Limits {
        nofile_soft: Some(1024),
        open_fds: None,
        nofile_hard: None,
    });
    assert!(render("n", &event).trim_end().ends_with(" -"));
    event.errno_name = "EMFILE".into();
    assert!(render("n", &event).trim_end().ends_with("- ?/1024"));
}

#[test]
fn control_characters_are_escaped_in_every_cell() {
    let event = Event {
        comm: "\x1b[2Jevil".into(),
        errno_name: "E\x07".into(),
        container: Some(Container {
            name: Some("\x1b]0;c".into()),
            ..Default::default()
        }),
        ..emfile()
    };
    let row = render("inj\x1b[2J", &event);
    assert!(!row.chars().any(|c| c.is_control() && c != '\n'), "{row:?}");
    assert!(row.contains(" \\x1b[2Jevil "), "{row}");
    assert!(row.contains(" inj\\x1b[2J "), "{row}");
    assert!(row.contains(" \\x1b]0;c "), "{row}");
}

#[test]
fn stacks_print_one_frame_a_line_innermost_first() {
    let frames = [
        StackFrame {
            address: 0x1000,
            module: Some("/usr/bin/app".into()),
            offset: Some(0x10),
            symbol: Some("inner".into()),
            ..Default::default()
        },
        StackFrame {
            address: 0x2000,
            ..Default::default()
        },
    ];
    let mut out = Vec::new();
    write_stack(&mut out, &frames).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "    #0  inner (/usr/bin/app+0x10)\n    #1  ? (0x2000)\n"
    );
}

#[test]
fn a_warnings_eta_reads_as_people_say_it() {
    let cases = [
        (None, "not rising"),
        (Some(f64::NAN), "not rising"),
        (Some(-3.0), "not rising"),
        (Some(0.0), "full in <1s"),
        (Some(0.4), "full in <1s"),
        (Some(1.04), "full in ~1s"),
        (Some(59.4), "full in ~59s"),
        (Some(59.6), "full in ~1m"),
        (Some(170.0), "full in ~3m"),
        (Some(7_300.0), "full in ~2h"),
        (Some(200_000.0), "full in ~2d"),
    ];
    for (eta, want) in cases {
        assert_eq!(eta_text(eta), want, "{eta:?}");
    }
}

#[test]
fn a_warning_is_one_line_naming_who_and_when() {
    let warning = Warning {
        kind: "nofile".into(),
        ts: emfile().ts,
        pid: Some(42),
        comm: "nginx".into(),
        used: 820,
        limit: 1024,
        ratio: 820.0 / 1024.0,
        eta_seconds: Some(170.0),
        pod: Some(Pod {
            namespace: Some("shop".into()),
            name: Some("web-1".into()),
            ..Default::default()
        }),
        container: Some(Container {
            name: Some("nginx".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut out = Vec::new();
    write_warning(&mut out, "node-a", &warning).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "-- warning nofile 03:14:21.085 node-a pid 42 (nginx) in shop/web-1/nginx: \
         820/1024 fds (80%), full in ~3m --\n"
    );
    let host = Warning {
        pod: None,
        container: None,
        ..warning.clone()
    };
    let mut out = Vec::new();
    write_warning(&mut out, "node-a", &host).unwrap();
    let line = String::from_utf8(out).unwrap();
    assert!(
        line.contains(" node-a pid 42 (nginx): 820/1024 fds"),
        "{line}"
    );
    let system = Warning {
        kind: "file_max".into(),
        pid: None,
        eta_seconds: None,
        ..warning
    };
    let mut out = Vec::new();
    write_warning(&mut out, "node-a", &system).unwrap();
    let line = String::from_utf8(out).unwrap();
    assert!(
        line.ends_with("node-a the system's file table: 820/1024 fds (80%), not rising --\n"),
        "{line}"
    );
}

#[test]
fn where_ran_says_what_is_known() {
    let id = "3f2a9c01deadbeef3f2a9c01";
    let container = |name: Option<&str>| Container {
        name: name.map(Into::into),
        id: Some(id.into()),
        ..Default::default()
    };
    let pod = Pod {
        namespace: Some("shop".into()),
        name: Some("web-1".into()),
        ..Default::default()
    };
    assert_eq!(where_ran(None, None), "-");
    assert_eq!(where_ran(Some(&container(None)), None), "3f2a9c01dead");
    assert_eq!(where_ran(Some(&container(Some("nginx"))), None), "nginx");
    assert_eq!(
        where_ran(Some(&container(Some("nginx"))), Some(&pod)),
        "shop/web-1/nginx"
    );
    assert_eq!(where_ran(None, Some(&pod)), "shop/web-1/?");
}
