//! Holding prompts to their model's context window: a row whose prompt has more tokens than
//! its model's window (as the price book and the built-in table know it) can only fail, so it is
//! refused before it is sent. Prompts are counted only when their request is longer in bytes than
//! the window in tokens, so ordinary rows cost nothing here. The windows are looked up once per
//! model ([`ContextWindows`]).

use std::collections::HashMap;

use super::Preparer;
use promptmill_core::error::InputError;
use promptmill_core::input::RawRow;
use promptmill_core::models::PriceBook;

/// The context windows of the models rows name, looked up once per model.
pub(super) struct ContextWindows {
    book: PriceBook,
    known: HashMap<String, Option<u64>>,
}

impl ContextWindows {
    fn of(&mut self, model: &str) -> Option<u64> {
        if let Some(&known) = self.known.get(model) {
            return known;
        }
        // A malformed `--prices` entry is reported when the job is priced; here it only means
        // the window is unknown.
        let window = self.book.lookup(model).ok().and_then(|m| m.max_input_tokens);
        self.known.insert(model.to_string(), window);
        window
    }
}

impl Preparer {
    /// Refuses rows whose prompt has more tokens than their model's context window, as the
    /// models in `book` (and the built-in table) know them: such a request can only fail.
    /// Prompts are counted only when their request is longer in bytes than the window in tokens
    /// (a token is at least one byte), so ordinary rows cost nothing here.
    pub fn check_context(mut self, book: PriceBook) -> Preparer {
        self.context = Some(ContextWindows {
            book,
            known: HashMap::new(),
        });
        self
    }

    pub(super) fn fits_context(
        &mut self,
        row: &RawRow,
        model: &str,
        body: &str,
        field: Option<&str>,
    ) -> Result<(), InputError> {
        let Some(context) = &mut self.context else {
            return Ok(());
        };
        let Some(window) = context.of(model) else {
            return Ok(());
        };
        if body.len() as u64 <= window {
            return Ok(());
        }
        let tokens = self
            .endpoint()
            .family()
            .measure(body)
            .map_err(|e| self.err(row, format!("cannot count the request's tokens: {e}")))?
            .0
            .prompt_tokens;
        if tokens <= window {
            return Ok(());
        }
        let err = self.err(
            row,
            format!("the prompt is {tokens} tokens, more than {model}'s context window of {window} tokens"),
        );
        Err(match field {
            Some(f) => err.field(f),
            None => err,
        })
    }
}
