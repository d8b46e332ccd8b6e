//! Mock tool scripts: FORMATS.md "Tool results" ordering and matching rules.

use serde_json::json;
use tapeloop::scenario::{self, LoadOptions, ToolAnswer, ToolScripts};

fn scripts(tools_toml: &str) -> ToolScripts {
    let text = format!("cassettes = [\"x.jsonl\"]\nprompt = \"p\"\n{tools_toml}");
    let opts = LoadOptions {
        check_cassettes: false,
    };
    let s = scenario::parse_str(&text, std::path::Path::new("t.toml"), &opts)
        .unwrap_or_else(|e| panic!("{e:#?}"));
    ToolScripts::from_scenario(&s)
}

fn out(s: &str) -> Option<Result<ToolAnswer, scenario::NoMatch>> {
    Some(Ok(ToolAnswer {
        output: s.into(),
        is_error: false,
    }))
}

fn err(s: &str) -> Option<Result<ToolAnswer, scenario::NoMatch>> {
    Some(Ok(ToolAnswer {
        output: s.into(),
        is_error: true,
    }))
}

const READ: &str = r#"
[[tools]]
name = "read"

[[tools.results]]
when = { path = "src/main.rs" }
output = "main 1"

[[tools.results]]
when = { path = "src/main.rs" }
output = "main 2"

[[tools.results]]
error = "ENOENT"

[[tools]]
name = "bash"
"#;

#[test]
fn first_unused_matching_entry_then_last_matching_repeats() {
    let mut t = scripts(READ);
    let main = json!({"path": "src/main.rs"});
    assert_eq!(t.answer("read", &main), out("main 1"));
    assert_eq!(t.answer("read", &main), out("main 2"));
    // Both `when` entries are used; the catch-all also matches and is unused.
    assert_eq!(t.answer("read", &main), err("ENOENT"));
    // Every matching entry used: the last matching one answers again.
    assert_eq!(t.answer("read", &main), err("ENOENT"));
    assert_eq!(t.answer("read", &json!({"path": "other"})), err("ENOENT"));
}

#[test]
fn when_is_a_subset_of_the_arguments() {
    let mut t = scripts(READ);
    // Extra argument keys do not prevent a match.
    assert_eq!(
        t.answer("read", &json!({"path": "src/main.rs", "limit": 10})),
        out("main 1")
    );
    // A different value does not match: falls to the catch-all.
    assert_eq!(
        t.answer("read", &json!({"path": "src/lib.rs"})),
        err("ENOENT")
    );
    // Missing key does not match either; the catch-all repeats (it is the last matching).
    assert_eq!(t.answer("read", &json!({})), err("ENOENT"));
}

#[test]
fn nested_objects_match_recursively_and_numbers_by_value() {
    let mut t = scripts(
        r#"
[[tools]]
name = "edit"
[[tools.results]]
when = { file = { path = "a.rs", opts = { dry = true } }, line = 3 }
output = "nested"
"#,
    );
    assert_eq!(
        t.answer(
            "edit",
            &json!({"file": {"path": "a.rs", "opts": {"dry": true, "x": 1}, "mode": "w"}, "line": 3.0})
        ),
        out("nested")
    );
    let miss = t.answer(
        "edit",
        &json!({"file": {"path": "a.rs", "opts": {"dry": false}}, "line": 3}),
    );
    let Some(Err(no)) = miss else {
        panic!("expected no match, got {miss:?}")
    };
    assert_eq!(no.tool, "edit");
    assert!(no.to_answer().is_error);
    assert!(no.warning().contains("no [[tools.results]] entry matches"));
    // A non-object value for a nested `when` object does not match.
    assert!(matches!(
        t.answer("edit", &json!({"file": "a.rs", "line": 3})),
        Some(Err(_))
    ));
}

#[test]
fn unscripted_tools_are_left_to_the_cassette() {
    let mut t = scripts(READ);
    assert!(t.is_scripted("read"));
    assert!(!t.is_scripted("bash"));
    assert_eq!(t.answer("bash", &json!({"cmd": "ls"})), None);
    assert_eq!(t.answer("unknown", &json!({})), None);
}

#[test]
fn answers_are_deterministic_and_reset_starts_over() {
    let calls = [
        json!({"path": "src/main.rs"}),
        json!({"path": "x"}),
        json!({"path": "src/main.rs"}),
        json!({"path": "src/main.rs"}),
    ];
    let run =
        |t: &mut ToolScripts| -> Vec<_> { calls.iter().map(|c| t.answer("read", c)).collect() };
    let mut a = scripts(READ);
    let first = run(&mut a);
    a.reset();
    assert_eq!(run(&mut a), first);
    assert_eq!(run(&mut scripts(READ)), first);
    assert_eq!(first[1], err("ENOENT"));
    assert_eq!(first[2], out("main 2"));
}
