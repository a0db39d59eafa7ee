//! `--print-config`: the effective configuration as TOML that `--config` takes; what a file,
//! the command line or the environment set as keys, the defaults as comments, by heading.

use clap::{Arg, ArgAction, ArgMatches, Command, parser::ValueSource};
use toml::Value;

use crate::settable;

/// Every settable flag of `cmd` with its value in `matches`.
pub fn effective(cmd: &Command, matches: &ArgMatches) -> String {
    let mut out = format!(
        "# {} configuration: read it with --config FILE. Keys are the long flags; \
         commented-out keys show the defaults.\n",
        cmd.get_name()
    );
    let mut heading: Option<Option<&str>> = None;
    for arg in settable(cmd) {
        if heading != Some(arg.get_help_heading()) {
            heading = Some(arg.get_help_heading());
            out.push_str(&format!(
                "\n# {}\n",
                arg.get_help_heading().unwrap_or("General")
            ));
        }
        out.push_str(&line(arg, matches));
        out.push('\n');
    }
    out
}

/// `key = value`, commented out when the value is the default (or there is none).
fn line(arg: &Arg, matches: &ArgMatches) -> String {
    let id = arg.get_id().as_str();
    let key = arg.get_long().unwrap_or(id);
    let set = !matches!(
        matches.value_source(id),
        None | Some(ValueSource::DefaultValue)
    );
    let value = match arg.get_action() {
        // A switch (or an "off" switch) is true when it was given.
        ArgAction::SetTrue | ArgAction::SetFalse => Some(Value::Boolean(set)),
        ArgAction::Count => Some(Value::Integer(matches.get_count(id).into())),
        ArgAction::Append => Some(Value::Array(raw_values(matches, id).unwrap_or_default())),
        _ => raw_values(matches, id).and_then(|v| v.into_iter().next()),
    };
    match value {
        Some(value) if set => format!("{key} = {value}"),
        Some(value) => format!("# {key} = {value}"),
        None => format!("# {key}: not set"),
    }
}

/// The values as given (or defaulted), numbers as TOML numbers when they read back the same.
fn raw_values(matches: &ArgMatches, id: &str) -> Option<Vec<Value>> {
    let raw = matches.get_raw(id)?;
    Some(
        raw.map(|v| {
            let text = v.to_string_lossy();
            match (text.parse::<i64>(), text.parse::<f64>()) {
                (Ok(n), _) if n.to_string() == text => Value::Integer(n),
                (_, Ok(x)) if x.is_finite() && x.to_string() == text => Value::Float(x),
                _ => Value::String(text.into_owned()),
            }
        })
        .collect(),
    )
}
