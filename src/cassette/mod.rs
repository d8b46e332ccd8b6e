//! Cassette format v1 (see `FORMATS.md`): JSONL recordings of provider interactions.
