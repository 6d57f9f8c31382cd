//! The job: what a run is asked to produce, as it is recorded in the checkpoint.
//!
//! [`JobSpec`] holds every setting that decides what is sent for each row (the input and its
//! fingerprint, templates, model, request parameters, endpoint). It is stored in the database when
//! the input is first read, and a later run of the same command is compared against it field by
//! field: a difference is refused with a message naming each setting that changed. Settings that
//! only decide *how* requests are sent (concurrency, limits, timeouts, attempts) are not part of
//! the job and may change between runs. The API key is never part of anything stored here; only
//! the name of the environment variable that holds it is.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::input::InputFormat;

pub mod settings;

pub use crate::family::Endpoint;

/// Everything that decides the bytes of each request. Compared on resume.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    /// The input file, absolute.
    pub input: PathBuf,
    pub format: InputFormat,
    /// BLAKE3 of the input file's bytes, hex.
    pub fingerprint: String,
    pub template: Option<String>,
    pub system: Option<String>,
    pub id_column: Option<String>,
    /// `--endpoint` as given; the endpoint in force is [`JobRecord::endpoint`].
    pub endpoint: Option<Endpoint>,
    pub model: Option<String>,
    pub max_tokens: Option<u32>,
    pub temperature: Option<f64>,
    pub params: BTreeMap<String, Value>,
    /// `--schema` (or `--fields`) as JSON: every answer is validated against it. Absent in
    /// records made before it existed, and for jobs without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<Value>,
}

impl JobSpec {
    /// Human-readable list of the settings in which `self` (the command) differs from `stored`.
    pub fn changes_from(&self, stored: &JobSpec) -> Vec<String> {
        fn show<T: std::fmt::Debug>(v: &Option<T>) -> String {
            match v {
                Some(v) => format!("{v:?}"),
                None => "(none)".to_string(),
            }
        }
        let mut out = Vec::new();
        if self.fingerprint != stored.fingerprint {
            out.push(format!(
                "the input file's contents ({} now, {} in the checkpoint)",
                self.input.display(),
                stored.input.display()
            ));
        }
        if self.format != stored.format {
            out.push(format!(
                "--format (was {:?}, now {:?})",
                stored.format, self.format
            ));
        }
        let pairs: [(&str, String, String); 7] = [
            ("--template", show(&stored.template), show(&self.template)),
            ("--system", show(&stored.system), show(&self.system)),
            ("--id-column", show(&stored.id_column), show(&self.id_column)),
            ("--endpoint", show(&stored.endpoint), show(&self.endpoint)),
            ("--model", show(&stored.model), show(&self.model)),
            ("--max-tokens", show(&stored.max_tokens), show(&self.max_tokens)),
            (
                "--temperature",
                show(&stored.temperature),
                show(&self.temperature),
            ),
        ];
        for (flag, was, now) in pairs {
            if was != now {
                out.push(format!("{flag} (was {was}, now {now})"));
            }
        }
        if self.schema != stored.schema {
            let shown = |s: &Option<Value>| match s {
                Some(_) => "a schema",
                None => "none",
            };
            let what = match (&stored.schema, &self.schema) {
                (Some(_), Some(_)) => "--schema (the schema changed)".to_string(),
                (was, now) => format!("--schema (was {}, now {})", shown(was), shown(now)),
            };
            out.push(what);
        }
        if self.params != stored.params {
            let keys: std::collections::BTreeSet<&String> =
                self.params.keys().chain(stored.params.keys()).collect();
            for key in keys {
                let (was, now) = (stored.params.get(key), self.params.get(key));
                if was != now {
                    out.push(format!("--param {key} (was {}, now {})", show(&was), show(&now)));
                }
            }
        }
        out
    }
}

/// The version of the job record this build writes. Version 1 had no `version` field (every
/// checkpoint made before it was added reads as 1); 2 is the same fields with the field. A
/// record newer than this build knows is refused (`store::job_record`), never half-read.
/// Raise it when a field changes meaning or a field a resume needs is added without a default.
pub const JOB_RECORD_VERSION: u32 = 2;

fn version_one() -> u32 {
    1
}

/// The job as stored: the spec plus what was resolved when the input was read. Built from
/// types of the job's own (`job::settings`, the family id, and the input's and the models'
/// domain types), never from configuration or command-line types.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    /// [`JOB_RECORD_VERSION`] when written by this build; 1 for records written before.
    #[serde(default = "version_one")]
    pub version: u32,
    pub spec: JobSpec,
    /// The endpoint in force (from `--endpoint`, or from the Batch lines' `url`).
    pub endpoint: Endpoint,
    /// Where requests went last; `resume` reuses it unless `--base-url` is given.
    pub base_url: String,
    /// OpenAI-compatible or Azure (with its deployment); checkpoints made before Azure support
    /// read as OpenAI.
    #[serde(default)]
    pub provider: settings::Provider,
    /// Extra headers whose values are safe to store (see `config::is_secret_header`).
    pub headers: Vec<(String, String)>,
    /// Names of headers that were given but not stored because they look like credentials;
    /// `resume` asks for them again.
    pub withheld_headers: Vec<String>,
    /// The environment variable that holds the API key (never the key).
    pub api_key_env: String,
    /// The limits the job last ran under; a resume keeps them unless flags say otherwise.
    #[serde(default)]
    pub send: settings::SendLimits,
    pub output: settings::OutputSpec,
    /// Input field names in first-seen order (the CSV header, or every JSONL key seen).
    pub columns: Vec<String>,
    pub tool_version: String,
    /// The prices and limits of the models the rows name, as resolved when the job last ran, so
    /// that `status` and `resume` price the job without the flags.
    #[serde(default)]
    pub models: BTreeMap<String, crate::models::ModelInfo>,
    /// `--max-cost`: the job's budget in dollars, kept across runs like the limits.
    #[serde(default)]
    pub max_cost: Option<f64>,
    /// `--mode` and the Batch API's settings, kept across runs like the limits.
    #[serde(default)]
    pub batch: settings::BatchSettings,
    /// The `--profile` the job's settings last came from, and which settings it gave.
    #[serde(default)]
    pub profile: Option<settings::ProfileUse>,
    /// `--limit`: only rows numbered 1..=N are sent. Set (or cleared) by each `run`, kept by
    /// `resume`. Not part of the spec: changing it extends the same job.
    #[serde(default)]
    pub limit: Option<u64>,
    /// The input's size in bytes when its rows were last read (with `spec.fingerprint`, it tells
    /// an input that only grew); `None` in checkpoints made before it was recorded.
    #[serde(default)]
    pub input_size: Option<u64>,
    /// Names of the base URL's query parameters that were not stored because they look like
    /// credentials (see `base_url::is_secret_param`); a later run must give the base URL again.
    #[serde(default)]
    pub withheld_params: Vec<String>,
    /// How each of [`JobRecord::columns`] was typed in a Parquet input, so a Parquet output
    /// types them the same; empty for CSV and JSON Lines input (and older checkpoints).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub column_types: Vec<crate::input::ColumnType>,
    /// The Parquet schema (message text) of each nested column (list, struct, map) of a Parquet
    /// input, by name, so a Parquet output writes it with the same type. A separate field, not a
    /// [`crate::input::ColumnType`] variant, so that older binaries still read the record; a
    /// checkpoint made before it has none, and such columns are written as JSON text.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub column_schemas: BTreeMap<String, String>,
}

impl JobRecord {
    /// The input columns an output repeats beside the row's id: all but the one the ids come
    /// from (`--id-column`, else `id`, else `custom_id`), whose values are the `id` column already.
    pub fn output_columns(&self) -> Vec<String> {
        let has = |name: &str| self.columns.iter().any(|c| c == name);
        let id_source = match &self.spec.id_column {
            Some(c) => Some(c.as_str()),
            None if has("id") => Some("id"),
            None if has("custom_id") => Some("custom_id"),
            None => None,
        };
        self.columns
            .iter()
            .filter(|c| Some(c.as_str()) != id_source)
            .cloned()
            .collect()
    }

    /// The record as the checkpoint stores it: the base URL without its credential-like query
    /// parameters, whose names join [`JobRecord::withheld_params`]. Every write of the record
    /// goes through here.
    pub fn for_storage(&self) -> JobRecord {
        let (base_url, names) = crate::base_url::withhold_secrets(&self.base_url);
        let mut stored = self.clone();
        stored.version = JOB_RECORD_VERSION;
        stored.base_url = base_url;
        for name in names {
            if !stored.withheld_params.contains(&name) {
                stored.withheld_params.push(name);
            }
        }
        stored
    }

    /// Points the job at a base URL given on this command line, which is complete: nothing of it
    /// is withheld until it is stored.
    pub fn set_base_url(&mut self, base_url: String) {
        self.base_url = base_url;
        self.withheld_params.clear();
    }
}

#[cfg(any(test, feature = "test-support"))]
impl JobRecord {
    /// A complete job record for tests of the store and the pipeline.
    pub fn example() -> JobRecord {
        use settings::{OutputFormat, OutputSpec};

        JobRecord {
            version: JOB_RECORD_VERSION,
            spec: JobSpec {
                input: "/data/in.jsonl".into(),
                format: InputFormat::Jsonl,
                fingerprint: "f00d".into(),
                template: None,
                system: None,
                id_column: None,
                endpoint: None,
                model: Some("gpt-4o-mini".into()),
                max_tokens: None,
                temperature: None,
                params: BTreeMap::new(),
                schema: None,
            },
            endpoint: Endpoint::Chat,
            base_url: "http://127.0.0.1:9/v1".into(),
            provider: settings::Provider::OpenAi,
            headers: vec![],
            withheld_headers: vec![],
            api_key_env: "OPENAI_API_KEY".into(),
            send: settings::SendLimits::default(),
            output: OutputSpec {
                path: "out.jsonl".into(),
                format: OutputFormat::Jsonl,
            },
            columns: vec!["prompt".into()],
            tool_version: "test".into(),
            models: BTreeMap::new(),
            max_cost: None,
            batch: Default::default(),
            profile: None,
            limit: None,
            input_size: None,
            column_types: vec![],
            column_schemas: BTreeMap::new(),
            withheld_params: vec![],
        }
    }
}
