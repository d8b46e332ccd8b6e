//! `[agent]`: the agent under test for `tapeloop exec` — the command to run, its environment,
//! files to write into its working directory, a timeout, and the exit codes that mean "the
//! agent stopped the run on purpose". The command line overrides it.

use std::time::Duration;

use indexmap::IndexMap;

use super::reader::{Ctx, Tbl};

const AGENT_KEYS: &[&str] = &["command", "env", "files", "timeout", "stop_exit_codes"];

/// The `[agent]` table of a scenario (placeholders such as `{prompt}` are kept as written;
/// `tapeloop exec` expands them per run).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AgentTable {
    /// The program and its arguments.
    pub command: Vec<String>,
    pub env: IndexMap<String, String>,
    /// Files to write into the agent's working directory: relative path → content.
    pub files: IndexMap<String, String>,
    pub timeout: Option<Duration>,
    pub stop_exit_codes: Vec<i32>,
}

impl Ctx<'_> {
    pub(super) fn agent(&mut self, root: &Tbl) -> Option<AgentTable> {
        let t = self.sub_table(root, "agent", "[agent]")?;
        self.known_keys(&t, AGENT_KEYS);
        let mut agent = AgentTable {
            command: self.string_list(&t, "command"),
            env: self.string_map(&t, "env"),
            files: self.string_map(&t, "files"),
            timeout: None,
            stop_exit_codes: Vec::new(),
        };
        if t.t.get("command").is_some() && agent.command.is_empty() {
            self.value_error(
                &t,
                "command",
                "`command` in [agent] must name a program".into(),
                Some("command = [\"python3\", \"agent.py\", \"{prompt}\"]".into()),
            );
        }
        for rel in agent.files.keys() {
            let p = std::path::Path::new(rel);
            if p.is_absolute() || p.components().any(|c| c == std::path::Component::ParentDir) {
                self.value_error(
                    &t,
                    "files",
                    format!("`files` in [agent]: `{rel}` must be a relative path inside the working directory"),
                    None,
                );
            }
        }
        if let Some(item) = t.t.get("timeout") {
            match item
                .as_str()
                .and_then(crate::http::parse_duration_ms)
                .or_else(|| {
                    item.as_integer()
                        .filter(|n| *n > 0)
                        .map(|n| n as u64 * 1000)
                }) {
                Some(ms) if ms > 0 => agent.timeout = Some(Duration::from_millis(ms)),
                _ => self.type_error(
                    &t,
                    "timeout",
                    "a duration such as \"90s\" or a number of seconds > 0",
                ),
            }
        }
        if let Some(item) = t.t.get("stop_exit_codes") {
            match item.as_array() {
                Some(arr) => {
                    for v in arr.iter() {
                        match v.as_integer().and_then(|n| i32::try_from(n).ok()) {
                            Some(n) => agent.stop_exit_codes.push(n),
                            None => self.error(
                                v.span(),
                                "each entry of `stop_exit_codes` in [agent] must be an exit code (a whole number)".into(),
                                None,
                            ),
                        }
                    }
                }
                None => self.type_error(&t, "stop_exit_codes", "a list of exit codes"),
            }
        }
        Some(agent)
    }

    /// A list of strings (`key = ["a", "b"]`).
    fn string_list(&mut self, t: &Tbl, key: &str) -> Vec<String> {
        let Some(item) = t.t.get(key) else {
            return Vec::new();
        };
        match item.as_array() {
            Some(arr) if arr.iter().all(|v| v.as_str().is_some()) => arr
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => {
                self.type_error(t, key, "a list of strings");
                Vec::new()
            }
        }
    }

    /// A table of strings (`[agent.env]` or `env = { A = "1" }`).
    fn string_map(&mut self, t: &Tbl, key: &str) -> IndexMap<String, String> {
        let mut out = IndexMap::new();
        let Some(item) = t.t.get(key) else {
            return out;
        };
        let Some(table) = item.as_table_like() else {
            self.type_error(t, key, "a table of strings");
            return out;
        };
        for (k, v) in table.iter() {
            match v.as_str() {
                Some(s) => {
                    out.insert(k.to_string(), s.to_string());
                }
                None => self.value_error(
                    t,
                    key,
                    format!("`{key}.{k}` in {} must be a string", t.name),
                    None,
                ),
            }
        }
        out
    }
}
