//! In-process tests of structured output against a real server on 127.0.0.1:0, family by
//! family (chat's `response_format`, the Responses API's `text.format`, Anthropic's
//! `output_config.format` and forced tool): the answer's JSON fits the schema (checked with the
//! `jsonschema` crate) and is billed by its words; each spoiled shape (`reply=invalid-json`,
//! `schema-break`, `cut`, `refusal`) looks as the client will see it; fail-times spoils once;
//! a recursive schema ends; the 400s name the parameter. Batches and the --rate-* flags are in
//! `tests_structured_batches`.

use serde_json::{json, Value};

use super::tests::{json_of, Running};
use super::MockConfig;
use crate::structured::{render, REFUSAL};

/// A product record, as a strict OpenAI schema has it: every property required, none other.
pub(super) fn schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "title": {"type": "string"},
            "price": {"type": "number", "minimum": 0},
            "tags": {"type": "array", "items": {"type": "string"}},
            "in_stock": {"type": "boolean"},
            "category": {"enum": ["kitchen", "garden", "toys"]}
        },
        "required": ["title", "price", "tags", "in_stock", "category"],
        "additionalProperties": false
    })
}

pub(super) fn fits(schema: &Value, value: &Value) -> bool {
    jsonschema::validator_for(schema)
        .expect("the test's schema is valid")
        .is_valid(value)
}

/// The ways of asking for structured output.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Family {
    Chat,
    Responses,
    Messages,
    /// Anthropic's forced tool.
    Tool,
}

pub(super) const ALL: [Family; 4] = [Family::Chat, Family::Responses, Family::Messages, Family::Tool];

/// What an answer says, whichever family: its text (or a tool's input), refusal and ending.
#[derive(Debug)]
pub(super) struct Said {
    pub text: Option<String>,
    pub input: Option<Value>,
    pub refusal: Option<String>,
    /// `finish_reason`, `status` (with `incomplete_details.reason` after a `/`), `stop_reason`.
    pub ending: String,
    pub output_tokens: u64,
}

impl Family {
    pub fn path(self) -> &'static str {
        match self {
            Family::Chat => "/v1/chat/completions",
            Family::Responses => "/v1/responses",
            Family::Messages | Family::Tool => "/v1/messages",
        }
    }

    /// A request for `prompt` whose answer must fit `schema`.
    pub fn body(self, prompt: &str, schema: &Value) -> Value {
        let messages = json!([{"role": "user", "content": prompt}]);
        match self {
            Family::Chat => json!({"model": "gpt-4o-mini", "messages": messages, "response_format":
                {"type": "json_schema", "json_schema": {"name": "product", "schema": schema, "strict": true}}}),
            Family::Responses => json!({"model": "gpt-4o-mini", "input": prompt, "text":
                {"format": {"type": "json_schema", "name": "product", "schema": schema, "strict": true}}}),
            Family::Messages => json!({"model": "claude-haiku-4-5", "max_tokens": 400, "messages": messages,
                "output_config": {"format": {"type": "json_schema", "schema": schema}}}),
            Family::Tool => json!({"model": "claude-haiku-4-5", "max_tokens": 400, "messages": messages,
                "tools": [{"name": "record", "description": "Record a product.", "input_schema": schema}],
                "tool_choice": {"type": "tool", "name": "record"}}),
        }
    }

    /// What `answer` (a 200 body of this family) says.
    pub fn said(self, answer: &Value) -> Said {
        let text = |v: &Value| v.as_str().map(str::to_string);
        match self {
            Family::Chat => {
                let choice = &answer["choices"][0];
                Said {
                    text: text(&choice["message"]["content"]),
                    input: None,
                    refusal: text(&choice["message"]["refusal"]),
                    ending: text(&choice["finish_reason"]).unwrap_or_default(),
                    output_tokens: answer["usage"]["completion_tokens"].as_u64().unwrap_or(0),
                }
            }
            Family::Responses => {
                let part = &answer["output"][0]["content"][0];
                let mut ending = text(&answer["status"]).unwrap_or_default();
                if let Some(reason) = answer["incomplete_details"]["reason"].as_str() {
                    ending = format!("{ending}/{reason}");
                }
                Said {
                    text: (part["type"] == "output_text")
                        .then(|| text(&part["text"]))
                        .flatten(),
                    input: None,
                    refusal: (part["type"] == "refusal")
                        .then(|| text(&part["refusal"]))
                        .flatten(),
                    ending,
                    output_tokens: answer["usage"]["output_tokens"].as_u64().unwrap_or(0),
                }
            }
            Family::Messages | Family::Tool => {
                let block = &answer["content"][0];
                Said {
                    text: (block["type"] == "text").then(|| text(&block["text"])).flatten(),
                    input: (block["type"] == "tool_use").then(|| block["input"].clone()),
                    refusal: None,
                    ending: text(&answer["stop_reason"]).unwrap_or_default(),
                    output_tokens: answer["usage"]["output_tokens"].as_u64().unwrap_or(0),
                }
            }
        }
    }

    /// The ending of a whole answer.
    pub fn normal_ending(self) -> &'static str {
        match self {
            Family::Chat => "stop",
            Family::Responses => "completed",
            Family::Messages => "end_turn",
            Family::Tool => "tool_use",
        }
    }
}

/// Sends `prompt` to `family` asking for `schema`; the answer must be a 200.
pub(super) async fn ask(server: &Running, family: Family, prompt: &str, schema: &Value) -> Said {
    let response = server.post(family.path(), &family.body(prompt, schema)).await;
    assert_eq!(response.status(), 200, "{family:?}");
    family.said(&json_of(response).await)
}

/// The JSON an answer holds: a tool's input, or its text parsed.
pub(super) fn json_in(said: &Said) -> Value {
    match (&said.input, &said.text) {
        (Some(input), _) => input.clone(),
        (None, Some(text)) => serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}")),
        (None, None) => panic!("no text and no input: {said:?}"),
    }
}

#[tokio::test]
async fn every_family_answers_with_json_that_fits_the_schema_billed_by_its_words() {
    let server = Running::start(MockConfig::default()).await;
    let mut values = Vec::new();
    for family in ALL {
        let said = ask(&server, family, "Describe the blue kettle", &schema()).await;
        let value = json_in(&said);
        assert!(fits(&schema(), &value), "{family:?}: {value}");
        assert_eq!(said.ending, family.normal_ending(), "{family:?}");
        let text = said.text.clone().unwrap_or_else(|| render(&value));
        assert_eq!(
            said.output_tokens,
            text.split_whitespace().count() as u64,
            "{family:?}"
        );
        values.push(value);
    }
    // One instance per schema and prompt, whichever family asks.
    assert!(values.windows(2).all(|w| w[0] == w[1]), "{values:?}");
    let again = ask(&server, Family::Chat, "Describe the blue kettle", &schema()).await;
    assert_eq!(json_in(&again), values[0]);
}

#[tokio::test]
async fn json_object_is_answered_with_an_object_and_responses_echo_the_format() {
    let server = Running::start(MockConfig::default()).await;
    let chat = json!({"model": "m", "messages": [{"role": "user", "content": "hi there"}],
        "response_format": {"type": "json_object"}});
    let said = Family::Chat.said(&json_of(server.post("/v1/chat/completions", &chat).await).await);
    assert_eq!(json_in(&said), json!({"answer": "Mock reply: hi there"}));
    let format = json!({"type": "json_schema", "name": "product", "schema": schema(), "strict": true});
    let body = json!({"model": "m", "input": "hi", "text": {"format": format}});
    let answer = json_of(server.post("/v1/responses", &body).await).await;
    assert_eq!(answer["text"]["format"], format);
    let plain = json_of(
        server
            .post("/v1/responses", &json!({"model": "m", "input": "hi"}))
            .await,
    )
    .await;
    assert_eq!(plain["text"]["format"], json!({"type": "text"}));
    let text = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}],
        "response_format": {"type": "text"}});
    let said = Family::Chat.said(&json_of(server.post("/v1/chat/completions", &text).await).await);
    assert_eq!(said.text.as_deref(), Some("Mock reply: hi"));
}

#[tokio::test]
async fn reply_invalid_json_is_prose_around_a_fragment_in_every_family() {
    let server = Running::start(MockConfig::default()).await;
    for family in ALL {
        let said = ask(&server, family, "kettle [[mock:reply=invalid-json]]", &schema()).await;
        let text = said.text.expect("a text, even from a forced tool");
        assert!(
            text.starts_with("Sure! Here is the JSON: {\"title\": "),
            "{family:?}: {text}"
        );
        assert!(serde_json::from_str::<Value>(&text).is_err());
        let ending = if family == Family::Tool {
            "end_turn"
        } else {
            family.normal_ending()
        };
        assert_eq!(said.ending, ending, "{family:?}");
    }
}

#[tokio::test]
async fn reply_schema_break_is_json_that_the_validator_rejects_in_every_family() {
    let server = Running::start(MockConfig::default()).await;
    for family in ALL {
        let said = ask(&server, family, "kettle [[mock:reply=schema-break]]", &schema()).await;
        let value = json_in(&said);
        assert!(!fits(&schema(), &value), "{family:?}: {value}");
        let price = value["price"].as_str().expect("the price is a string");
        assert!(price.parse::<f64>().is_ok(), "{price}");
        assert_eq!(said.ending, family.normal_ending());
    }
    // No number to spoil: the first required property is left out.
    let no_number = json!({"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
        "required": ["b"]});
    let value = json_in(&ask(&server, Family::Chat, "x [[mock:reply=schema-break]]", &no_number).await);
    assert!(!fits(&no_number, &value) && value.get("b").is_none(), "{value}");
}

#[tokio::test]
async fn reply_cut_stops_the_text_on_the_token_limit_in_every_family() {
    let server = Running::start(MockConfig::default()).await;
    let endings = [
        "length",
        "incomplete/max_output_tokens",
        "max_tokens",
        "max_tokens",
    ];
    for (family, ending) in ALL.into_iter().zip(endings) {
        // Cut once, then whole: the same prompt's two answers.
        let prompt = format!("kettle {family:?} [[mock:fail-times=1:reply=cut]]");
        let said = ask(&server, family, &prompt, &schema()).await;
        assert_eq!(said.ending, ending, "{family:?}");
        let whole = json_in(&ask(&server, family, &prompt, &schema()).await);
        match (&said.text, &said.input) {
            (Some(text), _) => {
                assert!(serde_json::from_str::<Value>(text).is_err(), "{family:?}: {text}");
                let whole = render(&whole);
                assert!(
                    text.len() < whole.len() && whole.starts_with(text.as_str()),
                    "{text} / {whole}"
                );
            }
            (None, Some(input)) => {
                // A cut tool call: the first half of its properties.
                let keys: Vec<&String> = input.as_object().unwrap().keys().collect();
                assert_eq!(keys, ["title", "price"]);
                assert_eq!(input["title"], whole["title"]);
            }
            (None, None) => panic!("{family:?}: nothing said"),
        }
    }
    // Without a format the plain text is cut the same way.
    let plain = server.chat("one two three four [[mock:reply=cut]]").await;
    let said = Family::Chat.said(&json_of(plain).await);
    assert_eq!(said.ending, "length");
    assert!("Mock reply: one two three four".starts_with(said.text.as_deref().unwrap()));
}

#[tokio::test]
async fn reply_refusal_is_each_familys_refusal() {
    let server = Running::start(MockConfig::default()).await;
    let prompt = "kettle [[mock:reply=refusal]]";
    let chat = json_of(
        server
            .post("/v1/chat/completions", &Family::Chat.body(prompt, &schema()))
            .await,
    )
    .await;
    let message = &chat["choices"][0]["message"];
    assert!(message["content"].is_null(), "{message}");
    assert_eq!(message["refusal"], REFUSAL);
    assert_eq!(chat["choices"][0]["finish_reason"], "stop");
    let responses = json_of(
        server
            .post("/v1/responses", &Family::Responses.body(prompt, &schema()))
            .await,
    )
    .await;
    assert_eq!(
        responses["output"][0]["content"],
        json!([{"type": "refusal", "refusal": REFUSAL}])
    );
    assert_eq!(responses["status"], "completed");
    for family in [Family::Messages, Family::Tool] {
        let said = ask(&server, family, prompt, &schema()).await;
        assert_eq!(
            (said.ending.as_str(), said.text.as_deref()),
            ("refusal", Some(REFUSAL))
        );
    }
}

#[tokio::test]
async fn fail_times_spoils_the_first_answer_and_the_retry_fits() {
    let server = Running::start(MockConfig::default()).await;
    for (i, family) in ALL.into_iter().enumerate() {
        for shape in ["invalid-json", "schema-break", "cut", "refusal"] {
            let prompt = format!("row {i} [[mock:fail-times=1:reply={shape}]]");
            let first = ask(&server, family, &prompt, &schema()).await;
            let spoiled = match (&first.text, &first.input) {
                (_, Some(input)) => !fits(&schema(), input) || first.ending != "tool_use",
                (Some(text), None) => {
                    serde_json::from_str::<Value>(text).map_or(true, |v| !fits(&schema(), &v))
                }
                (None, None) => first.refusal.is_some(),
            };
            assert!(spoiled, "{family:?} {shape}: {first:?}");
            let retry = ask(&server, family, &prompt, &schema()).await;
            assert!(fits(&schema(), &json_in(&retry)), "{family:?} {shape}: {retry:?}");
            assert_eq!(retry.ending, family.normal_ending());
        }
    }
}

#[tokio::test]
async fn a_recursive_schema_is_answered_and_ends() {
    let server = Running::start(MockConfig::default()).await;
    let tree = json!({"$ref": "#/$defs/node", "$defs": {"node": {"type": "object", "properties": {
        "name": {"type": "string"}, "children": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
        "required": ["name", "children"], "additionalProperties": false}}});
    for family in ALL {
        let value = json_in(&ask(&server, family, "a family tree", &tree).await);
        assert!(fits(&tree, &value), "{family:?}: {value}");
        assert_eq!(value["children"].as_array().map(Vec::len), Some(2));
    }
}

#[tokio::test]
async fn a_bad_format_is_a_400_that_names_the_parameter() {
    let server = Running::start(MockConfig::default()).await;
    let chat = |format: Value| json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "response_format": format});
    let cases = [
        (
            "/v1/chat/completions",
            chat(json!({"type": "xml"})),
            "response_format",
        ),
        (
            "/v1/chat/completions",
            chat(json!({"type": "json_schema"})),
            "response_format",
        ),
        (
            "/v1/chat/completions",
            chat(json!({"type": "json_schema", "json_schema": {"schema": {}}})),
            "response_format",
        ),
        (
            "/v1/responses",
            json!({"model": "m", "input": "x", "text": {"format": {"type": "json_schema", "schema": {}}}}),
            "text.format",
        ),
    ];
    for (path, body, param) in cases {
        let response = server.post(path, &body).await;
        assert_eq!(response.status(), 400, "{body}");
        assert_eq!(json_of(response).await["error"]["param"], param, "{body}");
    }
    let mut unknown_tool = Family::Tool.body("x", &schema());
    unknown_tool["tool_choice"]["name"] = "other".into();
    let response = server.post("/v1/messages", &unknown_tool).await;
    assert_eq!(response.status(), 400);
    let message = json_of(response).await["error"]["message"].clone();
    assert!(
        message.as_str().unwrap().contains("no tool named 'other'"),
        "{message}"
    );
}

#[tokio::test]
async fn the_spoiled_shapes_are_refused_where_there_is_no_text_or_no_refusal() {
    let server = Running::start(MockConfig::default()).await;
    let embed = json!({"model": "text-embedding-3-small", "input": "x [[mock:reply=cut]]"});
    assert_eq!(server.post("/v1/embeddings", &embed).await.status(), 400);
    let legacy = |prompt: &str| json!({"model": "m", "prompt": prompt});
    let refused = server
        .post("/v1/completions", &legacy("x [[mock:reply=refusal]]"))
        .await;
    assert_eq!(refused.status(), 400);
    let cut = json_of(
        server
            .post("/v1/completions", &legacy("one two three [[mock:reply=cut]]"))
            .await,
    )
    .await;
    assert_eq!(cut["choices"][0]["finish_reason"], "length");
    assert!(cut["choices"][0]["text"].as_str().unwrap().len() < "Mock reply: one two three".len());
}
