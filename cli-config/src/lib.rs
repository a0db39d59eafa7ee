//! The command line shared by the binaries: `completion bash|zsh|fish` and a hidden `man`
//! subcommand for all of them, and for the tapper and the hub `--config FILE` (TOML keys named
//! after the long flags, fed through clap itself) and `--print-config`.

mod extras;
mod file;
mod print;

use std::ffi::OsString;

use clap::{Arg, ArgAction, ArgMatches, Command, FromArgMatches, parser::ValueSource};

pub use file::FileError;

/// Parses the process's command line into `T`, answering `completion` and `man` (and
/// `--help`, `--version`, bad flags) and exiting; hub-client's way.
pub fn parse<T: clap::Parser>() -> T {
    let mut cmd = extras::add(T::command());
    let matches = cmd
        .try_get_matches_from_mut(std::env::args_os())
        .unwrap_or_else(|e| e.exit());
    extras::answer(&mut cmd, &matches);
    T::from_arg_matches(&matches).unwrap_or_else(|e| e.format(&mut cmd).exit())
}

/// Like [`parse`], and takes `--config FILE` and `--print-config`: the tapper's and the hub's
/// way. Prints a one-line error and exits with status 2 when the file is bad.
pub fn parse_with_config_file<T: clap::Parser>() -> T {
    match try_parse_with_config_file::<T>(std::env::args_os()) {
        Ok(Parsed::Run(cli)) => cli,
        Ok(Parsed::Printed(text)) => {
            print!("{text}");
            std::process::exit(0)
        }
        Err(err) => err.exit(),
    }
}

/// What a command line asks for once the file is read.
#[derive(Debug)]
pub enum Parsed<T> {
    /// Run with these options.
    Run(T),
    /// `--print-config`: the effective configuration, as TOML that `--config` takes.
    Printed(String),
}

/// Why a command line with a config file was refused.
#[derive(Debug)]
pub enum Error {
    /// A flag of the command line, `--help` or `--version`: clap's own report.
    Clap(Box<clap::Error>),
    /// The config file (or one of its keys) is bad; one line, naming the file.
    File(FileError),
}

impl Error {
    /// Prints the report (clap's, or the file's line after the binary's name) and exits.
    pub fn exit(self) -> ! {
        match self {
            Self::Clap(e) => e.exit(),
            Self::File(e) => {
                let program = std::env::args_os().next().unwrap_or_default();
                let name = std::path::Path::new(&program)
                    .file_name()
                    .unwrap_or_default();
                eprintln!("{}: error: {e}", name.to_string_lossy());
                std::process::exit(2)
            }
        }
    }
}

impl From<clap::Error> for Error {
    fn from(e: clap::Error) -> Self {
        Self::Clap(Box::new(e))
    }
}

/// The id of `--config`.
const CONFIG: &str = "config";
/// The id of `--print-config`.
const PRINT_CONFIG: &str = "print_config";

/// Parses `args` (the program's name first) with a config file: the file's keys become flags
/// placed before those of the command line, except the keys the command line sets itself.
/// `completion` and `man` print and exit the process.
pub fn try_parse_with_config_file<T: clap::Parser>(
    args: impl IntoIterator<Item = impl Into<OsString> + Clone>,
) -> Result<Parsed<T>, Error> {
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    // The subcommands take none of the command's flags.
    let mut cmd =
        with_config_flags(extras::add(T::command())).args_conflicts_with_subcommands(true);
    // A first look, errors aside (a flag may need one that only the file gives): which
    // file, and which flags the command line sets.
    let given = cmd
        .clone()
        .ignore_errors(true)
        .try_get_matches_from(&args)?;
    extras::answer(&mut cmd, &given);
    let mut full = args.clone();
    let path = given.get_one::<std::path::PathBuf>(CONFIG).cloned();
    if let Some(path) = &path {
        let table = file::read(path).map_err(Error::File)?;
        let on_command_line =
            |arg: &Arg| given.value_source(arg.get_id().as_str()) == Some(ValueSource::CommandLine);
        let from_file = file::to_flags(&cmd, path, &table, on_command_line).map_err(Error::File)?;
        full.splice(1..1, from_file.flags);
        let matches = cmd
            .try_get_matches_from_mut(&full)
            .map_err(|e| file::blame(e, path, &from_file.keys))?;
        return finish(&mut cmd, matches);
    }
    let matches = cmd.try_get_matches_from_mut(&full)?;
    finish(&mut cmd, matches)
}

fn finish<T: FromArgMatches>(cmd: &mut Command, matches: ArgMatches) -> Result<Parsed<T>, Error> {
    if matches.get_flag(PRINT_CONFIG) {
        return Ok(Parsed::Printed(print::effective(cmd, &matches)));
    }
    T::from_arg_matches(&matches)
        .map(Parsed::Run)
        .map_err(|e| e.format(cmd).into())
}

/// `cmd` with `--config FILE` and `--print-config`, under a heading of their own.
fn with_config_flags(cmd: Command) -> Command {
    cmd.next_help_heading("Config file")
        .arg(
            Arg::new(CONFIG)
                .long("config")
                .value_name("FILE")
                .value_parser(clap::value_parser!(std::path::PathBuf))
                .help(
                    "Read flags from this TOML file: each key is a long flag's name (e.g. \
                     listen = \"127.0.0.1:7070\", tls-ca = \"ca.pem\", stacks = true, a list \
                     for a repeatable flag); flags on the command line override it",
                ),
        )
        .arg(
            Arg::new(PRINT_CONFIG)
                .long("print-config")
                .action(ArgAction::SetTrue)
                .help(
                    "Print the effective configuration as TOML that --config takes (defaults \
                     commented out), and exit",
                ),
        )
}

/// The flags a config file may set: every long flag but the config file's own, help and
/// version.
fn settable(cmd: &Command) -> impl Iterator<Item = &Arg> {
    cmd.get_arguments().filter(|arg| {
        arg.get_long().is_some()
            && ![CONFIG, PRINT_CONFIG].contains(&arg.get_id().as_str())
            && !matches!(
                arg.get_action(),
                ArgAction::Help | ArgAction::HelpShort | ArgAction::HelpLong | ArgAction::Version
            )
    })
}

#[cfg(test)]
mod tests;
