//! Process exit codes, defined once for the binary and documented once (README.md "Exit
//! codes"). Every command maps its outcome onto these three values so CI can tell a failed
//! evaluation from a broken invocation.

/// How a `tapeloop` command ended, as its process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Exit {
    /// Everything passed (or the command had nothing to judge).
    Pass = 0,
    /// The evaluation ran and found a problem: an expectation failed, a metric regressed
    /// against a baseline, or (`serve --strict`) a request diverged or an interaction went
    /// unplayed.
    Failed = 1,
    /// The evaluation could not run: bad input (an invalid scenario, cassette or argument) or
    /// a harness error.
    Error = 2,
}

impl Exit {
    /// One line naming every code, for `--help` texts (README.md "Exit codes" has the rest).
    pub const SUMMARY: &'static str =
        "0 all passed, 1 an expectation failed or a metric regressed, 2 bad input or harness error";

    /// The numeric code.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// `Pass` when `ok`, else `Failed`: the verdict of an evaluation that did run.
    pub fn verdict(ok: bool) -> Exit {
        if ok {
            Exit::Pass
        } else {
            Exit::Failed
        }
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> Self {
        std::process::ExitCode::from(e.code())
    }
}

#[cfg(test)]
mod tests {
    use super::Exit;

    #[test]
    fn codes_are_the_documented_numbers() {
        assert_eq!(
            [Exit::Pass, Exit::Failed, Exit::Error].map(Exit::code),
            [0, 1, 2]
        );
        assert_eq!(Exit::verdict(true), Exit::Pass);
        assert_eq!(Exit::verdict(false), Exit::Failed);
    }
}
