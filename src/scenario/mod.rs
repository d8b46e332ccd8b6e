//! Scenario files (TOML): schema, validation with file:line errors, mock tools, expectations,
//! and accepting an observed run as the new expectations.
//!
//! The format is FORMATS.md "Scenario". Additions made here (all optional):
//!
//! - `provider` (top level): the provider name to record against / expect in cassettes.
//! - `api`, `model`: optional; when absent, each cassette's header says what was recorded.
//! - `[policy] match = "sequence" | "strict"` — how replayed requests are checked against the
//!   cassette ([`MatchMode`]). `sequence` (the default): each request the loop sends is answered
//!   by the next recorded interaction in order (step, attempt); the request body is not compared.
//!   `strict`: additionally the request body must equal the recorded one as parsed JSON
//!   (redacted values excepted); the first difference ends the run with `divergence`, and the
//!   report names the first differing JSON path.
//! - `[policy] doom_loop = []` runs no detector; absent, it is `"opencode"`.
//! - `[policy] compaction = "off"`: opencode with autocompact off (no overflow check), beside
//!   `stop` (tapeloop's own) and `compact`.
//! - `[[tools]]` is the agent's tool set ([`Scenario::tool_names`]): calls to other names are
//!   rerouted to opencode's `invalid` tool.
//! - `[expect]`: `doom_loop = true` (any doom loop), `sim_ms` (number or `{min, max}`),
//!   `detectors = { "seed" = 3, "consecutive:4" = false, "cycle:4:3" = true }` (per detector: the
//!   step it first fires at, `false` = never fires, `true` = fires at some step), and
//!   `tokens.total`. See [`Expectations`].
//!
//! Unknown keys anywhere are errors naming the file, line and nearest valid key, because a
//! typo must not silently disable an expectation. Loading ([`load`], [`load_checked`]) reports
//! every problem in a file.

pub mod accept;
mod agent;
mod error;
pub mod expect;
mod load;
mod reader;
mod schema;
mod sections;
mod suggest;
pub mod tools;

pub use accept::{plan as accept_plan, AcceptPlan};
pub use agent::AgentTable;
pub use error::{ScenarioError, ScenarioErrors};
pub use expect::{
    Bound, DetectorExpect, DoomExpect, Expectations, FloatBound, RetryAfterExpect, TokenBounds,
};
pub use load::{discover, load, load_checked, parse_str, LoadOptions};
pub use schema::{
    CassetteRef, Limits, MatchMode, Policy, ResultRule, Scenario, ScenarioTool, ToolAnswer,
};
pub use suggest::{edit_distance, nearest};
pub use tools::{NoMatch, ToolScripts};
