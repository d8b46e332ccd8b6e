//! Which recorded interaction answers a request, and the per-session state that decides it.
//!
//! - **`conversation`** (the default). A request is answered by a recorded interaction whose
//!   request is the same conversation ([`Matcher`]), over every cassette served. Sessions are
//!   *tracks*: a cassette and a cursor. A request first continues a track: the first
//!   interaction at or after a track's cursor that matches it (the fewest skipped wins, then
//!   the oldest track), so the next step of a conversation, and a retry of an identical
//!   request (the next recorded attempt), are found by their content without any header.
//!   Otherwise it opens a new track where it matches — a conversation's first request
//!   preferred, then the cassette fewest tracks use — so two clients with the same prompt each
//!   get a complete replay. A retry past the last recorded attempt (the track's last request
//!   was the same and failed) is `exhausted`. No match anywhere is a `miss`, naming the
//!   closest recorded request and the first differing path. With `x-tapeloop-session`, only
//!   that session's tracks are continued.
//! - **`sequence`** and **`strict`**: interactions play in recorded order per session (the
//!   header, else the conversation prefix, [`session_key`]) on the cassette of the request's
//!   API and model, moving on to the next such cassette when one is used up; `strict` refuses
//!   a request whose body differs from the recorded one.

use std::borrow::Cow;
use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::sync::Arc;

use serde_json::{json, Value};

use super::bodies::Bodies;
use super::status::Divergence;
use crate::cassette::{CassetteIndex, IndexedInteraction};
use crate::event::EndOutcome;
use crate::matching::{session_key, Matcher, Prepared, ServeMatch};
use crate::provider::Api;

/// The cassettes served, with their requests prepared for matching.
pub(super) struct Catalog {
    pub cassettes: Vec<Arc<CassetteIndex>>,
    pub matcher: Matcher,
    /// Bodies kept once read (`--pace instant`).
    pub bodies: Bodies,
    /// Conversation mode: every recorded request, prepared once (empty otherwise).
    prepared: Vec<Vec<Prepared>>,
}

impl Catalog {
    pub fn new(cassettes: Vec<CassetteIndex>, matcher: Matcher) -> Catalog {
        let prepared = if matcher.mode == ServeMatch::Conversation {
            cassettes
                .iter()
                .map(|c| {
                    c.interactions
                        .iter()
                        .map(|i| {
                            let body = i.request.body.parsed_once();
                            matcher.prepare(&body, c.header.model.as_deref())
                        })
                        .collect()
                })
                .collect()
        } else {
            Vec::new()
        };
        Catalog {
            cassettes: cassettes.into_iter().map(Arc::new).collect(),
            matcher,
            bodies: Bodies::default(),
            prepared,
        }
    }

    fn matches(&self, c: usize, i: usize, sent: &Prepared) -> bool {
        self.matcher
            .difference(&self.prepared[c][i], sent)
            .is_none()
    }

    fn inter(&self, c: usize, i: usize) -> &IndexedInteraction {
        &self.cassettes[c].interactions[i]
    }

    fn path(&self, c: usize) -> String {
        self.cassettes[c].path.display().to_string()
    }
}

/// A request as matching sees it.
pub(super) struct Asked<'a> {
    pub api: Api,
    pub model: Option<&'a str>,
    pub body: &'a Sent,
    pub headers: &'a hyper::HeaderMap,
}

/// A request body, prepared for matching before the session lock is taken where the mode
/// compares prepared bodies (conversation), else as sent.
pub(super) enum Sent {
    Raw(Value),
    Prepared(Prepared),
}

impl Sent {
    /// `body` (with the `model` the request names) as `matcher` needs it.
    pub fn new(matcher: &Matcher, body: Value, model: Option<&str>) -> Sent {
        if matcher.mode == ServeMatch::Conversation {
            Sent::Prepared(matcher.prepare_owned(body, model))
        } else {
            Sent::Raw(body)
        }
    }

    /// The body: as sent, or canonical when it was prepared (conversation mode).
    fn value(&self) -> &Value {
        match self {
            Sent::Raw(v) => v,
            Sent::Prepared(p) => p.value(),
        }
    }

    /// The body prepared by `matcher` (without a model of its own).
    fn prepared(&self, matcher: &Matcher) -> Cow<'_, Prepared> {
        match self {
            Sent::Prepared(p) => Cow::Borrowed(p),
            Sent::Raw(v) => Cow::Owned(matcher.prepare(v, None)),
        }
    }
}

/// The interaction chosen to answer a request.
pub(super) struct Chosen {
    pub cassette: usize,
    pub index: usize,
    pub session: String,
    /// `opened`, `continued`, `retry` or `in-order` (see the request log).
    pub result: &'static str,
    /// The session had been forgotten past `max_sessions` and starts over here.
    pub restarted: bool,
}

/// The answer chosen.
pub(super) enum Pick {
    Play(Chosen),
    Miss {
        /// 404 for an API no cassette speaks, else 400 (a status agents do not retry).
        status: u16,
        kind: &'static str,
        /// `miss` or `exhausted`.
        result: &'static str,
        message: String,
        session: Option<String>,
        extra: Option<Value>,
    },
}

/// How a cassette position ranks for opening a session (lower first).
type OpenRank = (bool, usize, usize, usize);

struct Track {
    session: String,
    explicit: bool,
    cassette: usize,
    cursor: usize,
    last: Option<usize>,
}

/// The mutable state: sessions, what was played, divergences.
///
/// Every index here is kept up to date as sessions come and go, so that forgetting one
/// session costs only that session's entries: a server past `--max-sessions` forgets one
/// session per new one, under the lock every request takes, and must not stop to rebuild.
#[derive(Default)]
pub(super) struct Sessions {
    /// Track id → track. Ids grow with each new track, so id order is age order.
    tracks: BTreeMap<u64, Track>,
    next_track: u64,
    /// Session key → its tracks' ids (ascending, so the oldest track still wins ties), so a
    /// request looks only at its own session's tracks and a server that has seen many
    /// sessions does not slow down with each.
    by_session: HashMap<String, Vec<u64>>,
    /// Tracks of requests without `x-tapeloop-session`.
    unnamed: BTreeSet<u64>,
    /// Tracks per cassette (opening prefers the cassette fewest tracks use).
    users: Vec<usize>,
    anonymous: u64,
    /// Sequence and strict: (session key, cassette) → next interaction index.
    cursors: BTreeMap<(String, usize), usize>,
    /// Session key → what it was served.
    pub history: BTreeMap<String, Served>,
    /// Request number of each session's last play → the session: the least recently served
    /// first (what [`Sessions::evict`] forgets).
    by_use: BTreeMap<u64, String>,
    /// At most this many sessions are kept ([`super::ServeOptions::max_sessions`]).
    max_sessions: usize,
    /// Sessions forgotten to stay within `max_sessions`.
    pub evicted: u64,
    /// The sessions forgotten past `max_sessions`, so that one which comes back is told it
    /// starts over.
    forgotten: Forgotten,
    /// Forgotten sessions that came back.
    pub restarted: u64,
    pub played: Vec<Vec<bool>>,
    pub requests: u64,
    pub divergences: Vec<Divergence>,
}

/// What one session was served.
pub(super) struct Served {
    /// (cassette, interaction) in serving order.
    pub plays: Vec<(usize, usize)>,
    /// The request number of its last play (its key in [`Sessions::by_use`]).
    last: u64,
}

/// Hashes of the keys of forgotten sessions, at most about `max_sessions` of them in two
/// generations: when the newer is half full it becomes the older and the older is dropped, so
/// the most recently forgotten are always remembered. A hash instead of the key keeps memory
/// small; two keys that collide would only mislabel a new session as restarted.
#[derive(Default)]
struct Forgotten {
    newer: HashSet<u64>,
    older: HashSet<u64>,
}

impl Forgotten {
    fn insert(&mut self, key: &str, max_sessions: usize) {
        if self.newer.len() >= (max_sessions / 2).max(1) {
            self.older = std::mem::take(&mut self.newer);
        }
        self.newer.insert(key_hash(key));
    }

    /// Whether `key` was forgotten; it is no longer remembered as such.
    fn take(&mut self, key: &str) -> bool {
        let h = key_hash(key);
        self.newer.remove(&h) | self.older.remove(&h)
    }

    fn clear(&mut self) {
        self.newer.clear();
        self.older.clear();
    }
}

/// The hash [`Forgotten`] keeps of a session key: fixed keys, so the same in every run.
fn key_hash(key: &str) -> u64 {
    BuildHasherDefault::<DefaultHasher>::default().hash_one(key)
}

fn succeeded(inter: &IndexedInteraction) -> bool {
    inter.response.as_ref().is_some_and(|h| h.status < 400)
        && inter.end.is_some_and(|e| e.outcome == EndOutcome::Complete)
}

impl Sessions {
    /// No sessions yet; at most `max_sessions` kept (the least recently served are forgotten).
    pub fn new(catalog: &Catalog, max_sessions: usize) -> Sessions {
        Sessions {
            max_sessions: max_sessions.max(1),
            users: vec![0; catalog.cassettes.len()],
            played: catalog
                .cassettes
                .iter()
                .map(|c| vec![false; c.interactions.len()])
                .collect(),
            ..Sessions::default()
        }
    }

    /// Forget every session (`None`) or one; returns how many were forgotten. What was played
    /// stays counted (for the unused report at shutdown).
    pub fn reset(&mut self, session: Option<&str>) -> usize {
        let Some(name) = session else {
            let n = self.history.len();
            self.tracks.clear();
            self.by_session.clear();
            self.unnamed.clear();
            self.users.iter_mut().for_each(|u| *u = 0);
            self.cursors.clear();
            self.history.clear();
            self.by_use.clear();
            self.forgotten.clear();
            return n;
        };
        let header = format!("header:{name}");
        let mut n = 0;
        for key in [name, header.as_str()] {
            // Reset on purpose: a later return is expected, not news.
            self.forgotten.take(key);
            n += usize::from(self.forget(key));
        }
        n
    }

    /// Forget session `key`: its tracks, cursors, history and last use; whether it was known.
    fn forget(&mut self, key: &str) -> bool {
        let known = self.history.remove(key);
        if let Some(served) = &known {
            self.by_use.remove(&served.last);
        }
        for id in self.by_session.remove(key).unwrap_or_default() {
            if let Some(t) = self.tracks.remove(&id) {
                self.users[t.cassette] -= 1;
                if !t.explicit {
                    self.unnamed.remove(&id);
                }
            }
        }
        // Sequence and strict modes: the session's cursors sit together, keyed by it first.
        if !self.cursors.is_empty() {
            let gone: Vec<(String, usize)> = self
                .cursors
                .range(&(key.to_string(), 0)..)
                .take_while(|((k, _), _)| k == key)
                .map(|(k, _)| k.clone())
                .collect();
            for k in gone {
                self.cursors.remove(&k);
            }
        }
        known.is_some()
    }

    /// Past `max_sessions`, forget the least recently served session. A forgotten session
    /// that comes back starts over, as after `/_tapeloop/reset` for it, and is told so
    /// ([`Chosen::restarted`]).
    fn evict(&mut self) {
        while self.history.len() > self.max_sessions {
            let Some((_, key)) = self.by_use.pop_first() else {
                return;
            };
            self.evicted += 1;
            self.forgotten.insert(&key, self.max_sessions);
            self.forget(&key);
        }
    }

    /// Add a track (its session's newest).
    fn add_track(&mut self, track: Track) {
        let id = self.next_track;
        self.next_track += 1;
        self.users[track.cassette] += 1;
        if !track.explicit {
            self.unnamed.insert(id);
        }
        self.by_session
            .entry(track.session.clone())
            .or_default()
            .push(id);
        self.tracks.insert(id, track);
    }

    /// The tracks a request may continue, oldest first: its session's, or every unnamed one.
    fn own_tracks(&self, explicit: Option<&str>) -> Vec<u64> {
        match explicit {
            Some(k) => self.by_session.get(k).cloned().unwrap_or_default(),
            None => self.unnamed.iter().copied().collect(),
        }
    }

    /// Choose the answer to `asked` and record it as played.
    pub fn pick(&mut self, catalog: &Catalog, asked: &Asked) -> Pick {
        self.requests += 1;
        if !catalog.cassettes.iter().any(|c| c.header.api == asked.api) {
            return Pick::Miss {
                status: 404,
                kind: "not_found",
                result: "miss",
                message: format!("no cassette with api `{}` is being served", asked.api),
                session: None,
                extra: None,
            };
        }
        let mut pick = match catalog.matcher.mode {
            ServeMatch::Conversation => self.by_conversation(catalog, asked),
            ServeMatch::Sequence | ServeMatch::Strict => self.in_order(catalog, asked),
        };
        if let Pick::Play(c) = &mut pick {
            // One lookup: a session new to the history may be one forgotten before.
            let served = match self.history.entry(c.session.clone()) {
                Entry::Occupied(e) => {
                    let served = e.into_mut();
                    self.by_use.remove(&served.last);
                    served
                }
                Entry::Vacant(e) => {
                    c.restarted = self.forgotten.take(&c.session);
                    e.insert(Served {
                        plays: Vec::new(),
                        last: 0,
                    })
                }
            };
            served.plays.push((c.cassette, c.index));
            served.last = self.requests;
            self.by_use.insert(self.requests, c.session.clone());
            self.restarted += u64::from(c.restarted);
            self.played[c.cassette][c.index] = true;
            self.evict();
        }
        pick
    }

    fn by_conversation(&mut self, catalog: &Catalog, asked: &Asked) -> Pick {
        let sent = asked.body.prepared(&catalog.matcher);
        let explicit = asked
            .headers
            .get("x-tapeloop-session")
            .and_then(|v| v.to_str().ok())
            .map(|v| format!("header:{v}"));
        let own = self.own_tracks(explicit.as_deref());
        // Many unnamed tracks often sit on the same cassette: match each recorded request
        // against this one at most once.
        let mut memo: HashMap<(usize, usize), bool> = HashMap::new();
        let mut matches = |c: usize, i: usize| {
            *memo
                .entry((c, i))
                .or_insert_with(|| catalog.matches(c, i, &sent))
        };
        // 1. Continue a track.
        let mut best: Option<(usize, u64, usize)> = None; // (skipped, track, index)
        for &ti in &own {
            let t = &self.tracks[&ti];
            if catalog.cassettes[t.cassette].header.api != asked.api {
                continue;
            }
            let n = catalog.cassettes[t.cassette].interactions.len();
            if let Some(i) = (t.cursor..n).find(|&i| matches(t.cassette, i)) {
                let skipped = i - t.cursor;
                if best.is_none_or(|(s, _, _)| skipped < s) {
                    best = Some((skipped, ti, i));
                }
            }
        }
        // (`own` holds only live tracks, so the lookup finds it.)
        if let Some((t, i)) = best.and_then(|(_, ti, i)| Some((self.tracks.get_mut(&ti)?, i))) {
            let retry = t.last.is_some_and(|l| {
                catalog.inter(t.cassette, l).step == catalog.inter(t.cassette, i).step
            });
            t.cursor = i + 1;
            t.last = Some(i);
            return Pick::Play(Chosen {
                cassette: t.cassette,
                index: i,
                session: t.session.clone(),
                result: if retry { "retry" } else { "continued" },
                restarted: false,
            });
        }
        // 2. A retry past the recorded attempts: the same request as a track's last, which failed.
        if let Some(t) = own.iter().map(|ti| &self.tracks[ti]).find(|t| {
            t.last.is_some_and(|l| {
                matches(t.cassette, l)
                    && (explicit.is_some() || !succeeded(catalog.inter(t.cassette, l)))
            })
        }) {
            return Pick::Miss {
                status: 400,
                kind: "tapeloop_cassette_exhausted",
                result: "exhausted",
                message: format!(
                    "{}: every recorded attempt of this request was already played for session {} (POST /_tapeloop/reset to replay again)",
                    catalog.path(t.cassette),
                    t.session
                ),
                session: Some(t.session.clone()),
                extra: None,
            };
        }
        // 3. Open a track where the request matches: a first request first, then the cassette
        //    fewest tracks use, then file order.
        // (rank, cassette, index); rank = (not a first request, tracks on it, cassette, index)
        let mut open: Option<(OpenRank, usize, usize)> = None;
        for (c, cassette) in catalog.cassettes.iter().enumerate() {
            if cassette.header.api != asked.api {
                continue;
            }
            let users = self.users[c];
            if let Some(i) = (0..cassette.interactions.len()).find(|&i| matches(c, i)) {
                let rank = (i != 0, users, c, i);
                if open.as_ref().is_none_or(|(r, _, _)| rank < *r) {
                    open = Some((rank, c, i));
                }
            }
        }
        if let Some((_, c, i)) = open {
            let session = explicit.clone().unwrap_or_else(|| {
                self.anonymous += 1;
                format!("conversation-{}", self.anonymous)
            });
            self.add_track(Track {
                session: session.clone(),
                explicit: explicit.is_some(),
                cassette: c,
                cursor: i + 1,
                last: Some(i),
            });
            return Pick::Play(Chosen {
                cassette: c,
                index: i,
                session,
                result: "opened",
                restarted: false,
            });
        }
        // 4. A miss: name the closest recorded request of the same API.
        let closest = catalog
            .cassettes
            .iter()
            .enumerate()
            .filter(|(_, k)| k.header.api == asked.api)
            .flat_map(|(c, k)| (0..k.interactions.len()).map(move |i| (c, i)))
            .max_by_key(|&(c, i)| {
                (
                    Matcher::closeness(&catalog.prepared[c][i], &sent),
                    std::cmp::Reverse((c, i)),
                )
            });
        let (message, extra) = match closest {
            Some((c, i)) => {
                let inter = catalog.inter(c, i);
                let d = catalog
                    .matcher
                    .difference(&catalog.prepared[c][i], &sent)
                    .expect("a closest request that matched would have been served");
                self.divergences.push(Divergence {
                    cassette: catalog.path(c),
                    session: explicit.clone().unwrap_or_default(),
                    interaction: inter.id,
                    path: d.path.clone(),
                    recorded: d.left.clone(),
                    sent: d.right.clone(),
                });
                (
                    format!(
                        "no recorded request matches this one (match mode conversation); the closest is {} interaction {} (step {}, attempt {}), which differs at {}: recorded {}, sent {}",
                        catalog.path(c), inter.id, inter.step, inter.attempt, d.path, d.left, d.right
                    ),
                    Some(json!({"cassette": catalog.path(c), "interaction": inter.id, "path": d.path})),
                )
            }
            None => ("no recorded request matches this one".to_string(), None),
        };
        Pick::Miss {
            status: 400,
            kind: "tapeloop_no_match",
            result: "miss",
            message,
            session: explicit,
            extra,
        }
    }

    fn in_order(&mut self, catalog: &Catalog, asked: &Asked) -> Pick {
        let session = session_key(asked.headers, asked.body.value());
        let candidates: Vec<usize> = (0..catalog.cassettes.len())
            .filter(|&i| catalog.cassettes[i].header.api == asked.api)
            .collect();
        let by_model: Vec<usize> = candidates
            .iter()
            .copied()
            .filter(|&i| {
                asked.model.is_some() && catalog.cassettes[i].header.model.as_deref() == asked.model
            })
            .collect();
        let pool = if by_model.is_empty() {
            candidates
        } else {
            by_model
        };
        let next_of = |c: usize| {
            self.cursors
                .get(&(session.clone(), c))
                .copied()
                .unwrap_or(0)
        };
        let idx = pool
            .iter()
            .copied()
            .find(|&c| next_of(c) < catalog.cassettes[c].interactions.len())
            .unwrap_or(pool[0]);
        let cassette = &catalog.cassettes[idx];
        let next = next_of(idx);
        let Some(inter) = cassette.interactions.get(next) else {
            return Pick::Miss {
                status: 400,
                kind: "tapeloop_cassette_exhausted",
                result: "exhausted",
                message: format!(
                    "{}: all {} recorded interactions were already played for this session",
                    cassette.path.display(),
                    cassette.interactions.len()
                ),
                session: Some(session),
                extra: None,
            };
        };
        if catalog.matcher.mode == ServeMatch::Strict {
            let m = &catalog.matcher;
            if let Some(d) = m.difference(
                &m.prepare(&inter.request.body, None),
                &asked.body.prepared(m),
            ) {
                let div = Divergence {
                    cassette: catalog.path(idx),
                    session: session.clone(),
                    interaction: inter.id,
                    path: d.path.clone(),
                    recorded: d.left.clone(),
                    sent: d.right.clone(),
                };
                eprintln!(
                    "tapeloop serve: divergence in {} (interaction {}) at {}: recorded {}, sent {}",
                    div.cassette, div.interaction, div.path, div.recorded, div.sent
                );
                self.divergences.push(div);
                return Pick::Miss {
                    status: 400,
                    kind: "tapeloop_divergence",
                    result: "miss",
                    message: format!(
                        "request differs from recorded interaction {} at {}: recorded {}, sent {}",
                        inter.id, d.path, d.left, d.right
                    ),
                    session: Some(session),
                    extra: Some(json!({"path": d.path, "interaction": inter.id})),
                };
            }
        }
        self.cursors.insert((session.clone(), idx), next + 1);
        Pick::Play(Chosen {
            cassette: idx,
            index: next,
            session,
            result: "in-order",
            restarted: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Forgotten;

    #[test]
    fn forgotten_keys_are_told_once_and_the_most_recent_are_kept() {
        let mut f = Forgotten::default();
        for k in ["a", "b", "c", "d", "e"] {
            f.insert(k, 4);
        }
        // Generations of two: {a, b} went when e came; {c, d} and {e} are kept.
        assert!(!f.take("a") && !f.take("b"));
        assert!(f.take("c") && f.take("d") && f.take("e"));
        assert!(!f.take("e"), "told once");
        f.insert("x", 4);
        f.clear();
        assert!(!f.take("x"));
    }
}
