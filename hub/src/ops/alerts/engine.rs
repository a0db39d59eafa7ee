//! Evaluates the rules on each committed batch of events or warning (hub receive time, one
//! clock for every node): per rule and group, the times of the last `threshold` matching
//! failures (an event is `1 + suppressed` of them) or warnings; firing
//! when they fit in the window, re-sent while firing, resolved once a window passes quietly.
//! A rule keeps at most `max_groups` groups apart; what would open more counts in one more.

use std::{
    collections::{BTreeMap, HashMap, VecDeque, hash_map::Entry},
    time::{Duration, Instant, SystemTime},
};

use super::{
    observed::{KIND_EVENT, Observed},
    rules::Rule,
};

/// One alert as Alertmanager gets it; `key` identifies it (its labels).
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub key: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub starts_at: SystemTime,
    pub ends_at: SystemTime,
    pub firing: bool,
}

struct Group {
    labels: BTreeMap<String, String>,
    /// The receive times of the last `threshold` matching failures.
    recent: VecDeque<Instant>,
    last_seen: Instant,
    last_process: String,
    firing: Option<Firing>,
}

struct Firing {
    starts_at: SystemTime,
    last_sent: Instant,
}

/// The value of every group-by label of the group that counts what a rule's `max_groups`
/// groups leave over (longer than any command name, so no real group has it for `comm`).
pub const OVER_MAX_GROUPS: &str = "(over max_groups)";

/// A group of a rule: its group-by values, or `None` for the group over `max_groups`.
type GroupKey = (usize, Option<Vec<String>>);

/// Items of a rule counted over its `max_groups` since the last [`Engine::take_capped`].
#[derive(Debug, PartialEq)]
pub struct Capped {
    pub rule: usize,
    pub items: u64,
}

pub struct Engine {
    rules: Vec<Rule>,
    groups: HashMap<GroupKey, Group>,
    /// Per rule: the most groups kept apart, the groups open now (without the one over
    /// them), and the items counted over them not yet taken.
    max_groups: Vec<usize>,
    open: Vec<usize>,
    capped: Vec<u64>,
    firing: usize,
    resend_every: Duration,
}

impl Engine {
    /// Firing alerts are re-sent every `resend_every` and valid for three times that, so an
    /// alert whose hub went away resolves in Alertmanager on its own. A rule without its own
    /// `max_groups` keeps `default_max_groups` groups apart.
    pub fn new(rules: Vec<Rule>, resend_every: Duration, default_max_groups: usize) -> Self {
        let max_groups = rules
            .iter()
            .map(|r| r.max_groups.unwrap_or(default_max_groups))
            .collect();
        Self {
            open: vec![0; rules.len()],
            capped: vec![0; rules.len()],
            rules,
            groups: HashMap::new(),
            max_groups,
            firing: 0,
            resend_every,
        }
    }

    /// Alerts firing now.
    pub fn firing(&self) -> usize {
        self.firing
    }

    /// The alerts firing now, at `wall`.
    pub fn firing_alerts(&self, wall: SystemTime) -> Vec<Alert> {
        let valid_until = wall + 3 * self.resend_every;
        self.groups
            .iter()
            .filter(|(_, group)| group.firing.is_some())
            .map(|((index, _), group)| alert(&self.rules[*index], group, wall, valid_until))
            .collect()
    }

    /// The rule at `index`.
    pub fn rule(&self, index: usize) -> &Rule {
        &self.rules[index]
    }

    /// The most groups the rule at `index` keeps apart.
    pub fn max_groups(&self, index: usize) -> usize {
        self.max_groups[index]
    }

    /// The rules that counted items over their `max_groups` since the last call.
    pub fn take_capped(&mut self) -> Vec<Capped> {
        self.capped
            .iter_mut()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(rule, n)| Capped {
                rule,
                items: std::mem::take(n),
            })
            .collect()
    }

    /// Counts a committed batch of events or warnings received at `now`; returns the
    /// alerts that start firing.
    pub fn observe<T: Observed>(
        &mut self,
        items: &[T],
        now: Instant,
        wall: SystemTime,
    ) -> Vec<Alert> {
        let mut started = Vec::new();
        for item in items {
            for (index, rule) in self.rules.iter().enumerate() {
                if !rule.counts(item) {
                    continue;
                }
                let values: Vec<String> = rule.group_by.iter().map(|k| item.value_of(k)).collect();
                let mut key = (index, Some(values));
                if self.open[index] >= self.max_groups[index] && !self.groups.contains_key(&key) {
                    key = (index, None);
                    self.capped[index] += 1;
                }
                let group = match self.groups.entry(key) {
                    Entry::Occupied(group) => group.into_mut(),
                    Entry::Vacant(place) => {
                        let values = match &place.key().1 {
                            Some(values) => {
                                self.open[index] += 1;
                                values.clone()
                            }
                            None => vec![OVER_MAX_GROUPS.to_owned(); rule.group_by.len()],
                        };
                        place.insert(Group {
                            labels: labels(rule, &values),
                            recent: VecDeque::with_capacity(rule.threshold.min(64)),
                            last_seen: now,
                            last_process: String::new(),
                            firing: None,
                        })
                    }
                };
                // Only the last `threshold` occurrences matter.
                let occurrences = item.occurrences().min(rule.threshold as u64);
                for _ in 0..occurrences {
                    if group.recent.len() == rule.threshold {
                        group.recent.pop_front();
                    }
                    group.recent.push_back(now);
                }
                group.last_seen = now;
                group.last_process = item.process();
                let full = group.recent.len() == rule.threshold;
                if group.firing.is_none()
                    && full
                    && group
                        .recent
                        .front()
                        .is_some_and(|t| now - *t <= rule.window)
                {
                    group.firing = Some(Firing {
                        starts_at: wall,
                        last_sent: now,
                    });
                    self.firing += 1;
                    started.push(alert(rule, group, wall, wall + 3 * self.resend_every));
                }
            }
        }
        started
    }

    /// Called regularly: resolves alerts whose window passed without a failure (and forgets
    /// quiet groups), and returns those to re-send.
    pub fn tick(&mut self, now: Instant, wall: SystemTime) -> Vec<Alert> {
        let mut due = Vec::new();
        let resend = self.resend_every;
        let (mut resolved, mut forgotten) = (0, Vec::new());
        self.groups.retain(|(index, values), group| {
            let rule = &self.rules[*index];
            let quiet = now.saturating_duration_since(group.last_seen) >= rule.window;
            let keep = match group.firing.as_mut() {
                Some(_) if quiet => {
                    due.push(alert(rule, group, wall, wall));
                    resolved += 1;
                    false
                }
                Some(f) if now.saturating_duration_since(f.last_sent) >= resend => {
                    f.last_sent = now;
                    due.push(alert(rule, group, wall, wall + 3 * resend));
                    true
                }
                Some(_) => true,
                None => !quiet,
            };
            if !keep && values.is_some() {
                forgotten.push(*index);
            }
            keep
        });
        self.firing -= resolved;
        for index in forgotten {
            self.open[index] -= 1;
        }
        due
    }
}

/// alertname, severity, the group-by values, and errno: the event's when grouped by
/// errno, else the rule's errnos joined with `|` (`any` for a rule of every errno).
fn labels(rule: &Rule, values: &[String]) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([
        ("alertname".to_owned(), rule.name.clone()),
        ("severity".to_owned(), rule.severity.clone()),
    ]);
    for (key, value) in rule.group_by.iter().zip(values) {
        labels.insert((*key).to_owned(), value.clone());
    }
    if rule.kind != KIND_EVENT {
        labels.insert("kind".into(), rule.kind.clone());
    } else if !rule.group_by.contains(&"errno") {
        let errnos: Vec<String> = rule
            .errnos
            .iter()
            .map(|e| tapper_names::errno_name(*e))
            .collect();
        let errno = if errnos.is_empty() {
            "any".to_owned()
        } else {
            errnos.join("|")
        };
        labels.insert("errno".into(), errno);
    }
    labels
}

fn alert(rule: &Rule, group: &Group, wall: SystemTime, ends_at: SystemTime) -> Alert {
    let firing = ends_at > wall;
    let scope: Vec<String> = rule
        .group_by
        .iter()
        .map(|k| format!("{k}={}", group.labels[*k]))
        .collect();
    let scope = if scope.is_empty() {
        "across all nodes".to_owned()
    } else {
        scope.join(" ")
    };
    let window = humantime::format_duration(rule.window);
    let (summary, last) = if rule.kind == KIND_EVENT {
        let errno = group.labels.get("errno").map_or("any", String::as_str);
        let what = format!("failed socket() calls ({errno})");
        (what, "last failure")
    } else {
        (format!("{} warnings", rule.kind), "last warning")
    };
    let summary = format!(
        "{} or more {summary} within {window}, {scope}",
        rule.threshold
    );
    Alert {
        key: format!("{:?}", group.labels),
        labels: group.labels.clone(),
        annotations: BTreeMap::from([
            ("summary".to_owned(), summary),
            (
                "process".to_owned(),
                format!("{last}: {}", group.last_process),
            ),
        ]),
        starts_at: group.firing.as_ref().map_or(wall, |f| f.starts_at),
        ends_at,
        firing,
    }
}

#[cfg(test)]
mod tests {
    use tapper_proto::v1::Event;

    use super::*;

    fn rule(threshold: usize, window_s: u64, group_by: Vec<&'static str>) -> Rule {
        Rule {
            name: "Burst".into(),
            errnos: vec![24, 23],
            threshold,
            window: Duration::from_secs(window_s),
            group_by,
            severity: "critical".into(),
            kind: KIND_EVENT.into(),
            max_groups: None,
        }
    }

    fn ev(node: &str, errno: i32, pid: u32) -> Event {
        Event {
            node: node.into(),
            errno,
            pid,
            comm: "server".into(),
            exe: "/usr/bin/server".into(),
            ..Default::default()
        }
    }

    #[test]
    fn an_event_counts_the_failures_it_stands_for() {
        let mut e = Engine::new(
            vec![rule(3, 10, vec!["node"])],
            Duration::from_secs(60),
            1000,
        );
        let t0 = Instant::now();
        let wall = SystemTime::UNIX_EPOCH;
        let one = ev("a", 24, 1);
        assert!(e.observe(&[one], t0, wall).is_empty());
        let storm = Event {
            suppressed: 1,
            ..ev("a", 24, 1)
        };
        assert_eq!(
            e.observe(&[storm], t0, wall).len(),
            1,
            "1 + 2 failures reach 3"
        );
    }

    #[test]
    fn fires_at_the_threshold_within_the_window_once_per_group() {
        let mut e = Engine::new(
            vec![rule(3, 10, vec!["node"])],
            Duration::from_secs(60),
            1000,
        );
        let t0 = Instant::now();
        let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert!(
            e.observe(&[ev("a", 24, 1), ev("a", 97, 1), ev("b", 24, 1)], t0, wall)
                .is_empty()
        );
        // Two more for node a, but the first one left the window: 2 within 10 s.
        assert!(
            e.observe(&[ev("a", 23, 2)], t0 + Duration::from_secs(11), wall)
                .is_empty()
        );
        assert!(
            e.observe(&[ev("a", 24, 2)], t0 + Duration::from_secs(12), wall)
                .is_empty()
        );
        let fired = e.observe(&[ev("a", 24, 7)], t0 + Duration::from_secs(13), wall);
        assert_eq!(fired.len(), 1);
        let a = &fired[0];
        assert!(a.firing);
        assert_eq!(
            a.labels,
            BTreeMap::from([
                ("alertname".into(), "Burst".into()),
                ("severity".into(), "critical".into()),
                ("node".into(), "a".into()),
                ("errno".into(), "EMFILE|ENFILE".into()),
            ])
        );
        assert_eq!(
            a.annotations["summary"],
            "3 or more failed socket() calls (EMFILE|ENFILE) within 10s, node=a"
        );
        assert!(
            a.annotations["process"]
                .starts_with("last failure: pid 7 (server) /usr/bin/server: EMFILE")
        );
        assert_eq!(a.ends_at, wall + Duration::from_secs(180));
        // Still firing: more failures start nothing new.
        assert!(
            e.observe(&[ev("a", 24, 8)], t0 + Duration::from_secs(14), wall)
                .is_empty()
        );
        assert_eq!(e.firing(), 1);
    }

    #[test]
    fn re_sends_while_firing_and_resolves_after_a_quiet_window() {
        let mut e = Engine::new(vec![rule(2, 10, vec![])], Duration::from_secs(3), 1000);
        let t0 = Instant::now();
        let wall = SystemTime::UNIX_EPOCH;
        let fired = e.observe(&[ev("a", 24, 1), ev("b", 23, 2)], t0, wall);
        assert_eq!(fired.len(), 1, "no group_by: one alert across nodes");
        assert!(e.tick(t0 + Duration::from_secs(2), wall).is_empty());
        let resent = e.tick(t0 + Duration::from_secs(4), wall + Duration::from_secs(4));
        assert_eq!(resent.len(), 1);
        assert!(resent[0].firing);
        assert_eq!(resent[0].key, fired[0].key);
        assert_eq!(resent[0].starts_at, wall, "a re-send keeps the start");
        e.observe(&[ev("a", 24, 1)], t0 + Duration::from_secs(5), wall);
        // 10 s after the last failure (at 5 s), not after the first.
        assert!(
            e.tick(t0 + Duration::from_secs(14), wall)
                .iter()
                .all(|a| a.firing)
        );
        let resolved = e.tick(t0 + Duration::from_secs(15), wall + Duration::from_secs(15));
        assert_eq!(resolved.len(), 1);
        assert!(!resolved[0].firing);
        assert_eq!(resolved[0].ends_at, wall + Duration::from_secs(15));
        assert_eq!(e.firing(), 0);
        assert!(e.groups.is_empty(), "a resolved group is forgotten");
    }

    #[test]
    fn grouping_by_errno_labels_each_errno_and_quiet_groups_are_forgotten() {
        let mut e = Engine::new(
            vec![rule(1, 10, vec!["node", "errno"])],
            Duration::from_secs(60),
            1000,
        );
        let t0 = Instant::now();
        let fired = e.observe(
            &[ev("a", 24, 1), ev("a", 23, 1)],
            t0,
            SystemTime::UNIX_EPOCH,
        );
        let errnos: Vec<_> = fired.iter().map(|a| a.labels["errno"].as_str()).collect();
        assert_eq!(errnos, ["EMFILE", "ENFILE"]);
        let mut quiet = Engine::new(
            vec![rule(5, 10, vec!["node"])],
            Duration::from_secs(60),
            1000,
        );
        quiet.observe(&[ev("a", 24, 1)], t0, SystemTime::UNIX_EPOCH);
        quiet.tick(t0 + Duration::from_secs(10), SystemTime::UNIX_EPOCH);
        assert!(quiet.groups.is_empty());
    }

    #[test]
    fn groups_over_max_groups_count_together_until_groups_are_forgotten() {
        let by_comm = Rule {
            max_groups: Some(2),
            ..rule(1, 10, vec!["comm"])
        };
        let mut e = Engine::new(vec![by_comm], Duration::from_secs(60), 1000);
        let (t0, wall) = (Instant::now(), SystemTime::UNIX_EPOCH);
        let renamed = |comm: &str| Event {
            comm: comm.into(),
            ..ev("a", 24, 1)
        };
        let batch: Vec<Event> = ["p1", "p2", "p3", "p4", "p1", "p5"]
            .iter()
            .map(|c| renamed(c))
            .collect();
        let fired = e.observe(&batch, t0, wall);
        let comms: Vec<_> = fired.iter().map(|a| a.labels["comm"].as_str()).collect();
        assert_eq!(comms, ["p1", "p2", OVER_MAX_GROUPS]);
        assert_eq!(e.firing(), 3);
        assert_eq!(e.take_capped(), vec![Capped { rule: 0, items: 3 }]);
        assert_eq!(e.take_capped(), vec![], "taken");
        // Once the groups are forgotten, new names get groups of their own again.
        let resolved = e.tick(t0 + Duration::from_secs(10), wall);
        assert_eq!(resolved.len(), 3);
        assert_eq!(e.firing(), 0);
        let fired = e.observe(&[renamed("p6")], t0 + Duration::from_secs(11), wall);
        assert_eq!(fired[0].labels["comm"], "p6");
        assert!(e.take_capped().is_empty());
    }

    #[test]
    fn a_rule_on_a_warning_kind_fires_on_those_warnings_only() {
        use tapper_proto::v1::Warning;

        let on_nofile = Rule {
            errnos: vec![],
            kind: "nofile".into(),
            ..rule(1, 60, vec!["node"])
        };
        let mut engine = Engine::new(vec![on_nofile], Duration::from_secs(60), 1000);
        let (now, wall) = (Instant::now(), SystemTime::now());
        assert!(
            engine.observe(&[ev("a", 24, 1)], now, wall).is_empty(),
            "events do not count"
        );
        let file_max = Warning {
            node: "a".into(),
            kind: "file-max".into(),
            ..Default::default()
        };
        assert!(
            engine.observe(&[file_max], now, wall).is_empty(),
            "another kind"
        );
        let nofile = Warning {
            node: "a".into(),
            kind: "nofile".into(),
            pid: Some(42),
            comm: "server".into(),
            used: 205,
            limit: 256,
            ratio: 205.0 / 256.0,
            eta_seconds: Some(1.2),
            ..Default::default()
        };
        let fired = engine.observe(&[nofile], now, wall);
        assert_eq!(fired.len(), 1);
        let alert = &fired[0];
        assert_eq!(alert.labels["kind"], "nofile");
        assert_eq!(alert.labels["node"], "a");
        assert!(!alert.labels.contains_key("errno"));
        assert!(alert.annotations["summary"].starts_with("1 or more nofile warnings within 1m"));
        assert!(
            alert.annotations["process"].starts_with("last warning: pid 42 (server): 205 of 256"),
            "{:?}",
            alert.annotations
        );
    }
}
