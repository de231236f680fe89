//! docs/configuration.md from clap's own command model: every command of every binary,
//! each flag with the environment variable that sets it, its default and its help. Nothing
//! is read back from rendered `--help`, so wrapping and terminal width play no part.
//!
//! Two notes are taken from the help text itself, because clap has no field for them:
//! `[env: A, then B]` where a setting falls back to a second variable (the arg hides
//! clap's own env note), and `[default: ...]` where the default is computed at run time.

use std::collections::BTreeMap;

use clap::{Arg, Command};
use orderflow_runtime::client_properties::mask_url;

/// One flag of one command, as the reference shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// `--name`.
    pub flag: String,
    /// The environment variable(s): `NAME`, or a note such as `A, then B`.
    pub env: Option<String>,
    /// The default as clap shows it (secrets in URLs masked), or the help's own note.
    pub default: Option<String>,
    /// The accepted values, when clap lists them with their help.
    pub values: Vec<String>,
    /// The help text on one line, without the notes above.
    pub description: String,
}

/// A command and its settings, e.g. `orderflow topics apply`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandSettings {
    /// The full command, binary first.
    pub name: String,
    /// Its flags in `--help` order.
    pub settings: Vec<Setting>,
}

/// The commands of `binary` worth a section: the binary itself, every leaf, and every
/// command with flags of its own besides the global ones (`orderflow lag` beside
/// `orderflow lag serve`). `help` is left out.
pub fn commands_of(mut binary: Command) -> Vec<CommandSettings> {
    // Building propagates the global flags (--log-level, ...) into the subcommands.
    binary.build();
    let mut out = Vec::new();
    walk(&binary, binary.get_name(), true, &mut out);
    out
}

fn walk(command: &Command, name: &str, root: bool, out: &mut Vec<CommandSettings>) {
    let leaf = !command.has_subcommands();
    let own_flags = command
        .get_arguments()
        .any(|arg| !arg.is_global_set() && shown(arg) && !is_builtin(arg));
    if root || leaf || own_flags {
        out.push(CommandSettings {
            name: name.to_owned(),
            settings: settings(command),
        });
    }
    for sub in command
        .get_subcommands()
        .filter(|sub| sub.get_name() != "help")
    {
        walk(sub, &format!("{name} {}", sub.get_name()), false, out);
    }
}

/// Shown in `--help` (the long help these docs follow).
fn shown(arg: &Arg) -> bool {
    !arg.is_hide_set() && !arg.is_hide_long_help_set() && arg.get_long().is_some()
}

fn is_builtin(arg: &Arg) -> bool {
    matches!(arg.get_id().as_str(), "help" | "version")
}

/// The flags of one command in the order `--help` shows them: clap sorts by display
/// order, then by the short flag or the long name.
fn settings(command: &Command) -> Vec<Setting> {
    let mut args: Vec<&Arg> = command
        .get_arguments()
        .filter(|arg| shown(arg) && !is_builtin(arg))
        .collect();
    args.sort_by_key(|arg| sort_key(arg));
    args.into_iter().map(setting).collect()
}

fn sort_key(arg: &Arg) -> (usize, String) {
    let key = match (arg.get_short(), arg.get_long()) {
        (Some(short), _) => {
            let mut key = short.to_ascii_lowercase().to_string();
            key.push(if short.is_ascii_lowercase() { '0' } else { '1' });
            key
        }
        (None, Some(long)) => long.to_owned(),
        (None, None) => format!("{{{}", arg.get_id()),
    };
    (arg.get_display_order(), key)
}

fn setting(arg: &Arg) -> Setting {
    let help = arg
        .get_long_help()
        .or_else(|| arg.get_help())
        .map(|text| text.to_string())
        .unwrap_or_default();
    let mut text = help.split_whitespace().collect::<Vec<_>>().join(" ");
    let env_note = take_note(&mut text, "[env: ");
    let default_note = take_note(&mut text, "[default: ");
    let env = env_note.or_else(|| {
        arg.get_env()
            .filter(|_| !arg.is_hide_env_set())
            .map(|name| name.to_string_lossy().into_owned())
    });
    let default = default_note.or_else(|| clap_default(arg));
    let possible: Vec<_> = arg
        .get_possible_values()
        .into_iter()
        .filter(|value| !value.is_hide_set())
        .collect();
    // clap lists the values under the help only when they have help of their own.
    let values = if possible.iter().any(|value| value.get_help().is_some()) {
        possible
            .iter()
            .map(|value| value.get_name().to_owned())
            .collect()
    } else {
        Vec::new()
    };
    Setting {
        flag: format!("--{}", arg.get_long().unwrap_or_default()),
        env,
        default,
        values,
        description: text.trim().to_owned(),
    }
}

/// The default as clap's help shows it (values joined by spaces, quoted when they hold
/// a space), with any secret in a URL masked as the binaries mask it in logs.
fn clap_default(arg: &Arg) -> Option<String> {
    let values = arg.get_default_values();
    if arg.is_hide_default_value_set() || values.is_empty() || !arg.get_action().takes_values() {
        return None;
    }
    let shown: Vec<String> = values
        .iter()
        .map(|value| {
            let value = value.to_string_lossy();
            if value.contains(char::is_whitespace) {
                format!("{value:?}")
            } else {
                value.into_owned()
            }
        })
        .collect();
    Some(mask_url(&shown.join(" ")).into_owned())
}

/// Removes every `[env: ...]` (or other `opening`) note from `text`; returns the first
/// one's content, without the `=` clap puts after a variable's name.
fn take_note(text: &mut String, opening: &str) -> Option<String> {
    let mut first = None;
    while let Some(start) = text.find(opening) {
        let Some(length) = text[start..].find(']') else {
            break;
        };
        let inner = text[start + opening.len()..start + length].to_owned();
        first.get_or_insert(inner.trim_end_matches('=').to_owned());
        text.replace_range(start..=start + length, "");
    }
    first
}

/// A row of the variable index: variable, flag, default ("" when none).
type EnvKey = (String, String, String);

/// The whole page.
pub fn render(commands: &[CommandSettings]) -> String {
    let mut lines: Vec<String> = [
        "# Configuration reference",
        "",
        "Generated by `scripts/gen-cli-reference.sh` from the binaries' clap command definitions",
        "(`cargo run -p orderflow-repo-tests --bin config-reference`); do not edit by hand.",
        "`crates/repo-tests/tests/docs_current.rs` fails when this file or",
        "[cli-reference.md](cli-reference.md) (the full help text) is out of date.",
        "",
        "Every setting is a command-line flag; most can also be set by an environment variable.",
        "A flag wins over its variable, the variable over the default. Durations take a unit",
        "(`500ms`, `30s`, `10m`, `24h`).",
        "",
        "## Environment variables",
        "",
        "| Variable | Flag | Default | Commands |",
        "|---|---|---|---|",
    ]
    .map(str::to_owned)
    .to_vec();

    // `A, then B` indexes both variables.
    let mut by_env: BTreeMap<EnvKey, (Option<String>, Vec<&str>)> = BTreeMap::new();
    for command in commands {
        for setting in &command.settings {
            for env in variables(setting.env.as_deref().unwrap_or_default()) {
                let key = (
                    env.to_owned(),
                    setting.flag.clone(),
                    setting.default.clone().unwrap_or_default(),
                );
                let entry = by_env
                    .entry(key)
                    .or_insert_with(|| (setting.default.clone(), Vec::new()));
                entry.1.push(&command.name);
            }
        }
    }
    for ((env, flag, _), (default, users)) in &by_env {
        let users: Vec<String> = users.iter().map(|name| format!("`{name}`")).collect();
        lines.push(format!(
            "| `{}` | `{flag}` | {} | {} |",
            cell(env),
            cell(&shown_default(default.as_deref())),
            users.join(", ")
        ));
    }

    for command in commands {
        lines.extend([
            String::new(),
            format!("## `{}`", command.name),
            String::new(),
        ]);
        if command.settings.is_empty() {
            lines.push("No settings of its own.".to_owned());
            continue;
        }
        lines.push("| Flag | Environment | Default | Description |".to_owned());
        lines.push("|---|---|---|---|".to_owned());
        for setting in &command.settings {
            let mut description = setting.description.clone();
            if !setting.values.is_empty() {
                if !description.ends_with(['.', ')']) {
                    description.push('.');
                }
                let values: Vec<String> = setting.values.iter().map(|v| format!("`{v}`")).collect();
                description.push_str(&format!(" One of: {}.", values.join(", ")));
            }
            let env = match &setting.env {
                Some(env) => quote_variables(env),
                None => "–".to_owned(),
            };
            lines.push(format!(
                "| `{}` | {} | {} | {} |",
                setting.flag,
                cell(&env),
                cell(&shown_default(setting.default.as_deref())),
                cell(&description)
            ));
        }
    }
    lines.join("\n") + "\n"
}

fn shown_default(default: Option<&str>) -> String {
    match default {
        None => "–".to_owned(),
        Some("") => "`\"\"`".to_owned(),
        Some(value) => format!("`{value}`"),
    }
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

/// The variable names in an env note: runs of capitals, digits and `_` that start with a
/// capital and are at least two characters long.
fn variables(note: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let bytes = note.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let is_name = |b: u8| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_';
        if bytes[i].is_ascii_uppercase() && bytes.get(i + 1).is_some_and(|b| is_name(*b)) {
            let start = i;
            while i < bytes.len() && is_name(bytes[i]) {
                i += 1;
            }
            out.push(&note[start..i]);
        } else {
            i += 1;
        }
    }
    out
}

/// The note with each variable name in backticks.
fn quote_variables(note: &str) -> String {
    let mut out = String::new();
    let mut rest = note;
    for name in variables(note) {
        let at = rest.find(name).expect("names come from the note, in order");
        out.push_str(&rest[..at]);
        out.push_str(&format!("`{name}`"));
        rest = &rest[at + name.len()..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use clap::{Arg, ArgAction, Command};

    use super::*;

    fn demo() -> Command {
        Command::new("demo")
            .arg(
                Arg::new("log_level")
                    .long("log-level")
                    .env("LOG_LEVEL")
                    .default_value("info")
                    .global(true)
                    .help("Log filter."),
            )
            .subcommand(
                Command::new("run")
                    .arg(
                        Arg::new("database_url")
                            .long("database-url")
                            .env("DEMO_DATABASE_URL")
                            .hide_env(true)
                            .default_value("postgres://demo:hunter2@localhost/demo")
                            .help("Database [env: DEMO_DATABASE_URL, then DATABASE_URL]."),
                    )
                    .arg(
                        Arg::new("fast")
                            .long("fast")
                            .env("DEMO_FAST")
                            .action(ArgAction::SetTrue)
                            .help("Go fast"),
                    )
                    .arg(Arg::new("secret").long("secret").hide(true)),
            )
    }

    #[test]
    fn settings_come_from_the_model_with_notes_and_masked_defaults() {
        let commands = commands_of(demo());
        let names: Vec<&str> = commands.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["demo", "demo run"]);
        let run = &commands[1].settings;
        let flags: Vec<&str> = run.iter().map(|s| s.flag.as_str()).collect();
        // The order `demo run --help` prints, the global flag included.
        let mut built = demo();
        built.build();
        let help = built
            .find_subcommand_mut("run")
            .expect("run is a subcommand")
            .render_long_help()
            .to_string();
        let help_flags: Vec<&str> = help
            .split_whitespace()
            .filter(|word| word.starts_with("--") && *word != "--help")
            .map(|word| word.trim_end_matches(|c: char| !c.is_ascii_alphanumeric()))
            .collect();
        assert_eq!(flags, help_flags, "{help}");
        assert_eq!(flags, ["--database-url", "--log-level", "--fast"]);
        let setting = |flag: &str| run.iter().find(|s| s.flag == flag).unwrap();
        let database = setting("--database-url");
        assert_eq!(
            database.env.as_deref(),
            Some("DEMO_DATABASE_URL, then DATABASE_URL")
        );
        assert_eq!(
            database.default.as_deref(),
            Some("postgres://demo:***@localhost/demo")
        );
        assert_eq!(database.description, "Database .");
        // A switch has no default worth showing.
        assert_eq!(setting("--fast").default, None);
        assert_eq!(setting("--log-level").env.as_deref(), Some("LOG_LEVEL"));
    }

    #[test]
    fn the_page_indexes_each_variable_of_a_fallback_note() {
        let page = render(&commands_of(demo()));
        assert!(!page.contains("hunter2"), "{page}");
        assert!(
            page.contains("| `DATABASE_URL` | `--database-url` |"),
            "{page}"
        );
        assert!(
            page.contains("| `DEMO_DATABASE_URL` | `--database-url` |"),
            "{page}"
        );
        assert!(
            page.contains("| `LOG_LEVEL` | `--log-level` | `info` | `demo`, `demo run` |"),
            "{page}"
        );
        assert!(
            page.contains("| `--database-url` | `DEMO_DATABASE_URL`, then `DATABASE_URL` |"),
            "{page}"
        );
    }
}
