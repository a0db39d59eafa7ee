//! The `completion SHELL` and hidden `man` subcommands every binary has: its shell
//! completions (`clap_complete`) and its man page (`clap_mangen`), from its own clap command.

use std::io::Write;

use clap::{Arg, ArgMatches, Command, builder::PossibleValuesParser};
use clap_complete::Shell;

const COMPLETION: &str = "completion";
const MAN: &str = "man";

/// `cmd` with the two subcommands.
pub fn add(cmd: Command) -> Command {
    cmd.subcommand(
        Command::new(COMPLETION)
            .about("Print the shell completion script for bash, zsh or fish, and exit")
            .arg(
                Arg::new("shell")
                    .required(true)
                    .value_parser(PossibleValuesParser::new(["bash", "zsh", "fish"])),
            ),
    )
    .subcommand(
        Command::new(MAN)
            .about("Print the man page (roff), and exit")
            .hide(true),
    )
}

/// Prints what `completion` or `man` asks for and exits; returns when neither was given.
pub fn answer(cmd: &mut Command, matches: &ArgMatches) {
    let mut out = Vec::new();
    match matches.subcommand() {
        Some((COMPLETION, sub)) => {
            // A shell the parser refused (on a first look that ignores errors) is left to
            // the strict parse to report.
            let Some(shell) = sub
                .get_one::<String>("shell")
                .and_then(|s| s.parse::<Shell>().ok())
            else {
                return;
            };
            let name = cmd.get_name().to_owned();
            clap_complete::generate(shell, cmd, name, &mut out);
        }
        Some((MAN, _)) => {
            clap_mangen::Man::new(cmd.clone())
                .render(&mut out)
                .expect("rendering into memory");
        }
        _ => return,
    }
    let written = std::io::stdout().lock().write_all(&out);
    std::process::exit(i32::from(written.is_err()))
}
