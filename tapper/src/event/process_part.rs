//! An event's process part: comm, exe and cmdline from `/proc`, ppid, cgroup path,
//! container and pod. It is the same for a process's events, so it is encoded once per
//! process and sent after each event's own encoding (protobuf merges the two).

use std::{collections::HashMap, sync::Arc};

use prost::{Message, bytes::Bytes};
use tapper_common::COMM_LEN;
use tapper_proto::{limits::truncate_event, v1::Event};

use super::comm_text;
use crate::{enrich::ProcessInfo, identity::Identity};

/// Above this many processes the cache starts over.
const MAX_PROCESSES: usize = 4096;

/// The encoded process part of each process that failed lately.
#[derive(Default)]
pub struct ProcessParts {
    by_tgid: HashMap<u32, Part>,
}

struct Part {
    comm: [u8; COMM_LEN],
    /// What it was encoded from: held, so that an `Arc` seen again is this one.
    process: Arc<ProcessInfo>,
    identity: Arc<Identity>,
    encoded: Bytes,
}

impl ProcessParts {
    /// The encoded part of process `tgid` with this comm, `/proc` info and identity. It is
    /// encoded again when any of them is not the one it was encoded from (the caches give
    /// a new `Arc` when they read again).
    pub fn get(
        &mut self,
        tgid: u32,
        comm: &[u8; COMM_LEN],
        process: &Arc<ProcessInfo>,
        identity: &Arc<Identity>,
    ) -> Bytes {
        if let Some(part) = self.by_tgid.get(&tgid)
            && part.comm == *comm
            && Arc::ptr_eq(&part.process, process)
            && Arc::ptr_eq(&part.identity, identity)
        {
            return part.encoded.clone();
        }
        if self.by_tgid.len() >= MAX_PROCESSES {
            self.by_tgid.clear();
        }
        let encoded = encode_part(comm, process, identity);
        let part = Part {
            comm: *comm,
            process: process.clone(),
            identity: identity.clone(),
            encoded: encoded.clone(),
        };
        self.by_tgid.insert(tgid, part);
        encoded
    }
}

/// The process part's fields encoded as an `Event` of nothing else, each string within the
/// proto's limits and those cut named in `truncated`. Exe and cmdline are `/proc`'s, when it
/// had them (else the event's own fields hold the kernel's).
pub(super) fn encode_part(
    comm: &[u8; COMM_LEN],
    process: &ProcessInfo,
    identity: &Identity,
) -> Bytes {
    let mut part = Event {
        ppid: process.ppid,
        comm: comm_text(comm),
        exe: process.exe.clone().unwrap_or_default(),
        cmdline: process.cmdline.clone().unwrap_or_default(),
        truncated: process.truncated.clone(),
        cgroup_path: identity.cgroup_path.clone(),
        container: identity.container.clone(),
        pod: identity.pod.clone(),
        ..Default::default()
    };
    truncate_event(&mut part);
    part.encode_to_vec().into()
}

/// The whole event: `event`'s own fields with the encoded process `part` merged in, as the
/// hub decodes the two sent one after the other.
pub fn merged(mut event: Event, part: &[u8]) -> Event {
    event
        .merge(part)
        .expect("a process part is an encoded Event");
    event
}

#[cfg(test)]
mod tests {
    use super::*;
    use tapper_common::SocketFailure;
    use tapper_proto::v1::{Container, Pod, Quota};

    fn identity() -> Identity {
        Identity {
            cgroup_path: Some("/kubepods/pod1/abc".into()),
            container: Some(Container {
                name: Some("web".into()),
                ..Default::default()
            }),
            pod: Some(Pod {
                name: Some("web-7d9f".into()),
                labels: [("app".to_owned(), "web".to_owned())].into(),
                ..Default::default()
            }),
            quota: Some(Quota {
                memory_max: Some(1 << 30),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn the_event_then_its_part_decode_as_the_whole_event() {
        // SAFETY: a #[repr(C)] record of integers and integer arrays: all zeros is valid.
        let mut raw: SocketFailure = unsafe { std::mem::zeroed() };
        raw.comm[..4].copy_from_slice(b"curl");
        (raw.tgid, raw.errno) = (42, libc::EMFILE);
        let process = ProcessInfo {
            exe: Some("/usr/bin/curl".into()),
            cmdline: Some("curl -s http://x".into()),
            ppid: Some(1),
            cgroup_v1: None,
            truncated: vec!["cmdline".into()],
        };
        let identity = identity();
        let clock = crate::clock::WallClock::sample();
        let mut own = crate::event::build(&raw, &clock, &process, None, identity.quota);
        own.seq = 7;
        let mut sent = own.encode_to_vec();
        sent.extend_from_slice(&encode_part(&raw.comm, &process, &identity));
        let whole = Event {
            comm: "curl".into(),
            exe: "/usr/bin/curl".into(),
            cmdline: "curl -s http://x".into(),
            ppid: Some(1),
            truncated: vec!["cmdline".into()],
            cgroup_path: identity.cgroup_path.clone(),
            container: identity.container.clone(),
            pod: identity.pod.clone(),
            ..own
        };
        let decoded = Event::decode(sent.as_slice()).unwrap();
        assert_eq!(decoded, whole);
        assert_eq!(
            decoded,
            Event::decode(whole.encode_to_vec().as_slice()).unwrap()
        );
        assert_eq!(decoded.quota, identity.quota);
    }

    #[test]
    fn a_part_is_encoded_again_only_when_what_it_holds_changed() {
        let mut parts = ProcessParts::default();
        let process = Arc::new(ProcessInfo::default());
        let identity = Arc::new(identity());
        let comm = *b"curl\0\0\0\0\0\0\0\0\0\0\0\0";
        let first = parts.get(1, &comm, &process, &identity);
        let again = parts.get(1, &comm, &process, &identity);
        assert_eq!(first.as_ptr(), again.as_ptr(), "the same bytes, shared");
        let renamed = parts.get(1, b"wget\0\0\0\0\0\0\0\0\0\0\0\0", &process, &identity);
        assert_ne!(renamed, first);
        let read_again = Arc::new(ProcessInfo {
            ppid: Some(9),
            ..Default::default()
        });
        let reread = parts.get(1, &comm, &read_again, &identity);
        assert_eq!(Event::decode(reread).unwrap().ppid, Some(9));
    }
}
