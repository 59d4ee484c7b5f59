//! Worker tests (written next).
