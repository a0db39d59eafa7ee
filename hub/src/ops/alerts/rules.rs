//! The alert rules file (`--alert-rules FILE`, TOML): `[[rule]]` tables checked field by
//! field, so a mistake is an error at start that names the rule and the field. A rule
//! counts failure events (`kind = "event"`, the default) or warnings of a kind.

use std::{collections::HashSet, path::Path, time::Duration};

use tapper_proto::WarningKind;
use toml::{Table, Value};

use super::observed::{KIND_EVENT, Observed};
use crate::util::config_file::{self, FileError};

/// What a rule may group its alerts by; each becomes an alert label.
pub const GROUP_KEYS: [&str; 4] = ["node", "errno", "family", "comm"];
const FIELDS: &str = "name, kind, errno, threshold, window, group_by, severity, max_groups";
/// A rule's `kind` that counts every warning, whatever its kind.
const KIND_WARNING: &str = "warning";
/// What a rule may count: failure events, every warning, or warnings of one kind
/// ([`WarningKind`]).
fn kinds() -> Vec<&'static str> {
    let mut kinds = vec![KIND_EVENT, KIND_WARNING];
    kinds.extend(WarningKind::ALL.map(WarningKind::as_str));
    kinds
}
/// What a rule on warnings may group by (warnings have no errno or family).
const WARNING_GROUP_KEYS: [&str; 2] = ["node", "comm"];
/// The most failures a rule may wait for (the engine keeps that many times per group).
const MAX_THRESHOLD: i64 = 100_000;
/// The largest `max_groups` a rule may set.
pub const MAX_GROUPS_LIMIT: usize = 1_000_000;
/// Largest rules file accepted.
const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// One rule: `threshold` failures with one of `errnos` within `window`, per `group_by`.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub name: String,
    /// Errno numbers that count; empty counts every errno.
    pub errnos: Vec<i32>,
    pub threshold: usize,
    pub window: Duration,
    pub group_by: Vec<&'static str>,
    pub severity: String,
    /// "event" (failures), "warning" (every warning), or a warning kind.
    pub kind: String,
    /// Most groups the rule keeps apart; `None` takes `--alert-max-groups`.
    pub max_groups: Option<usize>,
}

impl Rule {
    /// Whether the rule counts `item`.
    pub fn counts(&self, item: &impl Observed) -> bool {
        let kind_matches = match self.kind.as_str() {
            KIND_WARNING => item.kind() != KIND_EVENT,
            kind => item.kind() == kind,
        };
        kind_matches
            && (self.errnos.is_empty() || item.errno().is_some_and(|e| self.errnos.contains(&e)))
    }
}

/// A rules file that cannot be used, with the place and what to do.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error(transparent)]
    File(#[from] FileError),
    #[error("--alert-rules {path}: {place}{reason}")]
    Rule {
        path: String,
        /// `rule 2 ("Name"): field: ` or empty for the file as a whole.
        place: String,
        reason: String,
    },
}

/// Reads and checks the rules in `path`.
pub fn load(path: &Path) -> Result<Vec<Rule>, RulesError> {
    let text = config_file::read("alert-rules", path, MAX_FILE_BYTES)?;
    parse(&text).map_err(|(place, reason)| RulesError::Rule {
        path: path.display().to_string(),
        place,
        reason,
    })
}

/// (where, what) of the first mistake.
type Mistake = (String, String);

fn parse(text: &str) -> Result<Vec<Rule>, Mistake> {
    let file_level = |reason: String| (String::new(), reason);
    let mut top: Table = text
        .parse()
        .map_err(|e: toml::de::Error| file_level(format!("not valid TOML: {}", e.message())))?;
    let rules = match top.remove("rule") {
        Some(Value::Array(rules)) if !rules.is_empty() => rules,
        Some(_) => return Err(file_level("`rule` must be [[rule]] tables".into())),
        None => {
            return Err(file_level(
                "no [[rule]] table; see docs/hub.md (alerts from the hub) for an example".into(),
            ));
        }
    };
    if let Some(key) = top.keys().next() {
        return Err(file_level(format!(
            "unknown top-level key `{key}`; only [[rule]] tables belong here"
        )));
    }
    let mut names = HashSet::new();
    let mut parsed = Vec::new();
    for (i, value) in rules.into_iter().enumerate() {
        let Value::Table(table) = value else {
            return Err((format!("rule {}: ", i + 1), "must be a table".into()));
        };
        let rule = parse_rule(&table, i + 1)?;
        if !names.insert(rule.name.clone()) {
            return Err((
                format!("rule {} ({:?}): name: ", i + 1, rule.name),
                "another rule has this name; alert names must be unique".into(),
            ));
        }
        parsed.push(rule);
    }
    Ok(parsed)
}

fn parse_rule(t: &Table, number: usize) -> Result<Rule, Mistake> {
    let name = match t.get("name") {
        Some(Value::String(s)) if !s.trim().is_empty() && s.len() <= 128 => s.clone(),
        _ => {
            return Err((
                format!("rule {number}: name: "),
                "give the alert's name, a string of 1 to 128 bytes".into(),
            ));
        }
    };
    let at = |field: &str| format!("rule {number} ({name:?}): {field}: ");
    if let Some(key) = t
        .keys()
        .find(|k| !FIELDS.split(", ").any(|f| f == k.as_str()))
    {
        return Err((at(key), format!("unknown field; the fields are {FIELDS}")));
    }
    let kind = match t.get("kind") {
        None => KIND_EVENT.to_owned(),
        Some(Value::String(s)) if kinds().contains(&s.as_str()) => s.clone(),
        Some(other) => {
            return Err((
                at("kind"),
                format!("must be one of {}, got {other}", kinds().join(", ")),
            ));
        }
    };
    let on_warnings = kind != KIND_EVENT;
    if on_warnings && t.contains_key("errno") {
        return Err((
            at("errno"),
            format!("applies to failure events only, not to kind {kind:?}; remove it"),
        ));
    }
    let errnos = match t.get("errno") {
        None => Vec::new(),
        Some(Value::Array(list)) => list
            .iter()
            .map(|v| match v {
                Value::String(s) => tapper_names::parse_errno(s).map_err(|e| e.to_string()),
                Value::Integer(n) => {
                    tapper_names::parse_errno(&n.to_string()).map_err(|e| e.to_string())
                }
                other => Err(format!("{other} is no errno; use names such as \"EMFILE\"")),
            })
            .collect::<Result<_, _>>()
            .map_err(|reason| (at("errno"), reason))?,
        Some(_) => {
            return Err((
                at("errno"),
                "must be a list such as [\"EMFILE\", \"ENFILE\"]".into(),
            ));
        }
    };
    let threshold = match t.get("threshold") {
        Some(Value::Integer(n)) if (1..=MAX_THRESHOLD).contains(n) => *n as usize,
        other => {
            return Err((
                at("threshold"),
                format!(
                    "must be a whole number of failures from 1 to {MAX_THRESHOLD}, got {}",
                    shown(other)
                ),
            ));
        }
    };
    let window = match t.get("window") {
        Some(Value::String(s)) => {
            tapper_proto::flag_text::parse_duration(s).map_err(|e| (at("window"), e))?
        }
        other => {
            return Err((
                at("window"),
                format!(
                    "must be a duration such as \"10s\" or \"5m\", got {}",
                    shown(other)
                ),
            ));
        }
    };
    let group_by = match t.get("group_by") {
        None => Vec::new(),
        Some(Value::Array(keys)) => keys
            .iter()
            .map(|k| {
                GROUP_KEYS
                    .iter()
                    .find(|g| k.as_str() == Some(**g))
                    .copied()
                    .ok_or_else(|| {
                        (
                            at("group_by"),
                            format!("{k} is not one of {}", GROUP_KEYS.join(", ")),
                        )
                    })
            })
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err((
                at("group_by"),
                format!("must be a list such as [\"node\"], got {other}"),
            ));
        }
    };
    if let Some(key) = group_by
        .iter()
        .find(|k| on_warnings && !WARNING_GROUP_KEYS.contains(k))
    {
        return Err((
            at("group_by"),
            format!(
                "warnings have no {key}; a rule of kind {kind:?} groups by {}",
                WARNING_GROUP_KEYS.join(", ")
            ),
        ));
    }
    let severity = match t.get("severity") {
        None => "warning".to_owned(),
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        Some(other) => {
            return Err((
                at("severity"),
                format!("must be a word such as \"critical\", got {other}"),
            ));
        }
    };
    let max_groups = match t.get("max_groups") {
        None => None,
        Some(Value::Integer(n)) if (1..=MAX_GROUPS_LIMIT as i64).contains(n) => Some(*n as usize),
        Some(other) => {
            return Err((
                at("max_groups"),
                format!("must be a whole number from 1 to {MAX_GROUPS_LIMIT}, got {other}"),
            ));
        }
    };
    Ok(Rule {
        name,
        errnos,
        threshold,
        window,
        group_by,
        severity,
        kind,
        max_groups,
    })
}

fn shown(value: Option<&Value>) -> String {
    value.map_or_else(|| "nothing".into(), Value::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of docs/hub.md and the issue, as written.
    const EXAMPLE: &str = r#"
[[rule]]
name = "SocketEmfileBurst"
errno = ["EMFILE", "ENFILE"]
threshold = 5          # failures ...
window = "10s"         # ... within this sliding window
group_by = ["node"]    # one alert per node
severity = "critical"
"#;

    #[test]
    fn the_example_parses_as_written() {
        let rules = parse(EXAMPLE).unwrap();
        assert_eq!(
            rules,
            vec![Rule {
                name: "SocketEmfileBurst".into(),
                errnos: vec![24, 23], // EMFILE, ENFILE
                threshold: 5,
                window: Duration::from_secs(10),
                group_by: vec!["node"],
                severity: "critical".into(),
                kind: "event".into(),
                max_groups: None,
            }]
        );
    }

    fn mistake(text: &str) -> String {
        let (place, reason) = parse(text).unwrap_err();
        format!("{place}{reason}")
    }

    #[test]
    fn mistakes_name_the_rule_and_the_field() {
        let with = |line: &str| {
            mistake(&format!(
                "[[rule]]\nname = \"A\"\nthreshold = 1\nwindow = \"1s\"\n[[rule]]\nname = \"B\"\nthreshold = 2\nwindow = \"1s\"\n{line}\n"
            ))
        };
        assert_eq!(
            with("threshold2 = 3"),
            format!("rule 2 (\"B\"): threshold2: unknown field; the fields are {FIELDS}")
        );
        assert!(
            with("errno = [\"EFOO\"]")
                .starts_with("rule 2 (\"B\"): errno: unknown errno name \"EFOO\"")
        );
        assert!(
            with("group_by = [\"pid\"]")
                .starts_with("rule 2 (\"B\"): group_by: \"pid\" is not one of node")
        );
        assert!(with("severity = 3").starts_with("rule 2 (\"B\"): severity:"));
        assert!(with("max_groups = 0").starts_with(
            "rule 2 (\"B\"): max_groups: must be a whole number from 1 to 1000000, got 0"
        ));
        assert!(with("errno = \"EMFILE\"").starts_with("rule 2 (\"B\"): errno: must be a list"));
        let m = mistake("[[rule]]\nname = \"A\"\nthreshold = \"five\"\nwindow = \"1s\"\n");
        assert_eq!(
            m,
            "rule 1 (\"A\"): threshold: must be a whole number of failures from 1 to 100000, got \"five\""
        );
        let m = mistake("[[rule]]\nname = \"A\"\nthreshold = 1\nwindow = \"soon\"\n");
        assert!(
            m.starts_with("rule 1 (\"A\"): window: \"soon\" is not a duration"),
            "{m}"
        );
        let m = mistake("[[rule]]\nname = \"A\"\nthreshold = 1\n");
        assert!(
            m.starts_with("rule 1 (\"A\"): window: must be a duration"),
            "{m}"
        );
        let m = mistake("[[rule]]\nthreshold = 1\n");
        assert!(m.starts_with("rule 1: name: give the alert's name"), "{m}");
        let m = mistake(
            "[[rule]]\nname = \"A\"\nthreshold = 1\nwindow = \"1s\"\n[[rule]]\nname = \"A\"\nthreshold = 1\nwindow = \"1s\"\n",
        );
        assert!(m.starts_with("rule 2 (\"A\"): name: another rule"), "{m}");
        assert!(mistake("rules = 1").starts_with("no [[rule]] table"));
        assert!(mistake("[[rule]\n").starts_with("not valid TOML"));
    }

    #[test]
    fn rules_on_warnings_name_a_kind_and_no_errno() {
        let rules = parse(
            "[[rule]]\nname = \"FdExhaustionAhead\"\nkind = \"nofile\"\nthreshold = 1\nwindow = \"1m\"\ngroup_by = [\"node\", \"comm\"]\n",
        )
        .unwrap();
        assert_eq!(rules[0].kind, "nofile");
        assert_eq!(rules[0].group_by, vec!["node", "comm"]);
        let with = |lines: &str| {
            mistake(&format!(
                "[[rule]]\nname = \"W\"\nthreshold = 1\nwindow = \"1s\"\n{lines}\n"
            ))
        };
        assert!(
            with("kind = \"fd\"").starts_with(
                "rule 1 (\"W\"): kind: must be one of event, warning, nofile, file-max"
            )
        );
        assert!(
            with("kind = \"warning\"\nerrno = [\"EMFILE\"]")
                .starts_with("rule 1 (\"W\"): errno: applies to failure events only")
        );
        assert!(
            with("kind = \"file-max\"\ngroup_by = [\"errno\"]")
                .starts_with("rule 1 (\"W\"): group_by: warnings have no errno")
        );
    }

    #[test]
    fn the_file_is_named_in_errors() {
        let e = load(Path::new("/nonexistent/rules.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("--alert-rules /nonexistent/rules.toml: cannot read it"),
            "{e}"
        );
    }
}
