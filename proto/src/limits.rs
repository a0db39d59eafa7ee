//! Every limit of the wire, one set for both sides: what a client must respect and what the
//! hub enforces (beyond them a request is `INVALID_ARGUMENT`).
//!
//! - Requests: batch sizes, names in a Hello, counters, subscription filters and page sizes.
//! - Strings of an event or a warning: the tapper fits them before sending
//!   ([`truncate_event`], naming each cut field in `Event.truncated`) and the hub rejects
//!   anything beyond them ([`check`]). They keep one event, and so one batch and one
//!   subscriber's queue, small. One rule for NUL too: no string may hold one (a PostgreSQL
//!   `text` cannot); the tapper replaces it with U+FFFD, the hub refuses it.

use std::collections::HashMap;

use crate::v1::{Container, Diagnosis, Event, Pod, Warning};

/// The largest request message a hub accepts by default (`--max-message-bytes`): 4 MiB.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;
/// Most events in one `EventBatch`.
pub const MAX_BATCH: usize = 10_000;
/// Longest node name a tapper can have (`Hello.node`): a DNS name.
pub const MAX_NODE_BYTES: usize = 253;
/// Longest `Hello.instance_id`.
pub const MAX_INSTANCE_ID_BYTES: usize = 128;
/// Most entries of `Counters.per_errno` (errno numbers are 1..4095).
pub const MAX_ERRNO_ENTRIES: usize = 4095;
/// Most values in one repeated filter field of a query or subscription (`node`, `errno`...).
pub const MAX_VALUES: usize = 1024;
/// Longest `comm` or `pod` glob of a subscription, in bytes.
pub const MAX_PATTERN_BYTES: usize = 256;
/// Shortest `container_id` prefix a subscription may give (fewer characters would match
/// nearly anything).
pub const MIN_ID_PREFIX: usize = 4;
/// `ListTappers` page size when the request leaves it at 0.
pub const DEFAULT_TAPPERS_PAGE: usize = 100;
/// Largest `ListTappers` page size a request may ask for.
pub const MAX_TAPPERS_PAGE: usize = 1000;
/// Longest status message a hub sends, in bytes; longer ones are cut (at a character
/// boundary).
pub const MAX_STATUS_MESSAGE: usize = 512;

/// `comm`: the kernel keeps 15 bytes; after lossy UTF-8 conversion at most 45.
pub const COMM: usize = 64;
/// `exe`: a path (PATH_MAX).
pub const EXE: usize = 4096;
/// `cmdline`: the arguments joined with spaces.
pub const CMDLINE: usize = 4096;
/// `family_name`, `type_name`, `protocol_name`, `errno_name`, `probe`, `source` and
/// `container.runtime`.
pub const NAME: usize = 128;
/// `message` (strerror text).
pub const MESSAGE: usize = 256;

/// `cgroup_path`: PATH_MAX, the longest path `/proc/PID/cgroup` shows.
pub const CGROUP_PATH: usize = 4096;
/// `container.id`: 64 hex digits for every runtime named in the proto; room for others.
pub const CONTAINER_ID: usize = 128;
/// `container.name`.
pub const CONTAINER_NAME: usize = 256;
/// `container.image`: registry, repository (at most 255), tag (128) and digest.
pub const CONTAINER_IMAGE: usize = 512;
/// `pod.uid`: a UUID (36 characters).
pub const POD_UID: usize = 128;
/// `pod.namespace` and `pod.name`: Kubernetes names (DNS subdomains, at most 253).
pub const POD_NAME: usize = 253;
/// `pod.labels`: at most this many labels.
pub const POD_LABELS: usize = 64;
/// A `pod.labels` key: a DNS-subdomain prefix (253), `/` and a name (63).
pub const POD_LABEL_KEY: usize = 317;
/// A `pod.labels` value (Kubernetes allows 63).
pub const POD_LABEL_VALUE: usize = 256;

/// `diagnosis.text`: one sentence with its evidence.
pub const DIAGNOSIS_TEXT: usize = 1024;
/// `from_kernel`: at most this many field names (the five the kernel can fill).
pub const FROM_KERNEL: usize = 5;
/// `user_stack[].build_id`: lowercase hex of a build id (the kernel's are at most 20 bytes).
pub const BUILD_ID: usize = 128;
/// `user_stack`: at most this many frames (the kernel captures up to 32).
pub const STACK_FRAMES: usize = 32;
/// `StackFrame.module` (a path); longer paths are cut.
pub const STACK_MODULE: usize = 1024;
/// `StackFrame.symbol` (a demangled name); longer names are cut.
pub const STACK_SYMBOL: usize = 512;

/// `truncated`: at most this many field names (the string fields of an event, with the
/// identity's).
pub const TRUNCATED: usize = 22;

/// What is wrong with a string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("{len} bytes exceed the limit of {max}")]
    TooLong { len: usize, max: usize },
    #[error("holds a NUL byte at byte {at}; send text without NUL bytes")]
    Nul { at: usize },
}

/// The hub's rule for one string: at most `max` bytes, and no NUL.
pub fn check(text: &str, max: usize) -> Result<(), TextError> {
    if text.len() > max {
        return Err(TextError::TooLong {
            len: text.len(),
            max,
        });
    }
    // A byte search (memchr) rather than `str::find(char)`: this runs on every string of
    // every event the hub takes.
    if text.as_bytes().contains(&0) {
        let at = text.bytes().position(|b| b == 0).unwrap_or_default();
        return Err(TextError::Nul { at });
    }
    Ok(())
}

/// The tapper's side of [`check`]: replaces each NUL with U+FFFD, then cuts `text` to at
/// most `max` bytes at a character boundary; true if it was cut.
pub fn fit(text: &mut String, max: usize) -> bool {
    if text.as_bytes().contains(&0) {
        *text = text.replace('\0', "\u{fffd}");
    }
    truncate(text, max)
}

/// Cuts `text` to at most `max` bytes at a character boundary; true if it was cut.
pub fn truncate(text: &mut String, max: usize) -> bool {
    if text.len() <= max {
        return false;
    }
    text.truncate(text.floor_char_boundary(max));
    true
}

/// The strings of a container and a pod (`&Option<_>` or `&mut Option<_>`) as an iterator of
/// (field name, string, limit); label values come as "pod.labels".
macro_rules! identity_strings {
    ($container:expr, $pod:expr) => {
        IntoIterator::into_iter($container)
            .flat_map(
                |Container {
                     id,
                     runtime,
                     name,
                     image,
                 }| {
                    [
                        ("container.id", id, CONTAINER_ID),
                        ("container.runtime", runtime, NAME),
                        ("container.name", name, CONTAINER_NAME),
                        ("container.image", image, CONTAINER_IMAGE),
                    ]
                    .into_iter()
                    .flat_map(optional)
                },
            )
            .chain(IntoIterator::into_iter($pod).flat_map(
                |Pod {
                     uid,
                     namespace,
                     name,
                     labels,
                 }| {
                    [
                        ("pod.uid", uid, POD_UID),
                        ("pod.namespace", namespace, POD_NAME),
                        ("pod.name", name, POD_NAME),
                    ]
                    .into_iter()
                    .flat_map(optional)
                    .chain(
                        IntoIterator::into_iter(labels)
                            .map(|(_, value)| ("pod.labels", value, POD_LABEL_VALUE)),
                    )
                },
            ))
    };
}

/// The strings of a diagnosis (`&Option<_>` or `&mut Option<_>`) as an iterator.
macro_rules! diagnosis_strings {
    ($diagnosis:expr) => {
        IntoIterator::into_iter($diagnosis).flat_map(|Diagnosis { cause, text }| {
            [
                ("diagnosis.cause", cause, NAME),
                ("diagnosis.text", text, DIAGNOSIS_TEXT),
            ]
        })
    };
}

/// The string fields of an event (`&Event` or `&mut Event`) with their names and limits,
/// in field order, as an iterator that allocates nothing: the one list behind both
/// [`truncate_event`] and the hub's check. `truncated` and `user_stack` have rules of their
/// own; the hub's own fields (`node`, `instance_id`) are ignored on Report.
macro_rules! event_strings {
    ($event:expr) => {{
        let Event {
            comm,
            exe,
            cmdline,
            family_name,
            type_name,
            protocol_name,
            errno_name,
            message,
            probe,
            source,
            cgroup_path,
            container,
            pod,
            seccomp_mode,
            diagnosis,
            ..
        } = $event;
        [
            ("comm", comm, COMM),
            ("exe", exe, EXE),
            ("cmdline", cmdline, CMDLINE),
            ("family_name", family_name, NAME),
            ("type_name", type_name, NAME),
            ("protocol_name", protocol_name, NAME),
            ("errno_name", errno_name, NAME),
            ("message", message, MESSAGE),
            ("probe", probe, NAME),
            ("source", source, NAME),
        ]
        .into_iter()
        .chain(IntoIterator::into_iter(cgroup_path).map(|p| ("cgroup_path", p, CGROUP_PATH)))
        .chain(identity_strings!(container, pod))
        .chain(std::iter::once(("seccomp_mode", seccomp_mode, NAME)))
        .chain(diagnosis_strings!(diagnosis))
    }};
}

/// The string fields of a warning, as [`event_strings`] lists an event's (`kind` is checked
/// against the known kinds instead).
macro_rules! warning_strings {
    ($warning:expr) => {{
        let Warning {
            comm,
            exe,
            container,
            pod,
            diagnosis,
            ..
        } = $warning;
        [("comm", comm, COMM), ("exe", exe, EXE)]
            .into_iter()
            .chain(identity_strings!(container, pod))
            .chain(diagnosis_strings!(diagnosis))
    }};
}

/// A string field: its name (label values are all "pod.labels"), the text and its limit.
pub type Field<T> = (&'static str, T, usize);

/// An optional string field (`&Option<String>` or `&mut Option<String>`) as its string, if
/// set.
fn optional<T: IntoIterator>((field, text, max): Field<T>) -> impl Iterator<Item = Field<T::Item>> {
    text.into_iter().map(move |t| (field, t, max))
}

/// The string fields of `event` with their limits, for checking.
pub fn event_strings(event: &Event) -> impl Iterator<Item = Field<&String>> {
    event_strings!(event)
}

/// The string fields of `warning` with their limits, for checking.
pub fn warning_strings(warning: &Warning) -> impl Iterator<Item = Field<&String>> {
    warning_strings!(warning)
}

/// What is wrong with a set of pod labels beyond their values: too many, or a key too long
/// or holding a NUL.
pub fn check_label_keys(labels: &HashMap<String, String>) -> Result<(), String> {
    if labels.len() > POD_LABELS {
        return Err(format!(
            "{} labels exceed the limit of {POD_LABELS}",
            labels.len()
        ));
    }
    for key in labels.keys() {
        if let Err(e) = check(key, POD_LABEL_KEY) {
            let shown: String = key.chars().take(32).collect();
            return Err(format!("key {shown:?}: {e}"));
        }
    }
    Ok(())
}

/// The tapper's side of [`check_label_keys`]: drops the labels whose key is too long or
/// holds a NUL (a cut key would be another label), then keeps the first [`POD_LABELS`] by
/// key; true if any was dropped.
fn fit_label_keys(labels: &mut HashMap<String, String>) -> bool {
    let before = labels.len();
    labels.retain(|key, _| check(key, POD_LABEL_KEY).is_ok());
    if labels.len() > POD_LABELS {
        let mut keys: Vec<&String> = labels.keys().collect();
        keys.sort_unstable();
        let first_dropped = keys[POD_LABELS].clone();
        labels.retain(|key, _| *key < first_dropped);
    }
    labels.len() < before
}

/// Fits `fields` to their limits ([`fit`]) and returns the names of those cut, once each,
/// in order; `labels_cut` says whether pod labels were dropped already.
fn fit_all<'a>(
    fields: impl Iterator<Item = Field<&'a mut String>>,
    labels_cut: bool,
) -> Vec<&'static str> {
    let mut cut: Vec<&'static str> = Vec::new();
    for (name, text, max) in fields {
        if fit(text, max) && !cut.contains(&name) {
            cut.push(name);
        }
    }
    if labels_cut && !cut.contains(&"pod.labels") {
        cut.push("pod.labels");
    }
    cut
}

/// Fits every string of `event` to its limit ([`fit`]; pod labels beyond their limits are
/// dropped) and adds each cut field's name to `event.truncated` (once, in field order).
pub fn truncate_event(event: &mut Event) {
    let labels_cut = event
        .pod
        .as_mut()
        .is_some_and(|pod| fit_label_keys(&mut pod.labels));
    for name in fit_all(event_strings!(&mut *event), labels_cut) {
        if !event.truncated.iter().any(|t| t == name) {
            event.truncated.push(name.to_owned());
        }
    }
}

/// Fits every string of `warning` to its limit, as [`truncate_event`] does for an event (a
/// warning has no `truncated` list: the cut is silent).
pub fn truncate_warning(warning: &mut Warning) {
    let labels_cut = warning
        .pod
        .as_mut()
        .is_some_and(|pod| fit_label_keys(&mut pod.labels));
    fit_all(warning_strings!(&mut *warning), labels_cut);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_at_a_character_boundary_and_says_so() {
        let mut ascii = "abcdef".to_owned();
        assert!(!truncate(&mut ascii, 6));
        assert!(truncate(&mut ascii, 4));
        assert_eq!(ascii, "abcd");
        // U+FFFD is 3 bytes: 2 of them do not fit in 5 bytes, and half of one is not kept.
        let mut replaced = "\u{fffd}\u{fffd}".to_owned();
        assert!(truncate(&mut replaced, 5));
        assert_eq!(replaced, "\u{fffd}");
    }

    #[test]
    fn lossy_conversion_growth_is_cut_after_converting() {
        // 2,000 invalid bytes become 6,000 bytes of U+FFFD.
        let mut exe = String::from_utf8_lossy(&[0xff; 2000]).into_owned();
        assert_eq!(exe.len(), 6000);
        assert!(truncate(&mut exe, EXE));
        assert_eq!(exe.len(), EXE / 3 * 3);
        assert!(exe.chars().all(|c| c == '\u{fffd}'));
    }

    #[test]
    fn an_event_names_each_cut_field_once() {
        let mut event = Event {
            comm: "c".repeat(COMM),
            exe: "e".repeat(EXE + 1),
            cmdline: "a".repeat(200_000),
            truncated: vec!["cmdline".into()],
            ..Default::default()
        };
        truncate_event(&mut event);
        assert_eq!((event.comm.len(), event.exe.len()), (COMM, EXE));
        assert_eq!(event.cmdline.len(), CMDLINE);
        assert_eq!(event.truncated, ["cmdline", "exe"]);
    }

    fn identity() -> (Container, Pod) {
        let container = Container {
            id: Some("3f2a".repeat(16)),
            runtime: Some("containerd".into()),
            name: Some("web".into()),
            image: Some("registry.example/web:1.2".into()),
        };
        let pod = Pod {
            uid: Some("0b7c2d5e-5a6b-4f1e-9c1d-2f3a4b5c6d7e".into()),
            namespace: Some("shop".into()),
            name: Some("web-7d9f".into()),
            labels: [("app".to_owned(), "web".to_owned())].into(),
        };
        (container, pod)
    }

    #[test]
    fn identity_strings_are_cut_and_named_in_field_order() {
        let (mut container, mut pod) = identity();
        container.image = Some("i".repeat(CONTAINER_IMAGE + 1));
        pod.name = Some("p".repeat(1 << 20));
        pod.labels
            .insert("tier".into(), "v".repeat(POD_LABEL_VALUE + 1));
        let mut event = Event {
            cgroup_path: Some("/k".repeat(1 << 19)),
            container: Some(container),
            pod: Some(pod),
            ..Default::default()
        };
        truncate_event(&mut event);
        assert_eq!(
            event.truncated,
            ["cgroup_path", "container.image", "pod.name", "pod.labels"]
        );
        assert_eq!(event.cgroup_path.as_ref().unwrap().len(), CGROUP_PATH);
        let (container, pod) = (event.container.unwrap(), event.pod.unwrap());
        assert_eq!(container.image.unwrap().len(), CONTAINER_IMAGE);
        assert_eq!(
            container.id.unwrap(),
            "3f2a".repeat(16),
            "a short field stays"
        );
        assert_eq!(pod.name.unwrap().len(), POD_NAME);
        assert_eq!(pod.labels["tier"].len(), POD_LABEL_VALUE);
        assert_eq!(pod.labels["app"], "web");
    }

    #[test]
    fn surplus_labels_and_overlong_keys_are_dropped() {
        let (_, mut pod) = identity();
        pod.labels = (0..POD_LABELS + 10)
            .map(|i| (format!("k{i:03}"), "v".to_owned()))
            .collect();
        pod.labels.insert("x".repeat(POD_LABEL_KEY + 1), "v".into());
        let mut event = Event {
            pod: Some(pod),
            ..Default::default()
        };
        truncate_event(&mut event);
        assert_eq!(event.truncated, ["pod.labels"]);
        let labels = &event.pod.as_ref().unwrap().labels;
        assert_eq!(labels.len(), POD_LABELS);
        assert!((0..POD_LABELS).all(|i| labels.contains_key(&format!("k{i:03}"))));
        assert_eq!(check_label_keys(labels), Ok(()));
    }

    #[test]
    fn nul_bytes_become_replacement_characters_and_the_hub_rule_refuses_them() {
        assert_eq!(check("a\0b", 10), Err(TextError::Nul { at: 1 }));
        assert_eq!(check("abc", 2), Err(TextError::TooLong { len: 3, max: 2 }));
        assert_eq!(check("abc", 3), Ok(()));
        let (container, mut pod) = identity();
        pod.labels.insert("a\0b".into(), "v".into());
        let mut warning = Warning {
            comm: "we\0b".into(),
            container: Some(Container {
                image: Some("img\0".into()),
                ..container
            }),
            pod: Some(pod),
            ..Default::default()
        };
        truncate_warning(&mut warning);
        assert_eq!(warning.comm, "we\u{fffd}b");
        assert_eq!(warning.container.unwrap().image.unwrap(), "img\u{fffd}");
        let labels = warning.pod.unwrap().labels;
        assert!(!labels.contains_key("a\0b"), "a key with a NUL is dropped");
        assert_eq!(labels.len(), 1);
    }

    #[test]
    fn every_string_field_is_listed_and_truncated_has_room_for_all() {
        let (container, pod) = identity();
        let event = Event {
            cgroup_path: Some("/".into()),
            container: Some(container),
            pod: Some(pod),
            diagnosis: Some(Diagnosis::default()),
            ..Default::default()
        };
        let mut names: Vec<&str> = event_strings(&event).map(|f| f.0).collect();
        names.dedup();
        assert_eq!(names.len(), TRUNCATED, "{names:?}");
    }
}
