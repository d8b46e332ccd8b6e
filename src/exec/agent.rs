//! The agent under test: which command runs, with what environment and files, and how its
//! placeholders expand for one run.
//!
//! An agent comes from (highest first) the command line (`-- COMMAND ARGS…`), a profile
//! (`--agent opencode`, or `--agent path/to/profile.toml`), or the scenario's `[agent]` table.
//! A profile is a small TOML file: the `[agent]` keys plus `name`, `description`, `apis` (the
//! wire APIs the agent can speak), `program_env` (a variable naming the program's path) and
//! `setup` (commands run in the working directory first). Bundled profiles live in `agents/`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use indexmap::IndexMap;
use serde::Deserialize;

use crate::provider::Api;
use crate::scenario::{AgentTable, Scenario};

/// Profiles shipped with tapeloop: name → file text.
pub const BUNDLED_PROFILES: &[(&str, &str)] = &[
    ("opencode", include_str!("../../agents/opencode.toml")),
    ("codex", include_str!("../../agents/codex.toml")),
];

/// Default time an agent gets for one run.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// Why no agent could be set up.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("{0}: no agent to run: give `-- COMMAND ARGS…`, `--agent PROFILE`, or an [agent] table with `command` in the scenario")]
    Missing(PathBuf),
    #[error(
        "unknown agent profile `{0}`: bundled profiles are {1}; or give the path of a profile file"
    )]
    UnknownProfile(String, String),
    #[error("{path}: {message}")]
    Profile { path: String, message: String },
}

/// A profile file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    program_env: Option<String>,
    #[serde(default)]
    apis: Vec<Api>,
    command: Vec<String>,
    #[serde(default)]
    setup: Vec<Vec<String>>,
    #[serde(default)]
    timeout: Option<String>,
    #[serde(default)]
    stop_exit_codes: Vec<i32>,
    #[serde(default)]
    env: IndexMap<String, String>,
    #[serde(default)]
    files: IndexMap<String, String>,
    #[serde(default)]
    processor: Option<ProcessorEquivalent>,
}

/// A profile's `[processor]`: the built-in processor's settings that model this agent, used by
/// `--vs-processor` in place of the scenario's policy (e.g. opencode: its own detector, retry
/// preset and doom action, compaction off as `OPENCODE_DISABLE_AUTOCOMPACT` sets it).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessorEquivalent {
    #[serde(default)]
    pub doom_loop: Option<Vec<crate::processor::config::DetectorSpec>>,
    #[serde(default)]
    pub doom_action: Option<crate::processor::config::DoomAction>,
    #[serde(default)]
    pub retry: Option<crate::processor::config::RetryPreset>,
    #[serde(default)]
    pub compaction: Option<crate::processor::config::CompactionMode>,
}

/// A resolved agent: everything needed to run it, placeholders not yet expanded.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Agent {
    /// The profile's name, `command` for a command line, `scenario` for an `[agent]` table.
    pub name: String,
    pub command: Vec<String>,
    pub env: IndexMap<String, String>,
    pub files: IndexMap<String, String>,
    pub setup: Vec<Vec<String>>,
    pub timeout: Duration,
    pub stop_exit_codes: Vec<i32>,
    /// The wire APIs the agent speaks; empty = any.
    pub apis: Vec<Api>,
    pub description: String,
    /// The processor settings that model this agent (`--vs-processor`).
    pub processor: Option<ProcessorEquivalent>,
}

impl Agent {
    /// An agent given as a command line.
    pub fn command(command: Vec<String>) -> Agent {
        Agent {
            name: "command".into(),
            command,
            timeout: DEFAULT_TIMEOUT,
            ..Agent::default()
        }
    }

    /// A bundled profile by name, or a profile file by path.
    pub fn profile(name_or_path: &str) -> Result<Agent, AgentError> {
        let (origin, text) = match BUNDLED_PROFILES.iter().find(|(n, _)| *n == name_or_path) {
            Some((n, text)) => (format!("bundled profile `{n}`"), (*text).to_string()),
            None if Path::new(name_or_path).is_file() => {
                let text =
                    std::fs::read_to_string(name_or_path).map_err(|e| AgentError::Profile {
                        path: name_or_path.into(),
                        message: e.to_string(),
                    })?;
                (name_or_path.to_string(), text)
            }
            None => {
                let names: Vec<&str> = BUNDLED_PROFILES.iter().map(|(n, _)| *n).collect();
                return Err(AgentError::UnknownProfile(
                    name_or_path.into(),
                    names.join(", "),
                ));
            }
        };
        let bad = |message: String| AgentError::Profile {
            path: origin.clone(),
            message,
        };
        let p: ProfileFile = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
        if p.command.is_empty() {
            return Err(bad("`command` must name a program".into()));
        }
        let mut command = p.command;
        if let Some(var) = &p.program_env {
            if let Some(program) = std::env::var_os(var).filter(|v| !v.is_empty()) {
                command[0] = program.to_string_lossy().into_owned();
            }
        }
        let timeout = match &p.timeout {
            None => DEFAULT_TIMEOUT,
            Some(t) => crate::http::parse_duration_ms(t)
                .filter(|ms| *ms > 0)
                .map(Duration::from_millis)
                .ok_or_else(|| {
                    bad(format!(
                        "`timeout` = {t:?}: write a duration such as \"90s\""
                    ))
                })?,
        };
        Ok(Agent {
            name: p.name,
            command,
            env: p.env,
            files: p.files,
            setup: p.setup,
            timeout,
            stop_exit_codes: p.stop_exit_codes,
            apis: p.apis,
            description: p.description,
            processor: p.processor,
        })
    }

    /// The scenario's `[agent]` table as an agent.
    pub fn from_table(t: &AgentTable) -> Agent {
        Agent {
            name: "scenario".into(),
            command: t.command.clone(),
            env: t.env.clone(),
            files: t.files.clone(),
            setup: Vec::new(),
            timeout: t.timeout.unwrap_or(DEFAULT_TIMEOUT),
            stop_exit_codes: t.stop_exit_codes.clone(),
            ..Agent::default()
        }
    }

    /// The agent for `scenario`: `cli` (command line or profile) wins over the scenario's
    /// `[agent]`; the scenario's env, files, timeout and stop codes still apply under a
    /// command line (it only replaces the command).
    pub fn resolve(cli: Option<&Agent>, scenario: &Scenario) -> Result<Agent, AgentError> {
        let table = scenario
            .agent
            .as_ref()
            .filter(|t| !t.command.is_empty() || cli.is_some());
        match (cli, table) {
            (Some(c), Some(t)) if c.name == "command" => {
                let mut a = Agent::from_table(t);
                a.name = c.name.clone();
                a.command = c.command.clone();
                Ok(a)
            }
            (Some(c), _) => Ok(c.clone()),
            (None, Some(t)) => Ok(Agent::from_table(t)),
            (None, None) => Err(AgentError::Missing(scenario.path.clone())),
        }
    }
}

/// The values `{name}` placeholders expand to in one run.
#[derive(Debug, Clone, Default)]
pub struct Placeholders {
    pub values: IndexMap<&'static str, String>,
}

impl Placeholders {
    /// Every placeholder for a run (names fixed in docs/formats.md "tapeloop exec").
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        base_url: &str,
        prompt: &str,
        model: &str,
        api: Api,
        workdir: &Path,
        scenario: &Path,
        limits: (u64, u64),
        costs: (f64, f64, f64),
    ) -> Placeholders {
        let mut values = IndexMap::new();
        values.insert("base_url", base_url.to_string());
        values.insert("openai_base_url", format!("{base_url}/v1"));
        values.insert("prompt", prompt.to_string());
        values.insert("model", model.to_string());
        values.insert("api", api.as_str().to_string());
        values.insert("workdir", workdir.display().to_string());
        values.insert("scenario", scenario.display().to_string());
        values.insert("limit_context", limits.0.to_string());
        values.insert("limit_output", limits.1.to_string());
        values.insert("cost_input", costs.0.to_string());
        values.insert("cost_output", costs.1.to_string());
        values.insert("cost_cache_read", costs.2.to_string());
        Placeholders { values }
    }

    /// `s` with every known `{name}` replaced; any other brace text (JSON in a file) is kept.
    pub fn expand(&self, s: &str) -> String {
        self.expand_with(s, |_, v| v.to_string())
    }

    /// One command-line argument. An argument that is exactly `{prompt}` becomes the prompt
    /// as one argument, whatever it holds; inside a longer argument (`sh -c "agent {prompt}"`)
    /// the prompt is single-quoted for a POSIX shell, so it stays one word there too.
    pub fn expand_arg(&self, arg: &str) -> String {
        if arg == "{prompt}" {
            return self.values["prompt"].clone();
        }
        self.expand_with(arg, |name, v| {
            if name == "prompt" {
                shell_quote(v)
            } else {
                v.to_string()
            }
        })
    }

    fn expand_with(&self, s: &str, f: impl Fn(&str, &str) -> String) -> String {
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(i) = rest.find('{') {
            out.push_str(&rest[..i]);
            let after = &rest[i + 1..];
            let name_len = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            let name = &after[..name_len];
            match (after[name_len..].starts_with('}'), self.values.get(name)) {
                (true, Some(v)) => {
                    out.push_str(&f(name, v));
                    rest = &after[name_len + 1..];
                }
                _ => {
                    out.push('{');
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        out
    }
}

/// `s` as one POSIX shell word.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ph() -> Placeholders {
        Placeholders::new(
            "http://127.0.0.1:9",
            "it's \"quoted\"; rm -rf /",
            "gpt-4o",
            Api::OpenAiChat,
            Path::new("/tmp/w"),
            Path::new("scenarios/x.toml"),
            (128000, 8192),
            (2.5, 10.0, 1.25),
        )
    }

    #[test]
    fn placeholders_expand_and_json_braces_survive() {
        let p = ph();
        assert_eq!(p.expand("{openai_base_url}/x"), "http://127.0.0.1:9/v1/x");
        assert_eq!(
            p.expand(r#"{"model": "{model}", "limit": {limit_output}}"#),
            r#"{"model": "gpt-4o", "limit": 8192}"#
        );
        assert_eq!(p.expand("{unknown} {"), "{unknown} {");
    }

    #[test]
    fn the_prompt_stays_one_argument() {
        let p = ph();
        assert_eq!(p.expand_arg("{prompt}"), "it's \"quoted\"; rm -rf /");
        let word = p.expand_arg("agent --task {prompt}");
        assert_eq!(word, r#"agent --task 'it'\''s "quoted"; rm -rf /'"#);
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("printf %s {}", shell_quote("it's \"q\"; x")))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "it's \"q\"; x");
    }

    #[test]
    fn the_bundled_opencode_profile_parses() {
        let a = Agent::profile("opencode").unwrap();
        assert_eq!(a.name, "opencode");
        assert_eq!(a.apis, vec![Api::OpenAiChat]);
        assert!(a.env.contains_key("OPENCODE_CONFIG"));
        let p = a
            .processor
            .expect("opencode names its processor equivalent");
        assert_eq!(
            p.compaction,
            Some(crate::processor::config::CompactionMode::Off)
        );
        let cfg = ph().expand(&a.files[".tapeloop/opencode.json"]);
        let v: serde_json::Value = serde_json::from_str(&cfg).expect("the config expands to JSON");
        assert_eq!(
            v["provider"]["local"]["options"]["baseURL"],
            "http://127.0.0.1:9/v1"
        );
        assert_eq!(
            v["provider"]["local"]["models"]["gpt-4o"]["limit"]["output"],
            8192
        );
    }

    #[test]
    fn unknown_profiles_name_the_bundled_ones() {
        let e = Agent::profile("no-such-agent").unwrap_err().to_string();
        assert!(e.contains("opencode"), "{e}");
    }
}
