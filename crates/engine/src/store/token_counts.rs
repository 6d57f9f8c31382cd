//! Usage counts as the checkpoint keeps them: summed in SQL counting only values that can be true,
//! read back only when they can be, and clamped on the way in. A checkpoint that holds an
//! absurd count (written before it was checked, or edited) still opens, and the count adds
//! nothing.

use promptmill_core::family::MAX_TOKENS;

/// The SQL sum of a usage column over the selected rows, counting only values that can be true
/// (whole numbers from 0 to [`MAX_TOKENS`]): a checkpoint that holds an absurd count (written
/// before it was checked, or edited) still opens, and such a count adds nothing. `total()` sums
/// in floating point, so it never fails with SQLite's "integer overflow" as `sum()` does.
pub(super) fn token_sum(column: &str) -> String {
    format!(
        "total(CASE WHEN typeof({column}) = 'integer' AND {column} BETWEEN 0 AND {MAX_TOKENS} \
         THEN {column} ELSE 0 END)"
    )
}

/// A sum from [`token_sum`] as a count (the cast saturates; the sum is never negative).
pub(super) fn tokens_of(sum: f64) -> u64 {
    sum as u64
}

/// A stored usage count, when it is one that can be true (see [`token_sum`]).
pub(super) fn trusted_tokens(stored: i64) -> Option<u64> {
    u64::try_from(stored).ok().filter(|&v| v <= MAX_TOKENS)
}

/// A row's stored usage as exported: as stored, or none at all when one of its counts cannot be
/// true (a row's usage is not made of some true and some invented numbers).
pub(super) fn trusted_usage(stored: [Option<i64>; 3]) -> (Option<i64>, Option<i64>, Option<i64>) {
    if stored.iter().flatten().any(|&v| trusted_tokens(v).is_none()) {
        return (None, None, None);
    }
    (stored[0], stored[1], stored[2])
}

/// A usage count as stored: checked on the way in, clamped here all the same so that no count
/// can wrap into a negative INTEGER.
pub(crate) fn stored_tokens(count: u64) -> i64 {
    i64::try_from(count.min(MAX_TOKENS)).unwrap_or(0)
}
