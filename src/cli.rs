//! Command-line flags and `MAITRED_*` environment variables into a [`Config`], from the one
//! settings table ([`SETTINGS`]). Precedence: flag > environment > default.

use crate::config::{Config, SETTINGS};

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
    /// Print the help text.
    Help,
    /// Print the version.
    Version,
}

/// Parses `args` (without the program name) over the environment read through `env`.
/// Errors are one sentence naming the flag, variable or setting at fault.
pub fn parse<I, F>(args: I, env: F) -> Result<Command, String>
where
    I: IntoIterator<Item = String>,
    F: Fn(&str) -> Option<String>,
{
    let mut config = Config::default();
    for setting in SETTINGS {
        let var = setting.env_var();
        if let Some(value) = env(&var) {
            setting.apply(&mut config, &value).map_err(|e| format!("{e} (from {var})"))?;
        }
    }
    let mut positional = Vec::new();
    let mut listen: Vec<String> = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "-V" | "--version" => return Ok(Command::Version),
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
        let setting = Config::setting(name).ok_or_else(|| format!("unknown flag --{name} (see --help)"))?;
        let value = match inline {
            Some(v) => v,
            None => args.next().ok_or_else(|| format!("--{name} needs a value"))?,
        };
        if setting.name == "listen" {
            listen.push(value);
        } else {
            setting.apply(&mut config, &value)?;
        }
    }
    if !listen.is_empty() {
        let setting = Config::setting("listen").expect("listen is a setting");
        setting.apply(&mut config, &listen.join(","))?;
    }
    config.validate().map_err(|e| e.to_string())?;
    Ok(Command::Run { config, args: positional })
}

/// The help text: usage, then every setting with its flag, environment variable, unit and
/// default, generated from [`SETTINGS`].
pub fn help(program: &str, about: &str) -> String {
    let mut text = format!("{about}\n\nUsage: {program} [OPTIONS]\n\nOptions (flag > environment > default):\n");
    for setting in SETTINGS {
        text.push_str(&format!(
            "  {} <{}>\n      env {}, default {}\n",
            setting.flag(),
            setting.unit,
            setting.env_var(),
            setting.default_text()
        ));
        text.push_str(&format!("      {}\n", setting.summary()));
    }
    text.push_str("  -h, --help\n      Print this help.\n  -V, --version\n      Print the version.\n");
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
    fn errors_name_the_culprit() {
        assert!(run(&["--bogus", "1"], &[]).unwrap_err().contains("--bogus"));
        assert!(run(&["--threads"], &[]).unwrap_err().contains("--threads"));
        assert!(run(&["--threads", "x"], &[]).unwrap_err().contains("threads"));
        assert!(run(&[], &[("MAITRED_THREADS", "x")]).unwrap_err().contains("MAITRED_THREADS"));
        assert!(run(&["--threads", "0"], &[]).unwrap_err().contains("threads"));
    }

    #[test]
    fn help_lists_every_setting_with_its_variable() {
        let text = help("maitred", "about");
        for s in SETTINGS {
            assert!(text.contains(&s.flag()) && text.contains(&s.env_var()), "{}", s.name);
        }
    }
}
