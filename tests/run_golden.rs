//! Golden test: the JSON report of the README's main command over the bundled corpus is
//! byte-identical to `tests/fixtures/bundled-run.json`.
//!
//! The fixture was written by the code before the issue-12 redesign, so this test proves the
//! redesign changed no byte of what `tapeloop run` reports. If a change to the report is
//! intended, re-bless the fixture and review its diff:
//!
//! ```text
//! TAPELOOP_BLESS=1 cargo test --test run_golden
//! ```

use std::path::Path;
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/bundled-run.json"
);

/// `wall_ms` (a run's wall-clock duration) is the report's only nondeterministic field and
/// `run` has no flag to leave it out, so its values are set to 0, in the fixture as written
/// and in the report before comparing. Nothing else is touched.
fn normalize(report: &str) -> String {
    let wall_ms = regex::Regex::new(r#"("wall_ms": )[0-9]+"#).unwrap();
    wall_ms.replace_all(report, "${1}0").into_owned()
}

/// The README's main command (`tapeloop run`, from the repository root), with `--format json`
/// so the report goes to stdout as JSON. Piped and without CI or colour variables, as in CI.
fn bundled_run_json() -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tapeloop"))
        .current_dir(ROOT)
        .args(["run", "--format", "json"])
        .env_remove("CI")
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .output()
        .expect("run tapeloop");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "tapeloop run --format json exited with {}:\n{stderr}",
        out.status
    );
    String::from_utf8(out.stdout).expect("the JSON report is UTF-8")
}

#[test]
fn bundled_run_json_report_is_byte_identical_to_the_fixture() {
    let actual = normalize(&bundled_run_json());
    if std::env::var_os("TAPELOOP_BLESS").is_some() {
        std::fs::write(FIXTURE, &actual).expect("write the fixture");
        eprintln!("blessed {FIXTURE}");
        return;
    }
    let expected = std::fs::read_to_string(FIXTURE).unwrap_or_else(|e| {
        panic!(
            "cannot read {FIXTURE} ({e}); create it with `TAPELOOP_BLESS=1 cargo test --test run_golden`"
        )
    });
    let expected = normalize(&expected);
    if actual != expected {
        let rel = Path::new(FIXTURE).strip_prefix(ROOT).unwrap().display();
        let diff = similar::TextDiff::from_lines(&expected, &actual)
            .unified_diff()
            .context_radius(3)
            .header(&rel.to_string(), "tapeloop run --format json")
            .to_string();
        panic!(
            "the bundled run's JSON report differs from {rel}:\n{diff}\n\
             If the change is intended, re-bless with `TAPELOOP_BLESS=1 cargo test --test run_golden` \
             and review the fixture's diff."
        );
    }
}
