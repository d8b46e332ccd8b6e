//! Import of vcrpy YAML cassettes (in progress).
