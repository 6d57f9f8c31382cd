//! OpenAI's `Batch` object as a retrieve, a cancel or a list shows it: status, timestamps, file
//! ids, request counts and, once ended, usage.

use super::*;

impl Batch {
    /// [`Batch::object`] in the words of the dialect it was created in (Together's statuses).
    pub(super) fn worded(&self) -> Value {
        let object = serde_json::to_value(self.object()).unwrap_or(Value::Null);
        self.dialect.batch_words(object, false)
    }

    /// OpenAI's `Batch` object as it stands.
    pub(super) fn object(&self) -> BatchObject<'_> {
        let validated = !matches!(self.status, Status::Validating | Status::Failed);
        BatchObject {
            id: &self.id,
            object: "batch",
            endpoint: self.dialect.endpoint_path(self.endpoint),
            model: self.input.model(),
            errors: (self.status == Status::Failed).then(|| ErrorList {
                object: "list",
                data: &self.problems,
            }),
            input_file_id: &self.input_file_id,
            completion_window: "24h",
            status: self.status,
            output_file_id: self.output_file_id.as_deref(),
            error_file_id: self.error_file_id.as_deref(),
            created_at: self.created_at,
            expires_at: self.created_at + WINDOW,
            times: &self.times,
            request_counts: Counts {
                total: if validated {
                    self.input.lines.len() as u64
                } else {
                    0
                },
                completed: self.run.completed,
                failed: self.run.failed,
            },
            usage: BatchUsage {
                input_tokens: self.run.usage.prompt_tokens,
                input_tokens_details: CachedTokens { cached_tokens: 0 },
                output_tokens: self.run.usage.completion_tokens,
                output_tokens_details: ReasoningTokens { reasoning_tokens: 0 },
                total_tokens: self.run.usage.total_tokens,
            },
            metadata: self.metadata.as_ref(),
        }
    }
}

#[derive(Serialize)]
pub(super) struct BatchObject<'a> {
    id: &'a str,
    object: &'static str,
    endpoint: &'static str,
    model: Option<&'a str>,
    errors: Option<ErrorList<'a>>,
    input_file_id: &'a str,
    completion_window: &'static str,
    status: Status,
    output_file_id: Option<&'a str>,
    error_file_id: Option<&'a str>,
    created_at: u64,
    expires_at: u64,
    #[serde(flatten)]
    times: &'a Times,
    request_counts: Counts,
    usage: BatchUsage,
    metadata: Option<&'a Map<String, Value>>,
}

#[derive(Serialize)]
struct ErrorList<'a> {
    object: &'static str,
    data: &'a [LineError],
}

#[derive(Serialize)]
struct Counts {
    total: u64,
    completed: u64,
    failed: u64,
}

#[derive(Serialize)]
struct BatchUsage {
    input_tokens: u64,
    input_tokens_details: CachedTokens,
    output_tokens: u64,
    output_tokens_details: ReasoningTokens,
    total_tokens: u64,
}

#[derive(Serialize)]
struct CachedTokens {
    cached_tokens: u64,
}

#[derive(Serialize)]
struct ReasoningTokens {
    reasoning_tokens: u64,
}
