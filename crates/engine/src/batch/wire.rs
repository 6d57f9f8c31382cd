//! The Files and Batches APIs' objects as promptmill reads them (`../shared/openai-openapi.yaml`:
//! `OpenAIFile`, `Batch`, `BatchRequestCounts`, `BatchError`), and the lines of a batch's output
//! and error files. Only the fields promptmill uses are read; every other field is ignored, and a
//! field a server leaves out or sends as `null` reads as absent, so that servers which implement
//! a subset of the API (aimock, LiteLLM, vLLM) are understood too.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// `OpenAIFile`.
#[derive(Debug, Clone, Deserialize)]
pub struct FileObject {
    pub id: String,
    #[serde(default)]
    pub bytes: Option<u64>,
    #[serde(default)]
    pub filename: Option<String>,
    #[serde(default)]
    pub purpose: Option<String>,
    /// Azure processes an upload before a batch may use it: `pending` or `running`, then
    /// `processed` (or `error`, with `status_details`). OpenAI's field is deprecated.
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub status_details: Option<serde_json::Value>,
}

/// A page of `GET /files` or `GET /batches`.
#[derive(Debug, Clone, Deserialize)]
pub struct List<T> {
    pub data: Vec<T>,
    #[serde(default)]
    pub has_more: bool,
    #[serde(default)]
    pub last_id: Option<String>,
}

/// `Batch.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchStatus {
    Validating,
    InProgress,
    Finalizing,
    Completed,
    Failed,
    Expired,
    Cancelling,
    Cancelled,
}

impl BatchStatus {
    /// The batch will not change any more; its files (if any) are final.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            BatchStatus::Completed | BatchStatus::Failed | BatchStatus::Expired | BatchStatus::Cancelled
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            BatchStatus::Validating => "validating",
            BatchStatus::InProgress => "in_progress",
            BatchStatus::Finalizing => "finalizing",
            BatchStatus::Completed => "completed",
            BatchStatus::Failed => "failed",
            BatchStatus::Expired => "expired",
            BatchStatus::Cancelling => "cancelling",
            BatchStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<BatchStatus> {
        serde_json::from_value(serde_json::Value::String(s.to_string())).ok()
    }
}

/// `BatchRequestCounts`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestCounts {
    #[serde(default)]
    pub total: u64,
    #[serde(default)]
    pub completed: u64,
    #[serde(default)]
    pub failed: u64,
}

pub use crate::store::BatchError;

#[derive(Debug, Clone, Default, Deserialize)]
pub struct BatchErrors {
    #[serde(default)]
    pub data: Vec<BatchError>,
}

/// `Batch`.
#[derive(Debug, Clone, Deserialize)]
pub struct Batch {
    pub id: String,
    pub status: BatchStatus,
    #[serde(default)]
    pub input_file_id: Option<String>,
    #[serde(default)]
    pub output_file_id: Option<String>,
    #[serde(default)]
    pub error_file_id: Option<String>,
    #[serde(default)]
    pub request_counts: Option<RequestCounts>,
    #[serde(default)]
    pub errors: Option<BatchErrors>,
    #[serde(default)]
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
    /// Unix seconds.
    #[serde(default)]
    pub created_at: Option<i64>,
}

impl Batch {
    pub fn counts(&self) -> RequestCounts {
        self.request_counts.unwrap_or_default()
    }

    pub fn error_list(&self) -> &[BatchError] {
        self.errors.as_ref().map_or(&[], |e| &e.data)
    }
}

/// One line of a batch's input file.
#[derive(Debug, Serialize)]
pub struct InputLine<'a> {
    pub custom_id: &'a str,
    /// `None` for a provider whose lines are `{custom_id, body}` (Together).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<&'static str>,
    pub body: &'a RawValue,
}

/// One line of a batch's output or error file: `{"custom_id", "response": {"status_code",
/// "body"}, "error": {"code", "message"}}`.
#[derive(Debug, Deserialize)]
pub struct OutputLine<'a> {
    #[serde(borrow)]
    pub custom_id: std::borrow::Cow<'a, str>,
    #[serde(default, borrow)]
    pub response: Option<LineResponse<'a>>,
    #[serde(default)]
    pub error: Option<LineError>,
}

#[derive(Debug, Deserialize)]
pub struct LineResponse<'a> {
    pub status_code: u16,
    #[serde(default, borrow)]
    pub body: Option<&'a RawValue>,
}

#[derive(Debug, Deserialize)]
pub struct LineError {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_spec_example_batch() {
        let text = r#"{"id": "batch_abc123", "object": "batch", "endpoint": "/v1/chat/completions",
            "errors": null, "input_file_id": "file-abc123", "completion_window": "24h",
            "status": "completed", "output_file_id": "file-cvaTdG", "error_file_id": "file-HOWS94",
            "created_at": 1711471533, "in_progress_at": 1711471538, "expires_at": 1711557933,
            "finalizing_at": 1711493133, "completed_at": 1711493163, "failed_at": null,
            "expired_at": null, "cancelling_at": null, "cancelled_at": null,
            "request_counts": {"total": 100, "completed": 95, "failed": 5},
            "metadata": {"customer_id": "user_123456789", "batch_description": "Nightly job"}}"#;
        let b: Batch = serde_json::from_str(text).unwrap();
        assert_eq!(b.status, BatchStatus::Completed);
        assert!(b.status.is_terminal());
        assert_eq!(b.output_file_id.as_deref(), Some("file-cvaTdG"));
        assert_eq!(
            b.counts(),
            RequestCounts {
                total: 100,
                completed: 95,
                failed: 5
            }
        );
        assert!(b.error_list().is_empty());
    }

    #[test]
    fn failed_batch_errors_name_the_line() {
        let text = r#"{"id": "b", "status": "failed", "errors": {"object": "list", "data": [
            {"code": "invalid_json_line", "message": "This line is not parseable as valid JSON.",
             "param": null, "line": 7}]}}"#;
        let b: Batch = serde_json::from_str(text).unwrap();
        assert_eq!(
            b.error_list()[0].to_string(),
            "line 7: invalid_json_line: This line is not parseable as valid JSON."
        );
    }

    #[test]
    fn output_and_error_lines() {
        let ok = r#"{"id":"batch_req_1","custom_id":"r\"1","response":{"status_code":200,"request_id":"x","body":{"a":1}},"error":null}"#;
        let line: OutputLine = serde_json::from_str(ok).unwrap();
        assert_eq!(line.custom_id, "r\"1");
        let resp = line.response.unwrap();
        assert_eq!(resp.status_code, 200);
        assert_eq!(resp.body.unwrap().get(), r#"{"a":1}"#);
        let expired = r#"{"id":"batch_req_2","custom_id":"r2","response":null,"error":{"code":"batch_expired","message":"too late"}}"#;
        let line: OutputLine = serde_json::from_str(expired).unwrap();
        assert!(line.response.is_none());
        assert_eq!(line.error.unwrap().code.as_deref(), Some("batch_expired"));
    }

    #[test]
    fn statuses_round_trip() {
        for s in [
            "validating",
            "in_progress",
            "finalizing",
            "completed",
            "failed",
            "expired",
            "cancelling",
            "cancelled",
        ] {
            assert_eq!(BatchStatus::parse(s).unwrap().as_str(), s);
        }
        assert_eq!(BatchStatus::parse("weird"), None);
    }
}
