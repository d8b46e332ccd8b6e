//! Scenario loading and validation: the FORMATS.md example parses, and every kind of mistake
//! is reported with file:line and a useful suggestion.

use std::path::{Path, PathBuf};

use tapeloop::processor::config::{CompactionMode, DetectorSpec, DoomAction, RetryPreset};
use tapeloop::provider::Api;
use tapeloop::report::Finish;
use tapeloop::scenario::{
    self, Bound, DoomExpect, FloatBound, LoadOptions, MatchMode, ScenarioError,
};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/scenarios/example/scenarios/read-loop.toml")
}

/// A scenario directory with `recordings/read-loop.openai.jsonl` present.
struct World {
    dir: tempfile::TempDir,
}

impl World {
    fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("scenarios")).unwrap();
        std::fs::create_dir_all(dir.path().join("recordings")).unwrap();
        std::fs::write(dir.path().join("recordings/read-loop.openai.jsonl"), "{}\n").unwrap();
        World { dir }
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join("scenarios").join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn errors(&self, text: &str) -> Vec<ScenarioError> {
        let p = self.write("x.toml", text);
        match scenario::load_checked(&p) {
            Ok(s) => panic!("expected errors, got {s:?}"),
            Err(e) => e,
        }
    }
}

const HEAD: &str = r#"api = "openai-chat"
model = "gpt-4o-mini"
cassettes = ["../recordings/read-loop.openai.jsonl"]
prompt = "Why does the build fail?"
"#;

fn one(errors: &[ScenarioError]) -> &ScenarioError {
    assert_eq!(errors.len(), 1, "{errors:#?}");
    &errors[0]
}

#[test]
fn formats_md_example_parses_completely() {
    let s = scenario::load_checked(&fixture()).unwrap_or_else(|e| panic!("{e:#?}"));
    assert_eq!(s.name, "read-loop");
    assert_eq!(
        s.description.as_deref(),
        Some("The model re-reads the same file until stopped")
    );
    assert_eq!(s.api, Some(Api::OpenAiChat));
    assert_eq!(s.model.as_deref(), Some("gpt-4o-mini"));
    assert_eq!(s.cassettes.len(), 1);
    assert_eq!(
        s.cassettes[0].written,
        "../recordings/read-loop.openai.jsonl"
    );
    assert!(s.cassettes[0].path.is_file());
    assert_eq!(s.system.as_deref(), Some("You are a coding agent."));
    assert_eq!(s.prompt, "Why does the build fail?");
    assert_eq!(s.limits.max_steps, Some(50));
    assert_eq!(s.limits.soft_max_steps, Some(25));
    assert_eq!(s.limits.max_retries, Some(10));
    assert_eq!(s.limits.context, Some(128000));
    assert_eq!(s.limits.output, Some(16384));
    assert_eq!(s.policy.doom_loop, vec![DetectorSpec::Opencode]);
    assert_eq!(s.policy.doom_action, DoomAction::AskReject);
    assert_eq!(s.policy.retry, RetryPreset::Opencode);
    assert_eq!(s.policy.seed, 7);
    assert_eq!(s.policy.compaction, CompactionMode::Stop);
    assert_eq!(s.policy.match_mode, MatchMode::Sequence);
    assert_eq!(s.tools.len(), 1);
    assert_eq!(
        s.tool_names(),
        Some(std::collections::BTreeSet::from(["read".to_string()]))
    );
    let read = &s.tools[0];
    assert_eq!(read.spec.name, "read");
    assert_eq!(read.spec.description, "Read a file");
    assert_eq!(
        read.spec.schema,
        serde_json::json!({"type":"object","properties":{"path":{"type":"string"}},"required":["path"]})
    );
    assert_eq!(read.results.len(), 2);
    assert_eq!(
        read.results[0].when.as_ref().unwrap()["path"],
        serde_json::json!("src/main.rs")
    );
    assert_eq!(read.results[0].answer.output, "fn main() {}");
    assert!(!read.results[0].answer.is_error);
    assert!(read.results[1].when.is_none());
    assert!(read.results[1].answer.is_error);
    assert_eq!(read.results[1].line, 33);
    let e = &s.expect;
    assert_eq!(e.finish, Some(Finish::DoomLoop));
    assert_eq!(
        e.doom_loop,
        Some(DoomExpect::At {
            step: 3,
            tool: Some("read".into()),
            detector: None
        })
    );
    assert_eq!(e.retries, Some(Bound::exact(0)));
    assert_eq!(
        e.steps,
        Some(Bound {
            min: None,
            max: Some(5)
        })
    );
    assert_eq!(e.tool_calls, Some(Bound::exact(3)));
    assert_eq!(
        e.cost_usd,
        Some(FloatBound {
            min: None,
            max: Some(0.05)
        })
    );
    assert_eq!(
        e.tokens.output,
        Some(Bound {
            min: None,
            max: Some(2000)
        })
    );
    assert_eq!(e.tokens.input, None);
}

#[test]
fn name_defaults_to_file_stem_and_lists_parse() {
    let w = World::new();
    let p = w.write(
        "stem-name.toml",
        &format!(
            "{HEAD}[policy]\ndoom_loop = [\"opencode\", \"consecutive:4\", \"cycle:4:3\"]\nmatch = \"strict\"\ncompaction = \"off\"\n[expect]\ndoom_loop = false\nretries = {{ min = 1, max = 5 }}\ndetectors = {{ \"consecutive:4\" = 6, seed = false, \"cycle:4:3\" = true }}\n"
        ),
    );
    let s = scenario::load_checked(&p).unwrap_or_else(|e| panic!("{e:#?}"));
    assert_eq!(s.name, "stem-name");
    // No [[tools]]: no tool set, every call counts as a call to a tool the agent has.
    assert_eq!(s.tool_names(), None);
    assert_eq!(s.policy.doom_loop.len(), 3);
    assert_eq!(s.policy.match_mode, MatchMode::Strict);
    assert_eq!(s.policy.compaction, CompactionMode::Off);
    assert_eq!(s.expect.doom_loop, Some(DoomExpect::None));
    assert_eq!(
        s.expect.retries,
        Some(Bound {
            min: Some(1),
            max: Some(5)
        })
    );
    assert_eq!(s.expect.detectors.len(), 3);
}

#[test]
fn typo_in_every_table_names_the_nearest_key() {
    let w = World::new();
    let cases: &[(&str, &str, &str, usize)] = &[
        ("modle = \"x\"\n", "the top level", "model", 5),
        ("[limits]\nmax_step = 5\n", "[limits]", "max_steps", 6),
        (
            "[policy]\ndoom_lop = \"seed\"\n",
            "[policy]",
            "doom_loop",
            6,
        ),
        (
            "[[tools]]\nname = \"read\"\ndescripton = \"x\"\n",
            "[[tools]]",
            "description",
            7,
        ),
        (
            "[[tools]]\nname = \"read\"\n[[tools.results]]\noutptu = \"x\"\n",
            "[[tools.results]]",
            "output",
            8,
        ),
        ("[expect]\nretires = 0\n", "[expect]", "retries", 6),
        (
            "[expect]\ntokens = { outptu = 5 }\n",
            "`tokens` in [expect]",
            "output",
            6,
        ),
        (
            "[expect]\nsteps = { mx = 5 }\n",
            "`steps` in [expect]",
            "max",
            6,
        ),
    ];
    for (body, table, want, line) in cases {
        let errors = w.errors(&format!("{HEAD}{body}"));
        let e = one(&errors);
        assert!(
            e.message.starts_with("unknown key `") && e.message.ends_with(&format!("in {table}")),
            "{e}"
        );
        assert_eq!(
            e.suggestion.as_deref(),
            Some(&*format!("did you mean `{want}`?")),
            "{e}"
        );
        assert_eq!(e.line, *line, "{e}");
        assert!(e.path.ends_with("scenarios/x.toml"));
    }
}

#[test]
fn unknown_key_message_reads_as_documented() {
    let w = World::new();
    let errors = w.errors(&format!("{HEAD}[expect]\nsteps = 3\nretires = 0\n"));
    let e = one(&errors);
    let shown = e.to_string();
    assert!(
        shown.starts_with("unknown key `retires` in [expect] at ")
            && shown.ends_with("scenarios/x.toml:7: did you mean `retries`?"),
        "{shown}"
    );
    assert_eq!(e.column, 1);
}

#[test]
fn bad_detector_name_suggests_nearest_form() {
    let w = World::new();
    let errors = w.errors(&format!(
        "{HEAD}[policy]\ndoom_loop = [\"opencode\", \"consecutiv:3\"]\n"
    ));
    let e = one(&errors);
    assert_eq!(e.line, 6);
    assert!(
        e.message
            .contains("unknown doom-loop detector `consecutiv:3`"),
        "{e}"
    );
    let hint = e.suggestion.as_deref().unwrap();
    assert!(hint.starts_with("did you mean `consecutive:3`?"), "{hint}");
    assert!(hint.contains("cycle:K:R"), "{hint}");

    let errors = w.errors(&format!("{HEAD}[policy]\ndoom_loop = \"opencod\"\n"));
    assert!(one(&errors)
        .suggestion
        .as_deref()
        .unwrap()
        .starts_with("did you mean `opencode`?"));

    // A valid detector with a bad parameter explains the parameter.
    let errors = w.errors(&format!("{HEAD}[policy]\ndoom_loop = \"consecutive:1\"\n"));
    assert!(one(&errors).message.contains("at least 2"), "{errors:?}");
}

#[test]
fn bad_policy_names_and_api_suggest() {
    let w = World::new();
    let errors = w.errors(&format!(
        "{HEAD}[policy]\ndoom_action = \"ask-rejct\"\nretry = \"openai_sdk\"\ncompaction = \"compress\"\nmatch = \"strict-ish\"\n"
    ));
    assert_eq!(errors.len(), 4, "{errors:#?}");
    assert!(errors[0]
        .suggestion
        .as_deref()
        .unwrap()
        .starts_with("did you mean `ask-reject`?"));
    assert!(errors[1]
        .suggestion
        .as_deref()
        .unwrap()
        .starts_with("did you mean `openai-sdk`?"));
    assert_eq!(
        errors[2].suggestion.as_deref(),
        Some("valid: stop, compact, off")
    );
    assert!(errors[3].message.contains("match mode"));
    assert_eq!(
        errors.iter().map(|e| e.line).collect::<Vec<_>>(),
        vec![6, 7, 8, 9]
    );

    let errors = w.errors(&HEAD.replace("openai-chat", "openai-chatt"));
    let e = one(&errors);
    assert_eq!(e.line, 1);
    assert!(e
        .suggestion
        .as_deref()
        .unwrap()
        .starts_with("did you mean `openai-chat`?"));
}

#[test]
fn missing_cassette_suggests_near_miss_file() {
    let w = World::new();
    let errors = w.errors(&HEAD.replace("read-loop.openai", "read-lop.openai"));
    let e = one(&errors);
    assert_eq!(e.line, 3);
    assert_eq!(e.column, 14);
    assert!(e
        .message
        .contains("cassette `../recordings/read-lop.openai.jsonl` not found"));
    assert_eq!(
        e.suggestion.as_deref(),
        Some("did you mean `../recordings/read-loop.openai.jsonl`?")
    );
    // Not checked when asked not to (recording creates the file).
    let p = w.write(
        "y.toml",
        &HEAD.replace("read-loop.openai", "read-lop.openai"),
    );
    let opts = LoadOptions {
        check_cassettes: false,
    };
    assert!(scenario::load(&p, &opts).is_ok());
}

#[test]
fn wrong_types_are_reported_with_what_was_found() {
    let w = World::new();
    let errors = w.errors(&format!(
        "{HEAD}[limits]\nmax_steps = \"50\"\n[expect]\nsteps = \"many\"\ncost_usd = {{ max = \"cheap\" }}\n"
    ));
    assert_eq!(errors.len(), 3, "{errors:#?}");
    assert_eq!(
        errors[0].message,
        "`max_steps` in [limits] must be a whole number ≥ 1, found a string"
    );
    assert_eq!(
        errors[0].suggestion.as_deref(),
        Some("write the number without quotes: max_steps = 50")
    );
    assert_eq!(errors[0].line, 6);
    assert!(errors[1]
        .message
        .contains("`steps` in [expect] must be a whole number or { min, max }"));
    assert!(errors[2].message.contains("`max`"), "{}", errors[2]);

    let errors = w.errors(&HEAD.replace(
        "cassettes = [\"../recordings/read-loop.openai.jsonl\"]",
        "cassettes = \"../recordings/read-loop.openai.jsonl\"",
    ));
    let e = one(&errors);
    assert!(e.message.contains("must be an array"), "{e}");
    assert!(e
        .suggestion
        .as_deref()
        .unwrap()
        .starts_with("write a list: cassettes = ["));
}

#[test]
fn toml_syntax_error_has_line_and_column() {
    let w = World::new();
    let errors = w.errors(&format!("{HEAD}[expect]\nsteps = = 3\n"));
    let e = one(&errors);
    assert!(e.message.starts_with("TOML syntax error"), "{e}");
    assert_eq!(e.line, 6);
    assert!(e.column > 1);
}

#[test]
fn results_entry_with_both_or_neither_output_and_error() {
    let w = World::new();
    let errors = w.errors(&format!(
        "{HEAD}[[tools]]\nname = \"read\"\n\n[[tools.results]]\noutput = \"a\"\nerror = \"b\"\n\n[[tools.results]]\nwhen = {{ path = \"x\" }}\n"
    ));
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(errors[0].message.contains("has both `output` and `error`"));
    assert_eq!(errors[0].line, 8);
    assert!(errors[1]
        .message
        .contains("has neither `output` nor `error`"));
    assert_eq!(errors[1].line, 12);
}

#[test]
fn every_problem_in_a_file_is_reported_together_in_line_order() {
    let w = World::new();
    let text = r#"api = "openai-chat"
cassettes = ["../recordings/nope.jsonl"]
promt = "x"
[limits]
max_steps = 0
[policy]
retry = "forever"
[expect]
finish = "done"
steps = { min = 5, max = 2 }
"#;
    let errors = w.errors(text);
    let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
    // missing prompt (line 1), cassette (2), unknown `promt` (3), max_steps (5), retry (7),
    // finish (9), steps range (10)
    assert_eq!(lines, vec![1, 2, 3, 5, 7, 9, 10], "{errors:#?}");
    assert!(errors[0].message.contains("missing required key `prompt`"));
    assert_eq!(
        errors[2].suggestion.as_deref(),
        Some("did you mean `prompt`?")
    );
    assert!(errors[5]
        .message
        .contains("unknown termination reason `done`"));
    let all = scenario::ScenarioErrors(errors).to_string();
    assert_eq!(all.lines().count(), 7);
}

#[test]
fn duplicate_tools_and_soft_limit_above_hard() {
    let w = World::new();
    let errors = w.errors(&format!(
        "{HEAD}[limits]\nmax_steps = 5\nsoft_max_steps = 9\n[[tools]]\nname = \"read\"\n[[tools]]\nname = \"read\"\n"
    ));
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(errors[0].message.contains("soft_max_steps"));
    assert!(errors[1]
        .message
        .contains("defined twice (first at line 9)"));
}

#[test]
fn unreadable_file_is_an_error_not_a_panic() {
    let errors = scenario::load_checked(Path::new("/nonexistent/dir/x.toml")).unwrap_err();
    assert_eq!(errors[0].line, 0);
    assert!(errors[0].to_string().contains("/nonexistent/dir/x.toml"));
}

#[test]
fn discover_finds_toml_recursively_sorted() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for p in [
        "b.toml",
        "a/z.toml",
        "a/c.toml",
        "a/notes.md",
        ".hidden/x.toml",
    ] {
        let p = root.join(p);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, "").unwrap();
    }
    let found = scenario::discover(root).unwrap();
    let rel: Vec<String> = found
        .iter()
        .map(|p| {
            p.strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/")
        })
        .collect();
    assert_eq!(rel, vec!["a/c.toml", "a/z.toml", "b.toml"]);
    assert!(scenario::discover(&root.join("missing")).is_err());
}

mod never_panics {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        /// Any edit of a valid scenario (a cut, or an inserted character) loads or gives
        /// positioned errors; it never panics.
        #[test]
        fn mutated_example_gives_errors_not_panics(cut in 0usize..1500, len in 0usize..6, ch in any::<char>()) {
            let text = std::fs::read_to_string(fixture()).unwrap();
            let mut chars: Vec<char> = text.chars().collect();
            let at = cut.min(chars.len());
            let end = (at + len).min(chars.len());
            chars.splice(at..end, [ch]);
            let mutated: String = chars.into_iter().collect();
            let opts = LoadOptions { check_cassettes: false };
            if let Err(errors) = scenario::parse_str(&mutated, &fixture(), &opts) {
                prop_assert!(!errors.is_empty());
                for e in errors {
                    prop_assert!(e.line >= 1 && e.line <= mutated.lines().count() + 1, "{e}");
                }
            }
        }
    }
}
