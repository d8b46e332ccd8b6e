//! The JSON report of `tapeloop run` against FORMATS.md, and its JUnit through a real
//! consumer (`junitparser`).
//!
//! Every test runs the real binary; the repository is only read (copies go to temp dirs).

mod support_cli;
mod support_python;

use std::collections::BTreeSet;
use std::process::Command;

use serde_json::Value;
use support_cli::*;

// ------------------------------------------------------------------------------------------------
// The JSON report against FORMATS.md

#[test]
fn json_report_validates_against_formats_md() {
    let o = tapeloop(&["run", "--format", "json"]);
    assert_eq!(o.code, 0, "{}", o.all());
    let r = json(&o.stdout);
    validate_report(&r);
    let got: BTreeSet<(String, String)> = r["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["scenario"].as_str().unwrap().to_string(),
                x["cassette"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(got, corpus_pairs());
    // The corpus exercises every optional shape: a doom loop, a silent detector, a retry with
    // an HTTP status and one without (connection reset).
    let runs = r["runs"].as_array().unwrap();
    assert!(runs.iter().any(|x| !x["doom_loop"].is_null()));
    assert!(runs
        .iter()
        .flat_map(|x| x["detectors"].as_array().unwrap())
        .any(|d| d["step"].is_null()));
    let retries: Vec<&Value> = runs
        .iter()
        .flat_map(|x| x["retries"].as_array().unwrap())
        .collect();
    assert!(retries.iter().any(|x| x["status"].is_u64()));
    assert!(retries.iter().any(|x| x["status"].is_null()));

    // A failing run report validates too, and its summary counts the failures.
    let o = tapeloop(&["run", "--format", "json", "--retry", "seed"]);
    assert_eq!(o.code, 1, "{}", o.all());
    let r = json(&o.stdout);
    validate_report(&r);
    assert!(r["summary"]["failed"].as_u64().unwrap() > 0);
}

#[test]
fn the_validator_rejects_reports_that_break_the_format() {
    let o = tapeloop(&[
        "run",
        "--format",
        "json",
        "scenarios/retry-429-retry-after.toml",
    ]);
    assert_eq!(o.code, 0, "{}", o.all());
    let good = json(&o.stdout);
    validate_report(&good);
    type Edit = fn(&mut Value);
    let breakages: &[(&str, Edit)] = &[
        ("format 2", |r| r["format"] = 2.into()),
        ("summary", |r| r["summary"]["passed"] = 0.into()),
        ("status string", |r| {
            r["runs"][0]["retries"][0]["status"] = "429".into()
        }),
        ("doom_loop shape", |r| {
            r["runs"][0]["doom_loop"] = serde_json::json!({"step": 1})
        }),
        ("missing tokens", |r| {
            r["runs"][0].as_object_mut().unwrap().remove("tokens");
        }),
    ];
    for (what, edit) in breakages {
        let mut bad = good.clone();
        edit(&mut bad);
        let caught = std::panic::catch_unwind(|| validate_report(&bad)).is_err();
        assert!(caught, "the validator accepted a report with a bad {what}");
    }
}

// ------------------------------------------------------------------------------------------------
// JUnit through a real consumer

const JUNIT_READER: &str = r#"
import json, sys
from junitparser import JUnitXml, Failure
xml = JUnitXml.fromfile(sys.argv[1])
out = {"suites": [], "cases": []}
for suite in xml:
    out["suites"].append({"name": suite.name, "tests": suite.tests, "failures": suite.failures,
                          "errors": suite.errors, "skipped": suite.skipped})
    for case in suite:
        fails = [r for r in case.result if isinstance(r, Failure)]
        out["cases"].append({"classname": case.classname, "name": case.name,
                             "failures": [{"message": f.message, "text": f.text} for f in fails]})
print(json.dumps(out))
"#;

#[test]
fn junit_parses_with_junitparser() {
    let Some(python) = support_python::python("the junitparser check") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // `--retry seed` makes some corpus runs fail, so failures are exercised too.
    let xml = dir.path().join("junit.xml");
    let o = tapeloop(&[
        "run",
        "--retry",
        "seed",
        "--format",
        "junit",
        "--out",
        xml.to_str().unwrap(),
    ]);
    assert_eq!(o.code, 1, "{}", o.all());
    let o2 = tapeloop(&["run", "--retry", "seed", "--format", "json"]);
    let report = json(&o2.stdout);
    let script = dir.path().join("read_junit.py");
    std::fs::write(&script, JUNIT_READER).unwrap();
    let out = Command::new(python)
        .arg(&script)
        .arg(&xml)
        .output()
        .expect("run the TAPELOOP_TEST_PYTHON interpreter");
    assert!(
        out.status.success(),
        "junitparser failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let parsed = json(&String::from_utf8(out.stdout).unwrap());

    let runs = report["runs"].as_array().unwrap();
    let failed = runs.iter().filter(|r| r["passed"] == false).count();
    assert!(failed > 0 && failed < runs.len());
    let suites = parsed["suites"].as_array().unwrap();
    assert_eq!(suites.len(), 1);
    assert_eq!(suites[0]["tests"], runs.len());
    assert_eq!(suites[0]["failures"], failed);
    assert_eq!(suites[0]["errors"], 0);
    let cases = parsed["cases"].as_array().unwrap();
    assert_eq!(
        cases.len(),
        corpus_pairs().len(),
        "one testcase per scenario × cassette"
    );
    for run in runs {
        let scenario = run["scenario"].as_str().unwrap();
        let file = run["cassette"]
            .as_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap();
        let name = format!("{scenario} [{file}]");
        let case = cases
            .iter()
            .find(|c| c["name"] == name.as_str())
            .unwrap_or_else(|| panic!("no testcase {name}"));
        assert_eq!(case["classname"], scenario);
        let fails = case["failures"].as_array().unwrap();
        if run["passed"] == true {
            assert!(fails.is_empty(), "{name} passed but has a failure");
        } else {
            assert_eq!(fails.len(), 1, "{name}");
            let expected: Vec<&str> = run["failures"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f.as_str().unwrap())
                .collect();
            assert_eq!(fails[0]["message"], expected.join("; ").as_str(), "{name}");
            assert_eq!(fails[0]["text"], expected.join("\n").as_str(), "{name}");
        }
    }
}
