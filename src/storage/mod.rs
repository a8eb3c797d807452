//! Storage contract: opaque values under string keys, one global revision.
