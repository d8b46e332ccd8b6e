//! The bundled recordings are exactly what `tools/build_corpus.py` builds, and its own
//! validation passes on them and on the scenarios: the builder and the corpus cannot drift
//! apart. The builder needs PyPI's `blake3` (CI's `TAPELOOP_TEST_PYTHON` venv has it).

mod support_python;

use std::path::Path;
use std::process::Command;

#[test]
fn recordings_are_what_the_corpus_builder_writes() {
    let Some(python) = support_python::python("the corpus builder check") else {
        return;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for mode in ["--check", "--validate"] {
        let out = Command::new(&python)
            .arg(root.join("tools/build_corpus.py"))
            .arg(mode)
            .current_dir(root)
            .output()
            .expect("run the TAPELOOP_TEST_PYTHON interpreter");
        assert!(
            out.status.success(),
            "build_corpus.py {mode} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
