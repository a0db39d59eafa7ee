//! Checks what tappers send (Hello, event batches, loss records) before anything is stored;
//! each problem is `INVALID_ARGUMENT` naming the field.

use tapper_proto::{
    limits,
    v1::{Event, Hello, Loss},
};

use crate::error::HubError;

/// Most events in one batch.
pub const MAX_BATCH: usize = 10_000;

fn max_len(field: impl FnOnce() -> String, value: &str, max: usize) -> Result<(), HubError> {
    if value.len() > max {
        return Err(HubError::invalid(
            field(),
            format!("{} bytes exceed the limit of {max}", value.len()),
        ));
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
    max_len(|| "hello.node".into(), &h.node, 253)?;
    max_len(|| "hello.instance_id".into(), &h.instance_id, 128)?;
    max_len(|| "hello.kernel_release".into(), &h.kernel_release, 256)?;
    max_len(|| "hello.probe_mode".into(), &h.probe_mode, 32)?;
    max_len(|| "hello.agent_version".into(), &h.agent_version, 256)?;
    Ok(())
}

/// Every event of a batch: seq >= 1, a timestamp, a positive errno, bounded strings.
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
            Some(ts) if !(0..1_000_000_000).contains(&ts.nanos) => {
                return Err(HubError::invalid(f("ts"), "nanos out of range"));
            }
            Some(_) => {}
        }
        if e.errno <= 0 {
            return Err(HubError::invalid(
                f("errno"),
                format!("must be positive, got {}", e.errno),
            ));
        }
        max_len(|| f("comm"), &e.comm, limits::COMM)?;
        max_len(|| f("exe"), &e.exe, limits::EXE)?;
        max_len(|| f("cmdline"), &e.cmdline, limits::CMDLINE)?;
        for (name, v) in [
            ("family_name", &e.family_name),
            ("type_name", &e.type_name),
            ("protocol_name", &e.protocol_name),
            ("errno_name", &e.errno_name),
            ("probe", &e.probe),
        ] {
            max_len(|| f(name), v, limits::NAME)?;
        }
        max_len(|| f("message"), &e.message, limits::MESSAGE)?;
        if e.truncated.len() > limits::TRUNCATED {
            return Err(HubError::invalid(
                f("truncated"),
                format!("more than {} field names", limits::TRUNCATED),
            ));
        }
        for name in &e.truncated {
            max_len(|| f("truncated"), name, limits::NAME)?;
        }
    }
    Ok(())
}

/// A loss record needs a count, a reason and a sane seq range.
pub fn loss(l: &Loss) -> Result<(), HubError> {
    if l.count == 0 {
        return Err(HubError::invalid("loss.count", "must be >= 1"));
    }
    if l.reason.is_empty() {
        return Err(HubError::invalid("loss.reason", "required"));
    }
    max_len(|| "loss.reason".into(), &l.reason, 256)?;
    if l.first_seq == 0 {
        return Err(HubError::invalid("loss.first_seq", "must be >= 1"));
    }
    if l.last_seq < l.first_seq {
        return Err(HubError::invalid("loss.last_seq", "is before first_seq"));
    }
    if l.last_seq - l.first_seq >= l.count {
        return Err(HubError::invalid(
            "loss.count",
            "smaller than the seq range it covers",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tapper_proto::Timestamp;

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
