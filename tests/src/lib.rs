//! End-to-end tests live in `tests/tests/`; they run the real `perfagent` and `perfctl`
//! binaries that cargo builds for this workspace.
