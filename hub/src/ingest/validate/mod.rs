//! Checks what clients send (Hello, event batches, loss records, warnings, query timestamps
//! and node lists) before anything is stored or queried; each problem is `INVALID_ARGUMENT`
//! naming the field. Every string is bounded and free of NUL bytes (one rule, [`text`]).

pub mod counters;

use tapper_proto::{
    Timestamp, WarningKind,
    limits::{self, MAX_BATCH, MAX_INSTANCE_ID_BYTES, MAX_NODE_BYTES, MAX_VALUES},
    v1::{Event, Hello, Loss, Pod, StackFrame, Warning},
};

use tapper_names::MAX_ERRNO;

use crate::{error::HubError, util::clock::from_ts};

/// The one rule for every string a client sends: at most `max` bytes and no NUL
/// ([`limits::check`]).
fn text(field: impl FnOnce() -> String, value: &str, max: usize) -> Result<(), HubError> {
    limits::check(value, max).map_err(|e| HubError::invalid(field(), e.to_string()))
}

/// The pod labels' count and keys ([`limits::check_label_keys`]); their values are checked
/// with the other strings.
fn pod_labels(field: impl FnOnce() -> String, pod: Option<&Pod>) -> Result<(), HubError> {
    match pod {
        Some(pod) => {
            limits::check_label_keys(&pod.labels).map_err(|e| HubError::invalid(field(), e))
        }
        None => Ok(()),
    }
}

fn nanos(field: impl FnOnce() -> String, ts: &Timestamp) -> Result<(), HubError> {
    if !(0..1_000_000_000).contains(&ts.nanos) {
        return Err(HubError::invalid(field(), "nanos out of range"));
    }
    Ok(())
}

/// A query bound: valid nanos, not before 1970. Returns Unix nanoseconds.
pub fn timestamp(field: &str, ts: &Timestamp) -> Result<i64, HubError> {
    nanos(|| field.into(), ts)?;
    if ts.seconds < 0 {
        return Err(HubError::invalid(field, "is before 1970"));
    }
    Ok(from_ts(ts))
}

/// A `node` filter list: at most [`MAX_VALUES`] names, none empty or longer than a node
/// name can be.
pub fn node_names(nodes: &[String]) -> Result<(), HubError> {
    if nodes.len() > MAX_VALUES {
        return Err(HubError::invalid(
            "node",
            format!("{} values exceed the limit of {MAX_VALUES}", nodes.len()),
        ));
    }
    for (i, n) in nodes.iter().enumerate() {
        if n.is_empty() {
            return Err(HubError::invalid(format!("node[{i}]"), "empty node name"));
        }
        if n.len() > MAX_NODE_BYTES {
            return Err(HubError::invalid(
                format!("node[{i}]"),
                format!("longer than {MAX_NODE_BYTES} bytes"),
            ));
        }
    }
    Ok(())
}

/// A Hello needs a node and an instance id of sane length.
pub fn hello(h: &Hello) -> Result<(), HubError> {
    if h.node.is_empty() {
        return Err(HubError::invalid("hello.node", "required"));
    }
    if h.instance_id.is_empty() {
        return Err(HubError::invalid("hello.instance_id", "required"));
    }
    text(|| "hello.node".into(), &h.node, MAX_NODE_BYTES)?;
    text(
        || "hello.instance_id".into(),
        &h.instance_id,
        MAX_INSTANCE_ID_BYTES,
    )?;
    text(|| "hello.kernel_release".into(), &h.kernel_release, 256)?;
    text(|| "hello.probe_mode".into(), &h.probe_mode, 32)?;
    text(|| "hello.agent_version".into(), &h.agent_version, 256)?;
    Ok(())
}

/// Every event of a batch: seq >= 1, a timestamp, an errno the kernel can return (1 to
/// 4095), and every string within its limit and free of NUL bytes.
pub fn events(batch: &[Event]) -> Result<(), HubError> {
    if batch.is_empty() {
        return Err(HubError::invalid("events.events", "empty batch"));
    }
    if batch.len() > MAX_BATCH {
        return Err(HubError::invalid(
            "events.events",
            format!(
                "{} events exceed the batch limit of {MAX_BATCH}",
                batch.len()
            ),
        ));
    }
    for (i, e) in batch.iter().enumerate() {
        let f = |name: &str| format!("events[{i}].{name}");
        if e.seq == 0 {
            return Err(HubError::invalid(f("seq"), "must be >= 1"));
        }
        match &e.ts {
            None => return Err(HubError::invalid(f("ts"), "required")),
            Some(ts) => nanos(|| f("ts"), ts)?,
        }
        if !(1..=MAX_ERRNO).contains(&e.errno) {
            return Err(HubError::invalid(
                f("errno"),
                format!("must be from 1 to {MAX_ERRNO}, got {}", e.errno),
            ));
        }
        for (name, value, max) in limits::event_strings(e) {
            text(|| f(name), value, max)?;
        }
        pod_labels(|| f("pod.labels"), e.pod.as_ref())?;
        field_names(&|| f("truncated"), &e.truncated, limits::TRUNCATED)?;
        field_names(&|| f("from_kernel"), &e.from_kernel, limits::FROM_KERNEL)?;
        user_stack(&f, &e.user_stack)?;
    }
    Ok(())
}

/// A list of an event's field names (`truncated`, `from_kernel`): at most `max`, each a
/// bounded name. `field` names the list, built only for an error.
fn field_names(field: &dyn Fn() -> String, names: &[String], max: usize) -> Result<(), HubError> {
    if names.len() > max {
        return Err(HubError::invalid(
            field(),
            format!("more than {max} field names"),
        ));
    }
    for name in names {
        text(field, name, limits::NAME)?;
    }
    Ok(())
}

/// At most [`limits::STACK_FRAMES`] frames, each string within its limit, and an offset
/// only with a module.
fn user_stack(f: &dyn Fn(&str) -> String, frames: &[StackFrame]) -> Result<(), HubError> {
    if frames.len() > limits::STACK_FRAMES {
        return Err(HubError::invalid(
            f("user_stack"),
            format!(
                "{} frames exceed the limit of {}",
                frames.len(),
                limits::STACK_FRAMES
            ),
        ));
    }
    for (j, frame) in frames.iter().enumerate() {
        let g = |name: &str| f(&format!("user_stack[{j}].{name}"));
        if let Some(module) = &frame.module {
            text(|| g("module"), module, limits::STACK_MODULE)?;
        } else if frame.offset.is_some() {
            return Err(HubError::invalid(g("offset"), "set without a module"));
        }
        if let Some(symbol) = &frame.symbol {
            text(|| g("symbol"), symbol, limits::STACK_SYMBOL)?;
        }
        if let Some(build_id) = &frame.build_id {
            text(|| g("build_id"), build_id, limits::BUILD_ID)?;
        }
    }
    Ok(())
}

/// A warning: seq >= 1, a known kind, a timestamp, bounded strings, a finite ratio and
/// time to exhaustion, and a pid exactly for "nofile".
pub fn warning(w: &Warning) -> Result<(), HubError> {
    if w.seq == 0 {
        return Err(HubError::invalid("warning.seq", "must be >= 1"));
    }
    if w.seq > i64::MAX as u64 {
        return Err(HubError::invalid("warning.seq", "above 2^63-1"));
    }
    let Ok(kind) = w.kind.parse::<WarningKind>() else {
        return Err(HubError::invalid(
            "warning.kind",
            format!(
                "unknown kind {:?}; expected one of {}",
                truncate_for_status(&w.kind),
                WarningKind::ALL.map(WarningKind::as_str).join(", ")
            ),
        ));
    };
    match &w.ts {
        None => return Err(HubError::invalid("warning.ts", "required")),
        Some(ts) => nanos(|| "warning.ts".into(), ts)?,
    }
    if (kind == WarningKind::Nofile) != w.pid.is_some() {
        return Err(HubError::invalid(
            "warning.pid",
            "required for kind nofile, absent for file-max",
        ));
    }
    for (name, value, max) in limits::warning_strings(w) {
        text(|| format!("warning.{name}"), value, max)?;
    }
    pod_labels(|| "warning.pod.labels".into(), w.pod.as_ref())?;
    if !w.ratio.is_finite() || w.ratio < 0.0 {
        return Err(HubError::invalid(
            "warning.ratio",
            "must be a finite, non-negative number",
        ));
    }
    if w.eta_seconds
        .is_some_and(|eta| !eta.is_finite() || eta < 0.0)
    {
        return Err(HubError::invalid(
            "warning.eta_seconds",
            "must be a finite, non-negative number or absent",
        ));
    }
    Ok(())
}

/// At most 32 characters of a client's string, for quoting it in a status.
fn truncate_for_status(text: &str) -> String {
    text.chars().take(32).collect()
}

/// A loss record needs a count, a reason and a sane seq range.
pub fn loss(l: &Loss) -> Result<(), HubError> {
    if l.count == 0 {
        return Err(HubError::invalid("loss.count", "must be >= 1"));
    }
    if l.reason.is_empty() {
        return Err(HubError::invalid("loss.reason", "required"));
    }
    text(|| "loss.reason".into(), &l.reason, 256)?;
    if l.first_seq == 0 {
        return Err(HubError::invalid("loss.first_seq", "must be >= 1"));
    }
    if l.last_seq < l.first_seq {
        return Err(HubError::invalid("loss.last_seq", "is before first_seq"));
    }
    // Seq numbers and counts are stored as SQLite integers (i64).
    if l.last_seq > i64::MAX as u64 {
        return Err(HubError::invalid("loss.last_seq", "above 2^63-1"));
    }
    if l.count > i64::MAX as u64 {
        return Err(HubError::invalid("loss.count", "above 2^63-1"));
    }
    // A range stands for exactly its events; only a one-seq record counts failures that
    // never got seq numbers.
    if l.last_seq > l.first_seq && l.count != l.last_seq - l.first_seq + 1 {
        return Err(HubError::invalid(
            "loss.count",
            "must equal last_seq - first_seq + 1 for a range",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tapper_proto::{Timestamp, v1::Diagnosis};

    fn ok_event() -> Event {
        Event {
            seq: 1,
            ts: Some(Timestamp::default()),
            errno: 24,
            ..Default::default()
        }
    }

    #[test]
    fn events_are_checked_field_by_field() {
        assert!(events(&[ok_event()]).is_ok());
        let bad = |e: Event| events(&[ok_event(), e]).unwrap_err().to_string();
        assert!(
            bad(Event {
                seq: 0,
                ..ok_event()
            })
            .starts_with("events[1].seq:")
        );
        assert!(
            bad(Event {
                ts: None,
                ..ok_event()
            })
            .starts_with("events[1].ts:")
        );
        assert!(
            bad(Event {
                errno: -24,
                ..ok_event()
            })
            .starts_with("events[1].errno:")
        );
        assert!(
            bad(Event {
                comm: "x".repeat(100),
                ..ok_event()
            })
            .starts_with("events[1].comm:")
        );
        let mut cut = Event {
            cmdline: "a".repeat(200_000),
            ..ok_event()
        };
        assert!(bad(cut.clone()).starts_with("events[1].cmdline:"));
        limits::truncate_event(&mut cut);
        assert!(events(&[cut]).is_ok());
    }

    #[test]
    fn errno_identity_and_nul_bytes_are_checked() {
        let field = |e: Event| {
            let err = events(&[ok_event(), e]).unwrap_err().to_string();
            err.split(':').next().unwrap().to_owned()
        };
        for errno in [0, 4096, 200_000, i32::MIN] {
            assert_eq!(
                field(Event {
                    errno,
                    ..ok_event()
                }),
                "events[1].errno"
            );
        }
        assert!(
            events(&[Event {
                errno: MAX_ERRNO,
                ..ok_event()
            }])
            .is_ok()
        );
        assert_eq!(
            field(Event {
                cgroup_path: Some("/a".repeat(1 << 19)),
                ..ok_event()
            }),
            "events[1].cgroup_path"
        );
        let pod = |labels: Vec<(String, String)>| Pod {
            name: Some("web".into()),
            labels: labels.into_iter().collect(),
            ..Default::default()
        };
        let with_labels = |labels| Event {
            pod: Some(pod(labels)),
            ..ok_event()
        };
        let many = (0..=limits::POD_LABELS).map(|i| (format!("k{i}"), "v".into()));
        assert_eq!(field(with_labels(many.collect())), "events[1].pod.labels");
        let long_key = vec![("k".repeat(limits::POD_LABEL_KEY + 1), "v".into())];
        assert_eq!(field(with_labels(long_key)), "events[1].pod.labels");
        let long_value = vec![("k".into(), "v".repeat(limits::POD_LABEL_VALUE + 1))];
        assert_eq!(field(with_labels(long_value)), "events[1].pod.labels");
        assert!(events(&[with_labels(vec![("app".into(), "web".into())])]).is_ok());
        let nul = events(&[Event {
            container: Some(tapper_proto::v1::Container {
                image: Some("img\0:1".into()),
                ..Default::default()
            }),
            ..ok_event()
        }])
        .unwrap_err()
        .to_string();
        assert_eq!(
            nul,
            "events[0].container.image: holds a NUL byte at byte 3; send text without NUL bytes"
        );
        for e in [
            Event {
                comm: "a\0".into(),
                ..ok_event()
            },
            Event {
                source: "s".repeat(limits::NAME + 1),
                ..ok_event()
            },
        ] {
            assert!(events(&[e]).is_err());
        }
        let warning_pod = Warning {
            seq: 1,
            kind: "nofile".into(),
            ts: Some(Timestamp::default()),
            pid: Some(7),
            pod: Some(Pod {
                name: Some("p".repeat(limits::POD_NAME + 1)),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(
            warning(&warning_pod)
                .unwrap_err()
                .to_string()
                .starts_with("warning.pod.name:")
        );
    }

    #[test]
    fn user_stacks_are_bounded() {
        let frame = StackFrame {
            address: 0x1234,
            module: Some("/usr/bin/w".into()),
            offset: Some(0x234),
            symbol: Some("main".into()),
            build_id: Some("3f1e".into()),
        };
        let with = |frames: Vec<StackFrame>| Event {
            user_stack: frames,
            ..ok_event()
        };
        let check = |e: Event| events(&[e]).map_err(|err| err.to_string());
        assert!(check(with(vec![frame.clone(); limits::STACK_FRAMES])).is_ok());
        assert_eq!(
            check(with(vec![frame.clone(); limits::STACK_FRAMES + 1])).unwrap_err(),
            "events[0].user_stack: 33 frames exceed the limit of 32"
        );
        let long_symbol = StackFrame {
            symbol: Some("s".repeat(limits::STACK_SYMBOL + 1)),
            ..frame.clone()
        };
        assert!(
            check(with(vec![frame.clone(), long_symbol]))
                .unwrap_err()
                .starts_with("events[0].user_stack[1].symbol:")
        );
        let long_module = StackFrame {
            module: Some("/".repeat(limits::STACK_MODULE + 1)),
            ..frame.clone()
        };
        assert!(
            check(with(vec![long_module]))
                .unwrap_err()
                .starts_with("events[0].user_stack[0].module:")
        );
        let long_build_id = StackFrame {
            build_id: Some("0".repeat(limits::BUILD_ID + 1)),
            ..frame.clone()
        };
        assert!(
            check(with(vec![long_build_id]))
                .unwrap_err()
                .starts_with("events[0].user_stack[0].build_id:")
        );
        let offset_alone = StackFrame {
            module: None,
            ..frame
        };
        assert_eq!(
            check(with(vec![offset_alone])).unwrap_err(),
            "events[0].user_stack[0].offset: set without a module"
        );
    }

    #[test]
    fn from_kernel_and_diagnosis_are_bounded() {
        let check = |e: Event| events(&[e]).map_err(|err| err.to_string());
        let names = |n: usize| Event {
            from_kernel: vec!["exe".into(); n],
            ..ok_event()
        };
        assert!(check(names(limits::FROM_KERNEL)).is_ok());
        assert_eq!(
            check(names(limits::FROM_KERNEL + 1)).unwrap_err(),
            "events[0].from_kernel: more than 5 field names"
        );
        let long_text = Event {
            diagnosis: Some(Diagnosis {
                cause: "unknown".into(),
                text: "x".repeat(limits::DIAGNOSIS_TEXT + 1),
            }),
            ..ok_event()
        };
        assert!(
            check(long_text)
                .unwrap_err()
                .starts_with("events[0].diagnosis.text:")
        );
    }

    #[test]
    fn query_timestamps_and_node_lists() {
        let ts = |seconds, nanos| Timestamp { seconds, nanos };
        assert_eq!(timestamp("since", &ts(2, 5)).unwrap(), 2_000_000_005);
        let bad = |t: Timestamp| timestamp("since", &t).unwrap_err().to_string();
        assert_eq!(bad(ts(1, -1)), "since: nanos out of range");
        assert_eq!(bad(ts(1, 1_000_000_000)), "since: nanos out of range");
        assert_eq!(bad(ts(-1, 0)), "since: is before 1970");
        assert!(node_names(&["a".into(), "b".into()]).is_ok());
        assert_eq!(
            node_names(&["a".into(), String::new()])
                .unwrap_err()
                .to_string(),
            "node[1]: empty node name"
        );
    }

    #[test]
    fn warnings_are_checked_field_by_field() {
        let ok = Warning {
            seq: 1,
            kind: "nofile".into(),
            ts: Some(Timestamp::default()),
            pid: Some(7),
            ratio: 0.8,
            eta_seconds: Some(1.5),
            ..Default::default()
        };
        assert!(warning(&ok).is_ok());
        let file_max = Warning {
            kind: "file-max".into(),
            pid: None,
            eta_seconds: None,
            ..ok.clone()
        };
        assert!(warning(&file_max).is_ok());
        let field = |w: Warning| {
            let err = warning(&w).unwrap_err().to_string();
            err.split(':').next().unwrap().to_owned()
        };
        assert_eq!(
            field(Warning {
                seq: 0,
                ..ok.clone()
            }),
            "warning.seq"
        );
        assert_eq!(
            field(Warning {
                kind: "nofiles".into(),
                ..ok.clone()
            }),
            "warning.kind"
        );
        assert_eq!(
            field(Warning {
                ts: None,
                ..ok.clone()
            }),
            "warning.ts"
        );
        assert_eq!(
            field(Warning {
                pid: None,
                ..ok.clone()
            }),
            "warning.pid"
        );
        assert_eq!(
            field(Warning {
                pid: Some(1),
                ..file_max.clone()
            }),
            "warning.pid"
        );
        assert_eq!(
            field(Warning {
                comm: "c".repeat(100),
                ..ok.clone()
            }),
            "warning.comm"
        );
        assert_eq!(
            field(Warning {
                ratio: f64::NAN,
                ..ok.clone()
            }),
            "warning.ratio"
        );
        assert_eq!(
            field(Warning {
                ratio: f64::INFINITY,
                ..ok.clone()
            }),
            "warning.ratio"
        );
        assert_eq!(
            field(Warning {
                eta_seconds: Some(f64::INFINITY),
                ..ok.clone()
            }),
            "warning.eta_seconds"
        );
        let unknown = warning(&Warning {
            kind: "x".repeat(1000),
            ..ok
        })
        .unwrap_err();
        assert!(
            unknown.to_string().contains("nofile, file-max"),
            "{unknown}"
        );
        assert!(
            unknown.to_string().len() < 200,
            "the kind is quoted short: {unknown}"
        );
    }

    #[test]
    fn loss_and_hello() {
        let l = Loss {
            count: 3,
            reason: "r".into(),
            first_seq: 4,
            last_seq: 6,
        };
        assert!(loss(&l).is_ok());
        assert!(
            loss(&Loss {
                count: 2,
                ..l.clone()
            })
            .unwrap_err()
            .to_string()
            .starts_with("loss.count")
        );
        for (count, first_seq, last_seq, field) in [
            (4, 4, 6, "loss.count"),
            (u64::MAX, 4, 4, "loss.count"),
            (1 << 63, 1, 1 << 63, "loss.last_seq"),
        ] {
            let bad = Loss {
                count,
                first_seq,
                last_seq,
                ..l.clone()
            };
            assert!(loss(&bad).unwrap_err().to_string().starts_with(field));
        }
        let kernel = Loss {
            count: i64::MAX as u64,
            first_seq: 9,
            last_seq: 9,
            ..l.clone()
        };
        assert!(loss(&kernel).is_ok());
        assert!(
            loss(&Loss {
                last_seq: 3,
                ..l.clone()
            })
            .unwrap_err()
            .to_string()
            .starts_with("loss.last_seq")
        );
        assert!(
            hello(&Hello::default())
                .unwrap_err()
                .to_string()
                .starts_with("hello.node")
        );
    }
}
