//! Several rows in one Batch request, for a family that joins rows (embeddings: one line, many
//! inputs). Such a line's `custom_id` names the run of the part's rows it carries,
//! `promptmill-rows-FIRST-LAST` (their input sequence numbers): a part's rows are fixed when it
//! is planned and its lines take them in order, so the range names exactly the line's rows,
//! whatever `--rows-per-request` a later run is given. A line of one row keeps the row's id, as
//! every line did before rows were joined.

const PREFIX: &str = "promptmill-rows-";

/// The `custom_id` of a line carrying the part's rows `first..=last`.
pub fn group_id(first: i64, last: i64) -> String {
    format!("{PREFIX}{first}-{last}")
}

/// The rows a line's `custom_id` names, when it names a run of rows.
pub fn parse_group_id(custom_id: &str) -> Option<(i64, i64)> {
    let (first, last) = custom_id.strip_prefix(PREFIX)?.split_once('-')?;
    let (first, last) = (first.parse().ok()?, last.parse().ok()?);
    (first <= last).then_some((first, last))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_id_reads_back_as_its_range_and_nothing_else_does() {
        assert_eq!(parse_group_id(&group_id(3, 17)), Some((3, 17)));
        assert_eq!(parse_group_id("r1"), None);
        assert_eq!(parse_group_id("promptmill-rows-9-3"), None);
        assert_eq!(parse_group_id("promptmill-rows-1-x"), None);
        assert_eq!(parse_group_id("promptmill-rows-1"), None);
    }
}
