use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::Parser;

use super::*;

/// A command with the kinds of flags the binaries have.
#[derive(Debug, Parser, PartialEq)]
#[command(name = "demo")]
struct Demo {
    #[arg(short, long, action = ArgAction::Count)]
    verbose: u8,
    #[arg(long, default_value = "127.0.0.1:50051")]
    listen: SocketAddr,
    #[arg(long, value_delimiter = ',')]
    hub: Vec<String>,
    #[arg(long, requires = "hub")]
    tls_ca: Option<PathBuf>,
    #[arg(long)]
    stacks: bool,
    #[arg(long, default_value = "5s", value_parser = humantime_like)]
    interval: Duration,
    #[arg(long, default_value_t = 0.8)]
    ratio: f64,
}

fn humantime_like(s: &str) -> Result<Duration, String> {
    let secs = s.strip_suffix('s').ok_or("not a duration (e.g. 5s)")?;
    secs.parse()
        .map(Duration::from_secs)
        .map_err(|_| "not a duration (e.g. 5s)".into())
}

struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("cli-config-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn file(&self, text: &str) -> String {
        let path = self.0.join("demo.toml");
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn parse(args: &[&str]) -> Result<Parsed<Demo>, Error> {
    try_parse_with_config_file(std::iter::once("demo").chain(args.iter().copied()))
}

fn run(args: &[&str]) -> Demo {
    match parse(args) {
        Ok(Parsed::Run(demo)) => demo,
        other => panic!("{args:?}: {other:?}"),
    }
}

fn file_error(args: &[&str]) -> String {
    match parse(args) {
        Err(Error::File(e)) => e.to_string(),
        other => panic!("{args:?}: {other:?}"),
    }
}

#[test]
fn the_file_sets_flags_and_the_command_line_overrides_them() {
    let dir = Dir::new("override");
    let path = dir.file(
        "listen = \"127.0.0.1:7070\"\nhub = [\"a:1\", \"b:2\"]\ntls-ca = \"ca.pem\"\n\
         stacks = true\nverbose = 2\nratio = 0.5\n",
    );
    let demo = run(&["--config", &path]);
    assert_eq!(demo.listen, "127.0.0.1:7070".parse().unwrap());
    assert_eq!(demo.hub, ["a:1", "b:2"]);
    assert_eq!(demo.tls_ca, Some(PathBuf::from("ca.pem")));
    assert!(demo.stacks);
    assert_eq!((demo.verbose, demo.ratio), (2, 0.5));
    assert_eq!(demo.interval, Duration::from_secs(5), "a default stays");
    let demo = run(&["--listen", "127.0.0.1:9", "--config", &path, "--hub", "c:3"]);
    assert_eq!(demo.listen, "127.0.0.1:9".parse().unwrap());
    assert_eq!(
        demo.hub,
        ["c:3"],
        "a list on the command line replaces the file's"
    );
    // The file gives --hub, which the command line's --tls-ca needs.
    let path = dir.file("hub = \"a:1\"\n");
    assert_eq!(
        run(&["--tls-ca", "x.pem", "--config", &path]).tls_ca,
        Some("x.pem".into())
    );
}

#[test]
fn bad_keys_and_values_name_the_key_and_the_file() {
    let dir = Dir::new("bad");
    let path = dir.file("lisen = \"127.0.0.1:7070\"\n");
    let e = file_error(&["--config", &path]);
    assert_eq!(
        e,
        format!(
            "--config {path}: unknown key \"lisen\": did you mean \"listen\"? keys are the long \
             flags of --help, without the dashes"
        )
    );
    let path = dir.file("stacks = \"yes\"\n");
    assert_eq!(
        file_error(&["--config", &path]),
        format!("--config {path}: key \"stacks\" takes true or false, not a string")
    );
    let path = dir.file("listen = [1]\n");
    assert!(
        file_error(&["--config", &path])
            .ends_with("key \"listen\" takes a string or a number, not a list")
    );
    let path = dir.file("listen = 7070\n");
    let e = file_error(&["--config", &path]);
    assert!(
        e.starts_with(&format!(
            "--config {path}: key \"listen\": invalid value '7070'"
        )),
        "{e}"
    );
    assert!(!e.contains('\n'), "{e}");
    let path = dir.file("interval = \"soon\"\n");
    assert!(file_error(&["--config", &path]).contains("not a duration (e.g. 5s)"));
    let path = dir.file("tls-ca = \"ca.pem\"\n");
    let e = file_error(&["--config", &path]);
    assert!(e.contains(&path) && e.contains("--hub"), "{e}");
    let path = dir.file("config = \"other.toml\"\n");
    let e = file_error(&["--config", &path]);
    assert!(e.contains("unknown key \"config\": keys are"), "{e}");
    let path = dir.file("listen = \n");
    assert!(file_error(&["--config", &path]).starts_with(&format!("--config {path}:1: not TOML")));
    let e = file_error(&["--config", "/nonexistent/demo.toml"]);
    assert!(
        e.starts_with("--config /nonexistent/demo.toml: cannot read it"),
        "{e}"
    );
    // A value the command line overrides is still checked for its type, but not parsed.
    let path = dir.file("listen = \"nowhere\"\n");
    assert_eq!(
        run(&["--config", &path, "--listen", "127.0.0.1:1"])
            .listen
            .port(),
        1
    );
    // A bad flag of the command line keeps clap's own report.
    assert!(matches!(
        parse(&["--config", &path, "--listen", "x"]),
        Err(Error::Clap(_))
    ));
}

#[test]
fn print_config_reads_back_to_the_same_options() {
    let dir = Dir::new("print");
    let path = dir.file("hub = [\"a:1\"]\nstacks = true\nratio = 0.25\ninterval = \"7s\"\n");
    let printed = match parse(&[
        "--config",
        &path,
        "--listen",
        "127.0.0.1:1",
        "--print-config",
    ]) {
        Ok(Parsed::Printed(text)) => text,
        other => panic!("{other:?}"),
    };
    assert!(
        printed.contains("\nlisten = \"127.0.0.1:1\"\n"),
        "{printed}"
    );
    assert!(printed.contains("\nhub = [\"a:1\"]\n"), "{printed}");
    assert!(printed.contains("\n# tls-ca: not set\n"), "{printed}");
    assert!(printed.contains("\n# verbose = 0\n"), "{printed}");
    assert!(printed.contains("\nratio = 0.25\n"), "{printed}");
    let again = dir.file(&printed);
    assert_eq!(
        run(&["--config", &again]),
        run(&["--config", &path, "--listen", "127.0.0.1:1"])
    );
    let defaults = match parse(&["--print-config"]) {
        Ok(Parsed::Printed(text)) => text,
        other => panic!("{other:?}"),
    };
    let path = dir.file(&defaults);
    assert_eq!(run(&["--config", &path]), run(&[]));
}

#[test]
fn an_unknown_shell_is_refused_by_clap() {
    match parse(&["completion", "tcsh"]) {
        Err(Error::Clap(e)) => {
            assert_eq!(e.kind(), clap::error::ErrorKind::InvalidValue);
            assert!(
                e.to_string().contains("[possible values: bash, zsh, fish]"),
                "{e}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        parse(&["--stacks", "completion", "bash"]),
        Err(Error::Clap(_))
    ));
}
