//! Pacing: when the parts of a recorded interaction are sent (as recorded, at once, or N
//! times faster), as a pure [`schedule`] the server sleeps by.

use std::time::Duration;

use crate::cassette::{End, Interaction, ResponseHead};
use crate::event::EndOutcome;

/// How chunks are paced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// As recorded: headers after the recorded `ms`, each chunk at its offset.
    Recorded,
    /// Everything at once.
    Instant,
    /// The recorded timing divided by this factor (`x2` is twice as fast).
    Scaled(f64),
}

impl std::str::FromStr for Pace {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "recorded" => Ok(Pace::Recorded),
            "instant" => Ok(Pace::Instant),
            _ => {
                let f = s
                    .strip_prefix('x')
                    .and_then(|n| n.parse::<f64>().ok())
                    .filter(|f| f.is_finite() && *f > 0.0)
                    .ok_or_else(|| {
                        format!("`{s}`: expected recorded, instant, or xN with N > 0 (x2 = twice as fast)")
                    })?;
                Ok(Pace::Scaled(f))
            }
        }
    }
}

impl std::fmt::Display for Pace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Pace::Recorded => f.write_str("recorded"),
            Pace::Instant => f.write_str("instant"),
            Pace::Scaled(n) => write!(f, "x{n}"),
        }
    }
}

impl Pace {
    /// The real wait for a recorded gap of `ms`. Saturates instead of panicking when a tiny
    /// factor (`x0.0000001`) would overflow a `Duration`.
    pub fn delay(&self, ms: u64) -> Duration {
        match self {
            Pace::Recorded => Duration::from_millis(ms),
            Pace::Instant => Duration::ZERO,
            Pace::Scaled(f) => {
                Duration::try_from_secs_f64(ms as f64 / 1000.0 / f).unwrap_or(Duration::MAX)
            }
        }
    }
}

/// When the parts of one interaction are sent under a pace, each wait measured from the
/// previous part (the recorded `ms` are offsets from the request).
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// Before the response head; without a head, before the connection is closed.
    pub head: Duration,
    /// Before each chunk: the first from the head, the others from the chunk before.
    pub chunks: Vec<Duration>,
    /// After the last chunk, before a recorded `reset` / `timeout` / `aborted` cuts the
    /// connection (zero for a `complete` end).
    pub end: Duration,
}

/// The waits [`Pace`] gives `inter` (what the server sleeps; unit-testable without a clock).
pub fn schedule(inter: &Interaction, pace: Pace) -> Schedule {
    let last_chunk = inter.chunks.last().map(|c| c.ms);
    let head = head_wait(pace, inter.response.as_ref(), inter.end, last_chunk);
    let Some(h) = &inter.response else {
        return Schedule {
            head,
            chunks: Vec::new(),
            end: Duration::ZERO,
        };
    };
    let mut gaps = Gaps::new(pace, h);
    let chunks = inter.chunks.iter().map(|c| gaps.chunk(c.ms)).collect();
    Schedule {
        head,
        chunks,
        end: gaps.end(inter.end),
    }
}

/// The wait before the response head; without a head, before the connection is closed (at
/// the recorded end, else the last chunk).
pub(super) fn head_wait(
    pace: Pace,
    head: Option<&ResponseHead>,
    end: Option<End>,
    last_chunk_ms: Option<u64>,
) -> Duration {
    let at = match head {
        Some(h) => h.ms,
        None => end.map(|e| e.ms).or(last_chunk_ms).unwrap_or(0),
    };
    pace.delay(at)
}

/// The waits after the head, computed chunk by chunk as they come: `serve` reads a body from
/// the file while it plays it, so it never holds every chunk's time at once.
pub(super) struct Gaps {
    pace: Pace,
    /// The recorded ms of the part sent last.
    at: u64,
}

impl Gaps {
    pub(super) fn new(pace: Pace, head: &ResponseHead) -> Gaps {
        Gaps { pace, at: head.ms }
    }

    /// The wait before the chunk recorded at `ms`, from the part before it.
    pub(super) fn chunk(&mut self, ms: u64) -> Duration {
        let wait = ms.saturating_sub(self.at);
        self.at = self.at.max(ms);
        self.pace.delay(wait)
    }

    /// The wait after the last chunk before a recorded `reset` / `timeout` / `aborted` end
    /// cuts the connection (zero for a `complete` end).
    pub(super) fn end(&self, end: Option<End>) -> Duration {
        match end {
            Some(e) if e.outcome != EndOutcome::Complete => {
                self.pace.delay(e.ms.saturating_sub(self.at))
            }
            _ => Duration::ZERO,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pace_parses() {
        assert_eq!("instant".parse::<Pace>(), Ok(Pace::Instant));
        assert_eq!("x2".parse::<Pace>(), Ok(Pace::Scaled(2.0)));
        assert!("x0".parse::<Pace>().is_err());
        assert!("fast".parse::<Pace>().is_err());
        assert_eq!(Pace::Scaled(2.0).delay(1000), Duration::from_millis(500));
    }
}
