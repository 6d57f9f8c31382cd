//! The tip under "unexpected argument": the closest real flag of the subcommand typed.
//!
//! clap ranks its candidates by Jaro similarity, which puts `--mode` ahead of `--model` for
//! `--modle`. Here the candidates are the subcommand's visible long flags, ranked by
//! Damerau-Levenshtein distance (a swap of two letters is one edit), then by how close the
//! lengths are, then by the longer common prefix. Everything else about clap's message stays.

use std::ffi::OsString;

use clap::error::{ContextKind, ContextValue, ErrorKind};

/// Replaces clap's "a similar argument exists" tip of an unknown-flag error with the closest
/// flag; any other error is returned as it is.
pub fn closest_flag_tip(mut err: clap::Error, cmd: &clap::Command, args: &[OsString]) -> clap::Error {
    if err.kind() != ErrorKind::UnknownArgument {
        return err;
    }
    let Some(ContextValue::String(typed)) = err.get(ContextKind::InvalidArg) else {
        return err;
    };
    let Some(name) = typed.strip_prefix("--") else {
        return err;
    };
    let name = name.split('=').next().unwrap_or(name).to_string();
    let sub = args
        .iter()
        .skip(1)
        .filter_map(|a| a.to_str())
        .find_map(|a| cmd.find_subcommand(a))
        .unwrap_or(cmd);
    let longs: Vec<&str> = sub
        .get_arguments()
        .filter(|a| !a.is_hide_set())
        .filter_map(|a| a.get_long())
        .chain(["help"])
        .collect();
    if let Some(best) = closest(&name, &longs) {
        err.insert(
            ContextKind::SuggestedArg,
            ContextValue::String(format!("--{best}")),
        );
        // clap's usage line names the flag it suggested; name none rather than the wrong one.
        err.insert(
            ContextKind::Usage,
            ContextValue::StyledStr(sub.clone().render_usage()),
        );
    }
    err
}

/// The candidate nearest to `typed`, if any is near enough to be what was meant.
fn closest<'a>(typed: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let common_prefix = |c: &str| typed.chars().zip(c.chars()).take_while(|(a, b)| a == b).count();
    let (distance, best) = candidates
        .iter()
        .map(|c| {
            let d = strsim::damerau_levenshtein(typed, c);
            let lengths = typed.chars().count().abs_diff(c.chars().count());
            ((d, lengths, std::cmp::Reverse(common_prefix(c))), *c)
        })
        .min()?;
    // A third of the word mistyped, at least two edits: beyond that a tip is a guess.
    let allowed = (typed.chars().count() / 3).max(2);
    (distance.0 <= allowed).then_some(best)
}

#[cfg(test)]
mod tests {
    use super::closest;

    #[test]
    fn a_swap_of_two_letters_beats_a_missing_one() {
        assert_eq!(closest("modle", &["mode", "model", "max-tokens"]), Some("model"));
        assert_eq!(closest("mdoe", &["mode", "model"]), Some("mode"));
    }

    #[test]
    fn far_words_get_no_tip() {
        assert_eq!(closest("concurrency", &["concurrency"]), Some("concurrency"));
        assert_eq!(closest("xyzzy", &["model", "mode"]), None);
    }

    #[test]
    fn ties_go_to_the_longer_common_prefix() {
        assert_eq!(closest("abx", &["zbx", "aby"]), Some("aby"));
        assert_eq!(closest("outpt", &["output", "input"]), Some("output"));
    }
}
