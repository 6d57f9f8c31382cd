//! Catching CSV quoting the `csv` crate forgives silently.
//!
//! The `csv` crate never fails on quotes: a quoted field that is never closed runs to the end of
//! the file (every later row becomes part of one field), and text after a closing quote
//! (`"He said "hi" to me"`) is glued onto the field. Both lose or garble data without a word, so
//! this reader watches the bytes on their way to the parser, follows the same quoting rules
//! (RFC 4180 with `""` for a literal quote, `,` between fields, `\r`, `\n` or `\r\n` between
//! records), and notes where a problem is: the byte offset, the line, and the column. `csv.rs`
//! then reports the record that contains that offset. A quote inside an unquoted field (`5" pipe`)
//! is taken literally, as the `csv` crate and most spreadsheets do; it is not a problem.
//!
//! It also bounds memory: a record longer than the row limit ([`crate::input::MAX_ROW_BYTES`]; an
//! unclosed quote early in a big file would otherwise make the rest of the file one record held in
//! memory) stops the read.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::sync::{Arc, Mutex};

/// What is wrong with the quoting of one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// A quoted field whose closing quote never comes.
    Unclosed,
    /// Text right after a field's closing quote, other than `,` or the end of the line.
    TextAfterQuote,
}

/// A quoting problem: where it is in the file, the line its record starts on, and which column
/// it is in (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Problem {
    pub offset: u64,
    pub line: u64,
    pub record_line: u64,
    pub column: usize,
    pub kind: Kind,
}

impl Problem {
    pub(super) fn message(&self) -> String {
        match self.kind {
            Kind::Unclosed => format!(
                "the quote that opens this field on line {} is never closed \
                 (the rest of the file would be one field)",
                self.line
            ),
            Kind::TextAfterQuote => format!(
                "text after the closing quote on line {}; a quote inside a quoted field must be doubled (\"\")",
                self.line
            ),
        }
    }
}

/// Problems found ahead of the parser, in file order. The reader pushes; `csv.rs` pops those
/// before the end of each record it reads, so this holds at most a parser buffer's worth.
pub(super) type Problems = Arc<Mutex<VecDeque<Problem>>>;

/// The error a read fails with when one record outgrows the row limit; `csv.rs` turns it into an
/// input error at `line`.
#[derive(Debug, thiserror::Error)]
#[error("the row starting on line {line} is longer than the limit of {limit} bytes")]
pub(super) struct RowTooLong {
    pub line: u64,
    pub limit: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between records, skipping blank lines, as the `csv` crate does.
    StartRecord,
    StartField,
    Unquoted,
    Quoted,
    /// A quote inside a quoted field: a closing quote, or the first half of `""`.
    QuoteInQuoted,
}

pub(super) struct QuoteCheck<R> {
    inner: R,
    problems: Problems,
    /// The longest record allowed, in bytes.
    max_row: u64,
    state: State,
    offset: u64,
    line: u64,
    column: usize,
    /// Where the current quoted field opened: offset and line.
    opened: (u64, u64),
    /// Where the current record started: offset and line.
    record: (u64, u64),
    /// A problem was already noted for the current record (one is enough to reject it).
    noted: bool,
    at_end: bool,
}

impl<R> QuoteCheck<R> {
    pub(super) fn new(inner: R, problems: Problems, max_row: u64) -> Self {
        QuoteCheck {
            inner,
            problems,
            max_row,
            state: State::StartRecord,
            offset: 0,
            line: 1,
            column: 0,
            opened: (0, 1),
            record: (0, 1),
            noted: false,
            at_end: false,
        }
    }

    fn note(&mut self, offset: u64, line: u64, kind: Kind) {
        if !self.noted {
            self.noted = true;
            let problem = Problem {
                offset,
                line,
                record_line: self.record.1,
                column: self.column,
                kind,
            };
            self.problems
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push_back(problem);
        }
    }

    fn end_record(&mut self) {
        self.state = State::StartRecord;
        self.column = 0;
        self.noted = false;
    }

    fn scan(&mut self, bytes: &[u8]) {
        for &b in bytes {
            let terminator = b == b'\n' || b == b'\r';
            match self.state {
                State::StartRecord if terminator => {}
                State::StartRecord | State::StartField => {
                    if self.state == State::StartRecord {
                        self.record = (self.offset, self.line);
                    }
                    self.state = match b {
                        b'"' => {
                            self.opened = (self.offset, self.line);
                            State::Quoted
                        }
                        b',' => {
                            self.column += 1;
                            State::StartField
                        }
                        _ if terminator => {
                            self.end_record();
                            State::StartRecord
                        }
                        _ => State::Unquoted,
                    };
                }
                State::Unquoted => match b {
                    b',' => {
                        self.column += 1;
                        self.state = State::StartField;
                    }
                    _ if terminator => self.end_record(),
                    _ => {}
                },
                State::Quoted => {
                    if b == b'"' {
                        self.state = State::QuoteInQuoted;
                    }
                }
                State::QuoteInQuoted => match b {
                    b'"' => self.state = State::Quoted,
                    b',' => {
                        self.column += 1;
                        self.state = State::StartField;
                    }
                    _ if terminator => self.end_record(),
                    _ => {
                        self.note(self.offset, self.line, Kind::TextAfterQuote);
                        self.state = State::Unquoted;
                    }
                },
            }
            if b == b'\n' {
                self.line += 1;
            }
            self.offset += 1;
        }
    }

    fn finish(&mut self) {
        if !self.at_end {
            self.at_end = true;
            if self.state == State::Quoted {
                let (offset, line) = self.opened;
                self.note(offset, line, Kind::Unclosed);
            }
        }
    }
}

impl<R: Read> Read for QuoteCheck<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.finish();
            return Ok(0);
        }
        self.scan(&buf[..n]);
        if self.state != State::StartRecord && self.offset - self.record.0 > self.max_row {
            return Err(io::Error::other(RowTooLong {
                line: self.record.1,
                limit: self.max_row,
            }));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems_of(text: &[u8]) -> Vec<Problem> {
        let problems = Problems::default();
        let mut reader = QuoteCheck::new(text, Arc::clone(&problems), 1 << 20);
        io::copy(&mut reader, &mut io::sink()).unwrap();
        let found = problems.lock().unwrap().iter().copied().collect();
        found
    }

    #[test]
    fn well_formed_quoting_has_no_problems() {
        let text = b"a,b\n\"x, y\",\"say \"\"hi\"\"\"\r\n\"multi\nline\",5\" pipe\n\n\"\",\n";
        assert_eq!(problems_of(text), vec![]);
    }

    #[test]
    fn an_unclosed_quote_is_noted_where_it_opens() {
        let problems = problems_of(b"a,b\n1,2\n3,\"never\n4,5\n");
        assert_eq!(
            problems,
            vec![Problem {
                offset: 10,
                line: 3,
                record_line: 3,
                column: 1,
                kind: Kind::Unclosed
            }]
        );
    }

    #[test]
    fn text_after_a_closing_quote_is_noted_once_per_record() {
        let problems = problems_of(b"a,b\n\"x\"y,\"p\"q\n1,\"ok\"!\n");
        let at: Vec<_> = problems.iter().map(|p| (p.line, p.column, p.kind)).collect();
        assert_eq!(
            at,
            vec![(2, 0, Kind::TextAfterQuote), (3, 1, Kind::TextAfterQuote)]
        );
    }

    #[test]
    fn a_record_longer_than_the_limit_fails_the_read() {
        let mut text = b"a\n\"".to_vec();
        text.resize(text.len() + 100_000, b'x');
        let mut reader = QuoteCheck::new(&text[..], Problems::default(), 64 * 1024);
        let err = io::copy(&mut reader, &mut io::sink()).unwrap_err();
        let too_long = err.get_ref().and_then(|e| e.downcast_ref::<RowTooLong>());
        assert_eq!(too_long.map(|e| e.line), Some(2));
    }
}
