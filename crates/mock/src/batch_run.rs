//! Answering a batch's lines: each line's body goes through `service::answer_body`, the very
//! code that answers a live request after its request-level checks (so a line gets the same
//! body, usage and directive errors a live request would; random faults, latency, --rpm/--tpm
//! and --fail-first stay live-only, and nothing here touches `/mock/stats`). Answers are
//! appended, as OpenAI's output-file and error-file lines, to two buffers that become the
//! batch's files when it ends. When a batch advances, and how far, is `batches`' business.

use bytes::Bytes;

use super::batch_lines::RequestLine;
use super::reply::{Stamp, Usage};
use super::service::{self, Answered, Endpoint, State};

const EXPIRED_MESSAGE: &str = "This request could not be executed before the completion window expired.";

/// The lines answered so far, in file order, and what they produced.
#[derive(Default)]
pub(crate) struct Run {
    /// How many of the batch's lines have been answered (a prefix of them).
    pub processed: usize,
    /// Lines answered with a 200.
    pub completed: u64,
    /// Lines answered with an error, or expired.
    pub failed: u64,
    /// Usage of the successful lines.
    pub usage: Usage,
    output: Vec<u8>,
    errors: Vec<u8>,
}

/// Who a batch is, for the ids and timestamps of its answers.
#[derive(Clone, Copy)]
pub(crate) struct Owner {
    /// The batch's creation number.
    pub seq: u64,
    pub created_at: u64,
    pub endpoint: Endpoint,
}

impl Run {
    /// Answers the lines from the first unanswered one up to (not including) `upto`.
    pub fn advance(&mut self, state: &State, owner: Owner, lines: &[RequestLine], upto: usize) {
        let upto = upto.min(lines.len());
        for line in lines.get(self.processed..upto).unwrap_or_default() {
            let stamp = Stamp::Batch {
                batch: owner.seq,
                line: line.number,
                created: owner.created_at,
            };
            match service::answer_body(state, owner.endpoint, &line.body, stamp) {
                Answered::Reply(reply) => {
                    self.completed += 1;
                    self.usage.prompt_tokens += reply.usage.prompt_tokens;
                    self.usage.completion_tokens += reply.usage.completion_tokens;
                    self.usage.total_tokens += reply.usage.total_tokens;
                    write_response(&mut self.output, owner.seq, line, 200, &reply.body);
                }
                Answered::Shaped(shaped) => {
                    self.completed += 1;
                    if let Some(usage) = shaped.usage {
                        self.usage.prompt_tokens += usage.prompt_tokens;
                        self.usage.completion_tokens += usage.completion_tokens;
                        self.usage.total_tokens += usage.total_tokens;
                    }
                    write_response(&mut self.output, owner.seq, line, 200, &shaped.body);
                }
                Answered::Error(_, error) => {
                    self.failed += 1;
                    write_response(
                        &mut self.errors,
                        owner.seq,
                        line,
                        error.status.as_u16(),
                        &error.body(),
                    );
                }
            }
        }
        self.processed = self.processed.max(upto);
    }

    /// Puts every unanswered line in the error file as `batch_expired`.
    pub fn expire_rest(&mut self, owner: Owner, lines: &[RequestLine]) {
        for line in lines.get(self.processed..).unwrap_or_default() {
            self.failed += 1;
            start_line(&mut self.errors, owner.seq, line);
            self.errors
                .extend_from_slice(br#","response":null,"error":{"code":"batch_expired","message":"#);
            json_str(&mut self.errors, EXPIRED_MESSAGE);
            self.errors.extend_from_slice(b"}}\n");
        }
        self.processed = lines.len();
    }

    /// The output file and the error file, each only when it has lines (as OpenAI: no file
    /// rather than an empty one).
    pub fn take_files(&mut self) -> (Option<Bytes>, Option<Bytes>) {
        let file = |buffer: &mut Vec<u8>| (!buffer.is_empty()).then(|| Bytes::from(std::mem::take(buffer)));
        (file(&mut self.output), file(&mut self.errors))
    }
}

/// `{"id":"batch_req_…","custom_id":"…"` — the start of every output or error line.
fn start_line(out: &mut Vec<u8>, batch: u64, line: &RequestLine) {
    out.extend_from_slice(br#"{"id":"batch_req_mock_"#);
    out.extend_from_slice(format!("{batch}_{}", line.number).as_bytes());
    out.extend_from_slice(br#"","custom_id":"#);
    json_str(out, &line.custom_id);
}

/// A line that got an HTTP answer: `…,"response":{"status_code":…,"request_id":…,"body":…},"error":null}`.
/// `body` is already JSON and goes in as it is, byte for byte.
fn write_response(out: &mut Vec<u8>, batch: u64, line: &RequestLine, status: u16, body: &[u8]) {
    start_line(out, batch, line);
    out.extend_from_slice(br#","response":{"status_code":"#);
    out.extend_from_slice(status.to_string().as_bytes());
    out.extend_from_slice(br#","request_id":"req_mock_"#);
    out.extend_from_slice(format!("{batch}_{}", line.number).as_bytes());
    out.extend_from_slice(br#"","body":"#);
    out.extend_from_slice(body);
    out.extend_from_slice(b"},\"error\":null}\n");
}

/// Appends `value` as a JSON string. Serializing a `str` cannot fail; should it, `null` keeps
/// the line valid JSON.
fn json_str(out: &mut Vec<u8>, value: &str) {
    if serde_json::to_writer(&mut *out, value).is_err() {
        out.extend_from_slice(b"null");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn line(custom_id: &str, prompt: &str) -> RequestLine {
        let body = serde_json::json!({"model": "m", "messages": [{"role": "user", "content": prompt}]});
        RequestLine {
            number: 3,
            custom_id: custom_id.into(),
            url: "/v1/chat/completions".into(),
            model: None,
            body: Bytes::from(body.to_string()),
        }
    }

    fn lines_of(file: &Bytes) -> Vec<Value> {
        file.split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect()
    }

    #[test]
    fn answers_go_to_the_output_or_the_error_file_and_the_rest_can_expire() {
        let state = State::new(super::super::MockConfig::default()).unwrap();
        let owner = Owner {
            seq: 4,
            created_at: 1_700_000_000,
            endpoint: Endpoint::Chat,
        };
        let lines = [
            line("a \"quoted\" id", "hello"),
            line("b", "[[mock:status=400]]"),
            line("c", "late"),
        ];
        let mut run = Run::default();
        run.advance(&state, owner, &lines, 2);
        run.expire_rest(owner, &lines);
        assert_eq!((run.completed, run.failed, run.processed), (1, 2, 3));
        let (output, errors) = run.take_files();
        let output = lines_of(&output.unwrap());
        assert_eq!(output[0]["custom_id"], "a \"quoted\" id");
        assert_eq!(output[0]["id"], "batch_req_mock_4_3");
        assert_eq!(output[0]["response"]["status_code"], 200);
        assert_eq!(
            output[0]["response"]["body"]["choices"][0]["message"]["content"],
            "Mock reply: hello"
        );
        assert!(output[0]["error"].is_null());
        let errors = lines_of(&errors.unwrap());
        assert_eq!(errors[0]["response"]["status_code"], 400);
        assert_eq!(
            errors[0]["response"]["body"]["error"]["type"],
            "invalid_request_error"
        );
        assert!(errors[1]["response"].is_null());
        assert_eq!(errors[1]["error"]["code"], "batch_expired");
        assert_eq!(run.usage.completion_tokens, 3);
    }
}
