//! Command-line flags, `MAITRED_*` environment variables and an optional TOML file into a
//! [`Config`], all from the one settings table ([`SETTINGS`]).
//! Owns turning arguments, variables and the file into a [`Config`] or a [`Command`]. Never starts
//! a server or prints by itself (the caller does).
//!
//! Precedence: flag > environment > config file > default. Waitress's flag names are accepted
//! where the meaning matches (see [`ALIASES`]); `--host`/`--port` combine into `--listen`.

use crate::config::{Config, Setting, SETTINGS};

/// What the command line asks for.
#[derive(Debug)]
#[non_exhaustive]
#[allow(clippy::large_enum_variant)] // built once per process
pub enum Command {
    /// Run with this configuration; `args` are the positional arguments.
    Run {
        /// The validated configuration.
        config: Config,
        /// Arguments that are not flags, in order.
        args: Vec<String>,
    },
    /// Validate the configuration (and what the positional arguments name), then exit.
    CheckConfig {
        /// The validated configuration.
        config: Config,
        /// Arguments that are not flags, in order.
        args: Vec<String>,
    },
    /// Print the effective settings as a TOML file, then exit.
    PrintConfig {
        /// The validated configuration.
        config: Config,
        /// Arguments that are not flags, in order.
        args: Vec<String>,
    },
    /// Probe a running server's URL and exit 0 on a 2xx answer.
    Healthcheck {
        /// The `http://` URL to probe.
        url: String,
    },
    /// Print the help text.
    Help,
    /// Print the version.
    Version,
}

/// Waitress flag names (and Gunicorn's for the TLS files) and the settings they mean here.
pub const ALIASES: &[(&str, &str)] = &[
    ("channel-timeout", "keepalive_timeout"),
    ("max-request-body-size", "max_body_size"),
    ("max-request-header-size", "max_headers_size"),
    ("ident", "server_header"),
    ("trusted-proxy", "trusted_proxies"),
    ("trusted-proxy-count", "trusted_proxy_hops"),
    // Gunicorn's names for the TLS files.
    ("certfile", "tls_cert"),
    ("keyfile", "tls_key"),
    ("ca-certs", "tls_client_ca"),
];

/// Flags that are not settings.
const ACTIONS: &str = "  --config <FILE>
      env MAITRED_CONFIG; a TOML file of settings (keys as in --print-config).
  --check-config
      Validate the settings (and the served directory), print one line and exit.
  --print-config
      Print the effective settings as a TOML file and exit.
  --healthcheck <URL>
      GET an http:// URL; exit 0 on a 2xx answer, 1 otherwise (for container health checks).
  --host <HOST>, --port <PORT>
      Waitress's way of saying --listen HOST:PORT (host defaults to 127.0.0.1, port to 8080).
  -h, --help
      Print this help.
  -V, --version
      Print the version.
";

/// The setting a flag, keyword or file key names: a setting name (with `-` or `_`) or one of
/// Waitress's names in [`ALIASES`] (either spelling too).
pub(crate) fn lookup(name: &str) -> Option<&'static Setting> {
    let dashed = name.replace('_', "-");
    let canonical = ALIASES.iter().find(|(alias, _)| *alias == dashed).map_or(name, |(_, setting)| setting);
    Config::setting(canonical)
}

/// Waitress's `host` and `port` as one `listen` address: the host defaults to 127.0.0.1, the
/// port to 8080, and an IPv6 host gets its brackets.
pub(crate) fn host_port(host: Option<String>, port: Option<String>) -> String {
    let host = host.unwrap_or_else(|| "127.0.0.1".into());
    let port = port.unwrap_or_else(|| "8080".into());
    let host = if host.contains(':') && !host.starts_with('[') { format!("[{host}]") } else { host };
    format!("{host}:{port}")
}

/// Which settings a front end takes: `None` for one it takes, else the reason it refuses it
/// (a sentence fragment such as "does not apply to WSGI applications: ...").
pub type Refusal<'a> = &'a dyn Fn(&Setting) -> Option<String>;

/// Every setting is taken (the `maitred` binary, [`crate::launch()`]).
pub fn accept_all(_: &Setting) -> Option<String> {
    None
}

/// Flags that take a value but are not settings.
const ACTION_FLAGS_WITH_VALUE: &[&str] = &["config", "healthcheck", "host", "port"];

/// Flags that take no value and are not settings.
const ACTION_FLAGS_ALONE: &[&str] = &["help", "version", "check-config", "print-config"];

/// "unknown flag --NAME", with the nearest known flag (setting, alias or action) when one is
/// within a few edits.
fn unknown_flag(name: &str) -> String {
    let settings = SETTINGS.iter().map(|s| s.name.replace('_', "-"));
    let others = ALIASES.iter().map(|(alias, _)| *alias).chain(ACTION_FLAGS_WITH_VALUE.iter().copied());
    let known = settings.chain(others.chain(ACTION_FLAGS_ALONE.iter().copied()).map(str::to_string));
    let nearest = known
        .map(|flag| (strsim::osa_distance(name, &flag), flag))
        .filter(|(distance, flag)| *distance <= 3 && *distance * 3 <= flag.len())
        .min();
    match nearest {
        Some((_, flag)) => format!("unknown flag --{name} (did you mean --{flag}? see --help)"),
        None => format!("unknown flag --{name} (see --help)"),
    }
}

fn is_bool(setting: &Setting) -> bool {
    setting.unit == "true/false"
}

/// Parses `args` (without the program name) over the environment read through `env`.
/// Errors are one sentence naming the flag, variable, file or setting at fault.
pub fn parse<I, F>(args: I, env: F) -> Result<Command, String>
where
    I: IntoIterator<Item = String>,
    F: Fn(&str) -> Option<String>,
{
    parse_from(Config::default(), &accept_all, args, env)
}

/// Like [`parse`], over `defaults` instead of `Config::default()` (the WSGI front end runs 4
/// threads unless told otherwise, for example), for a front end that takes only some settings:
/// a flag or a `--config` file key for a setting `refuse` refuses is an error naming it and
/// the reason; its `MAITRED_*` variable is not applied (the caller may warn about it).
pub fn parse_from<I, F>(defaults: Config, refuse: Refusal<'_>, args: I, env: F) -> Result<Command, String>
where
    I: IntoIterator<Item = String>,
    F: Fn(&str) -> Option<String>,
{
    enum Action {
        Run,
        Check,
        Print,
    }
    let mut action = Action::Run;
    let mut flags: Vec<(&'static Setting, String)> = Vec::new();
    let mut listen: Vec<String> = Vec::new();
    let mut host: Option<String> = None;
    let mut port: Option<String> = None;
    let mut config_file: Option<String> = None;
    let mut positional = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "-V" | "--version" => return Ok(Command::Version),
            "--check-config" => {
                action = Action::Check;
                continue;
            }
            "--print-config" => {
                action = Action::Print;
                continue;
            }
            "--" => {
                positional.extend(args.by_ref());
                break;
            }
            _ => {}
        }
        let Some(flag) = arg.strip_prefix("--") else {
            if arg.starts_with('-') && arg.len() > 1 {
                return Err(format!("unknown flag {arg} (see --help)"));
            }
            positional.push(arg);
            continue;
        };
        let (name, inline) = match flag.split_once('=') {
            Some((name, value)) => (name, Some(value.to_string())),
            None => (flag, None),
        };
        let setting = lookup(name);
        if setting.is_none() && !ACTION_FLAGS_WITH_VALUE.contains(&name) {
            return Err(unknown_flag(name));
        }
        if let Some(reason) = setting.and_then(refuse) {
            return Err(format!("--{name} {reason}"));
        }
        let value = match (inline, setting) {
            (Some(v), _) => v,
            // A boolean flag alone means true; `--flag=false` turns it off.
            (None, Some(s)) if is_bool(s) => "true".to_string(),
            (None, _) => args.next().ok_or_else(|| format!("--{name} needs a value"))?,
        };
        match (name, setting) {
            ("config", _) => config_file = Some(value),
            ("healthcheck", _) => return Ok(Command::Healthcheck { url: value }),
            ("host", _) => host = Some(value),
            ("port", _) => port = Some(value),
            (_, Some(s)) if s.name == "listen" => listen.push(value),
            (_, Some(s)) => flags.push((s, value)),
            (_, None) => return Err(unknown_flag(name)),
        }
    }

    let mut config = defaults;
    if let Some(path) = config_file.or_else(|| env("MAITRED_CONFIG")) {
        load_file(&mut config, &path, refuse)?;
    }
    for setting in SETTINGS.iter().filter(|s| refuse(s).is_none()) {
        let var = setting.env_var();
        if let Some(value) = env(&var) {
            setting.apply(&mut config, &value).map_err(|e| format!("{e} (from {var})"))?;
        }
    }
    if host.is_some() || port.is_some() {
        if !listen.is_empty() {
            return Err("conflicting settings: give --listen or --host/--port, not both".into());
        }
        listen.push(host_port(host, port));
    }
    if !listen.is_empty() {
        let setting = Config::setting("listen").expect("listen is a setting");
        setting.apply(&mut config, &listen.join(",")).map_err(|e| e.0)?;
    }
    for (setting, value) in flags {
        setting.apply(&mut config, &value).map_err(|e| e.0)?;
    }
    config.validate().map_err(|e| e.to_string())?;
    Ok(match action {
        Action::Run => Command::Run { config, args: positional },
        Action::Check => Command::CheckConfig { config, args: positional },
        Action::Print => Command::PrintConfig { config, args: positional },
    })
}

/// Applies the settings in the TOML file at `path` to `config`. Keys are setting names
/// (`max_body_size` or `max-body-size`); values are strings, numbers, booleans, or arrays
/// (for `listen`). Unknown keys and sections are refused, and so are keys for settings
/// `refuse` refuses (see [`parse_from`]), naming the file, the key and the reason.
pub fn load_file(config: &mut Config, path: &str, refuse: Refusal<'_>) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read config file {path}: {e}"))?;
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let line = e.span().map_or(0, |span| text[..span.start.min(text.len())].matches('\n').count() + 1);
        format!("config file {path}, line {line}: {}", e.message().trim())
    })?;
    for (key, value) in &table {
        let setting = lookup(key).ok_or_else(|| format!("config file {path}: unknown setting {key:?}"))?;
        if let Some(reason) = refuse(setting) {
            return Err(format!("config file {path}: setting {key:?} {reason}"));
        }
        let text = toml_text(value).ok_or_else(|| format!("config file {path}: {key} must be a plain value"))?;
        setting.apply(config, &text).map_err(|e| format!("config file {path}: {e}"))?;
    }
    Ok(())
}

fn toml_text(value: &toml::Value) -> Option<String> {
    Some(match value {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        toml::Value::Array(items) => {
            let parts: Option<Vec<String>> =
                items.iter().map(|v| if v.is_array() || v.is_table() { None } else { toml_text(v) }).collect();
            parts?.join(",")
        }
        toml::Value::Datetime(_) | toml::Value::Table(_) => return None,
    })
}

/// The effective settings of `config` as a TOML file that `--config` reads back.
pub fn print_config(config: &Config) -> String {
    print_config_of(config, &accept_all)
}

/// [`print_config`] without the settings `refuse` refuses, so the file reads back with the
/// same front end.
pub fn print_config_of(config: &Config, refuse: Refusal<'_>) -> String {
    let mut text = String::from("# maitred effective settings (flag > environment > config file > default)\n");
    for setting in SETTINGS.iter().filter(|s| refuse(s).is_none()) {
        let value = setting.show(config);
        let bare = (is_bool(setting) || value.parse::<u64>().is_ok()) && !value.is_empty();
        if bare {
            text.push_str(&format!("{} = {value}\n", setting.name));
        } else {
            let escaped = value.replace('\\', "\\\\").replace('"', "\\\"");
            text.push_str(&format!("{} = \"{escaped}\"\n", setting.name));
        }
    }
    text
}

/// The help text: usage, every setting `refuse` takes with its flag, environment variable,
/// unit and default (from [`SETTINGS`]), then the other flags and the Waitress aliases (those
/// for settings it takes). The defaults shown are the values in `defaults`, or, with `None`,
/// the documented defaults (a rule such as "2 × CPUs" where the value depends on the machine).
pub fn help(program: &str, about: &str, usage_args: &str, defaults: Option<&Config>, refuse: Refusal<'_>) -> String {
    let mut text = format!(
        "{about}\n\nUsage: {program} [OPTIONS]{usage_args}\n\nSettings (flag > environment > config file > default):\n"
    );
    for setting in SETTINGS.iter().filter(|s| refuse(s).is_none()) {
        let value = if is_bool(setting) { String::new() } else { format!(" <{}>", setting.unit) };
        text.push_str(&format!(
            "  {}{value}\n      env {}, default {}\n",
            setting.flag(),
            setting.env_var(),
            defaults.map_or_else(|| setting.default_text(), |config| setting.show(config))
        ));
        text.push_str(&format!("      {}\n", setting.summary()));
    }
    text.push_str("\nOther flags:\n");
    text.push_str(ACTIONS);
    text.push_str("\nWaitress (and Gunicorn TLS) flag names accepted:\n");
    for (alias, setting) in ALIASES {
        if Config::setting(setting).is_some_and(|s| refuse(s).is_none()) {
            text.push_str(&format!("  --{alias} = --{}\n", setting.replace('_', "-")));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn run(args: &[&str], env: &[(&str, &str)]) -> Result<Config, String> {
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let cmd =
            parse(args.iter().map(|s| s.to_string()), |k| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))?;
        match cmd {
            Command::Run { config, .. } => Ok(config),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn flag_beats_environment_beats_default() {
        let c = run(&["--threads", "3"], &[("MAITRED_THREADS", "7"), ("MAITRED_HEADER_TIMEOUT", "2s")]).unwrap();
        assert_eq!(c.threads, 3);
        assert_eq!(c.header_timeout, Duration::from_secs(2));
        assert_eq!(c.keepalive_timeout, Config::default().keepalive_timeout);
    }

    #[test]
    fn listen_repeats_and_accepts_equals_form() {
        let c = run(&["--listen=127.0.0.1:1", "--listen", "[::1]:2"], &[]).unwrap();
        assert_eq!(c.listen.len(), 2);
    }

    #[test]
    fn waitress_names_work() {
        let c = run(&["--host", "0.0.0.0", "--port", "9000", "--channel-timeout", "60", "--ident", "x"], &[]).unwrap();
        assert_eq!(c.listen, vec!["0.0.0.0:9000".parse().unwrap()]);
        assert_eq!(c.keepalive_timeout, Duration::from_secs(60));
        assert_eq!(c.server_header, "x");
        let c = run(&["--listen", "*:8081", "--max-request-body-size", "1048576"], &[]).unwrap();
        assert_eq!(c.listen, vec!["0.0.0.0:8081".parse().unwrap()]);
        assert_eq!(c.max_body_size, 1 << 20);
        assert!(run(&["--listen", "127.0.0.1:1", "--port", "2"], &[]).unwrap_err().contains("conflicting"));
    }

    #[test]
    fn boolean_flags_stand_alone() {
        let c = run(&["--directory-listing", "--follow-symlinks=false"], &[]).unwrap();
        assert!(c.directory_listing);
        assert!(!c.follow_symlinks);
    }

    #[test]
    fn errors_name_the_culprit() {
        assert!(run(&["--bogus", "1"], &[]).unwrap_err().contains("--bogus"));
        assert!(run(&["--threads"], &[]).unwrap_err().contains("--threads"));
        assert!(run(&["--threads", "x"], &[]).unwrap_err().contains("threads"));
        assert!(run(&[], &[("MAITRED_THREADS", "x")]).unwrap_err().contains("MAITRED_THREADS"));
        assert!(run(&["--threads", "0"], &[]).unwrap_err().contains("threads"));
    }

    #[test]
    fn an_unknown_flag_is_named_as_unknown_wherever_it_stands() {
        for args in
            [&["--directory-listng"][..], &["--directory-listng", "x"], &["--threads", "2", "--directory-listng"]]
        {
            let e = run(args, &[]).unwrap_err();
            assert_eq!(e, "unknown flag --directory-listng (did you mean --directory-listing? see --help)", "{args:?}");
        }
        assert_eq!(run(&["--thread"], &[]).unwrap_err(), "unknown flag --thread (did you mean --threads? see --help)");
        assert_eq!(run(&["--prot", "1"], &[]).unwrap_err(), "unknown flag --prot (did you mean --port? see --help)");
        assert_eq!(run(&["--zzzzzzzz"], &[]).unwrap_err(), "unknown flag --zzzzzzzz (see --help)");
        assert!(!run(&["--zzzzzzzz"], &[]).unwrap_err().contains("needs a value"));
    }

    #[test]
    fn help_lists_every_setting_with_its_variable() {
        let text = help("maitred", "about", "", None, &accept_all);
        for s in SETTINGS {
            assert!(text.contains(&s.flag()) && text.contains(&s.env_var()), "{}", s.name);
        }
    }

    /// A front end that takes only some settings refuses the others alike as flags and as
    /// config-file keys, and does not apply their variables.
    #[test]
    fn a_refused_setting_is_refused_as_flag_and_as_file_key() {
        let refuse = |s: &Setting| (s.name == "root").then(|| "does not apply here".to_string());
        let env_none = |_: &str| None;
        let parse =
            |args: &[&str]| parse_from(Config::default(), &refuse, args.iter().map(|s| s.to_string()), env_none);
        assert_eq!(parse(&["--root", "/x"]).unwrap_err(), "--root does not apply here");
        assert_eq!(parse(&["--root=/x"]).unwrap_err(), "--root does not apply here");
        assert!(matches!(parse(&["--server-header", "--root"]), Ok(Command::Run { .. })));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.toml");
        std::fs::write(&path, "threads = 3\nroot = \"/srv\"\n").unwrap();
        let p = path.to_str().unwrap();
        let e = parse(&["--config", p]).unwrap_err();
        assert_eq!(e, format!("config file {p}: setting \"root\" does not apply here"));
        let env_root = |k: &str| (k == "MAITRED_ROOT").then(|| "/elsewhere".to_string());
        let c = parse_from(Config::default(), &refuse, Vec::new(), env_root).unwrap();
        let Command::Run { config, .. } = c else { panic!() };
        assert_eq!(config.root, Config::default().root, "a refused setting's variable is not applied");
        assert!(!print_config_of(&config, &refuse).contains("root ="));
        let text = help("m", "about", "", Some(&Config { threads: 4, ..Config::default() }), &refuse);
        assert!(
            !text.contains("--root") && text.contains("--threads <threads>\n      env MAITRED_THREADS, default 4\n")
        );
    }

    #[test]
    fn printed_config_reads_back_as_the_same_config() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("maitred.toml");
        let original = Config {
            threads: 3,
            listen: vec!["127.0.0.1:1".parse().unwrap(), "[::1]:2".parse().unwrap()],
            server_header: "a \"quoted\" \\ name".into(),
            directory_listing: true,
            header_timeout: Duration::from_millis(1500),
            ..Config::default()
        };
        std::fs::write(&path, print_config(&original)).unwrap();
        let mut loaded = Config::default();
        load_file(&mut loaded, path.to_str().unwrap(), &accept_all).unwrap();
        assert_eq!(loaded, original);
    }

    #[test]
    fn config_file_errors_name_file_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        let path_text = path.to_str().unwrap().to_string();
        for (content, needle) in [
            ("bogus = 1\n", "unknown setting \"bogus\""),
            ("threads = \"many\"\n", "threads"),
            ("threads = 2\nthreads = 3\n", "line 2"),
            ("[section]\nthreads = 2\n", "section"),
        ] {
            std::fs::write(&path, content).unwrap();
            let e = load_file(&mut Config::default(), &path_text, &accept_all).unwrap_err();
            assert!(e.contains(&path_text) && e.contains(needle), "{content:?}: {e}");
            assert!(!e.contains('\n'), "one line: {e}");
        }
        assert!(load_file(&mut Config::default(), "/no/such/file.toml", &accept_all)
            .unwrap_err()
            .contains("cannot read"));
    }

    #[test]
    fn file_is_below_environment_and_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.toml");
        std::fs::write(&path, "threads = 5\nbacklog = 100\nmax_headers = 50\n").unwrap();
        let p = path.to_str().unwrap();
        let c = run(&["--config", p, "--threads", "6"], &[("MAITRED_BACKLOG", "200")]).unwrap();
        assert_eq!((c.threads, c.backlog, c.max_headers), (6, 200, 50));
        let c = run(&[], &[("MAITRED_CONFIG", p)]).unwrap();
        assert_eq!(c.threads, 5);
    }
}
