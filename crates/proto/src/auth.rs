//! Digest authentication (placeholder being written).
