//! Reading the commands out of a Markdown page, for the docs test (`docs.rs`). The rules, also
//! written in docs/DEVELOPMENT.md ("The docs test"):
//!
//! - Only fenced blocks tagged `sh` hold commands; `text` (or `toml`, `json`, …) blocks are
//!   output. A block tagged `bash`, `shell`, `console`, `zsh` or not tagged at all is an error, so
//!   that no command escapes the test by its fence.
//! - A line ending in `\` goes on on the next line. Words are split as a POSIX shell would ('…',
//!   "…", backslashes); `#` at the start of a word begins a comment.
//! - A comment `# not run by the docs test: REASON` skips its line; as the first line of a block it
//!   skips the block. The reason may not be empty. `# exits N` says the exit code the command must
//!   end with (0 otherwise).
//! - `promptmill ARGS` and `cargo run [--release] -- ARGS` are promptmill commands, with optional
//!   `VAR=value` assignments before them and an optional `> FILE` (stdout to a file) after.
//!   `export VAR=value` sets a variable for the page's later commands; `curl ARGS` is run too.
//!   Any other command (`cargo test`, `vllm serve`, `pip install`, …) is not promptmill's and is
//!   passed over.
//! - A promptmill command the test cannot run as written is an error unless it is skipped with a
//!   reason: a pipe, `&`, `;`, `&&`, `<`, an unexpanded `$VAR` or `` ` ``, a `~` path, or a `…`
//!   placeholder. So is a line that runs promptmill behind another command (`x && promptmill …`).

/// One command of a page, as the docs test runs it.
#[derive(Debug, Clone, PartialEq)]
pub struct DocCommand {
    /// The 1-based line of the page the command starts on.
    pub line: usize,
    /// The command as written (continuations joined).
    pub text: String,
    pub kind: Kind,
    /// The exit code the command must end with.
    pub expect: i32,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Promptmill {
        env: Vec<(String, String)>,
        args: Vec<String>,
        stdout_to: Option<String>,
    },
    Curl {
        args: Vec<String>,
    },
    Export {
        vars: Vec<(String, String)>,
    },
}

const SKIP: &str = "not run by the docs test:";

/// Every command of `page`, in order; an error names the line and what is wrong.
pub fn commands_of(page: &str) -> Result<Vec<DocCommand>, String> {
    let mut commands = Vec::new();
    for block in sh_blocks(page)? {
        let mut skip_block = false;
        for (i, (line, text)) in logical_lines(&block).into_iter().enumerate() {
            let (words, comment) = split_words(&text).map_err(|e| format!("line {line}: {e}"))?;
            let skip = match comment.as_deref().and_then(|c| c.split_once(SKIP)) {
                Some((_, reason)) if reason.trim().is_empty() => {
                    return Err(format!("line {line}: `{SKIP}` needs a reason"));
                }
                Some(_) => true,
                None => false,
            };
            if skip && i == 0 && words.is_empty() {
                skip_block = true;
            }
            if skip || skip_block || words.is_empty() {
                continue;
            }
            let expect = comment
                .as_deref()
                .map_or(Ok(0), exit_marker)
                .map_err(|e| format!("line {line}: {e}"))?;
            if let Some(kind) = classify(&words).map_err(|e| format!("line {line}: {e}: `{text}`"))? {
                commands.push(DocCommand {
                    line,
                    text,
                    kind,
                    expect,
                });
            }
        }
    }
    Ok(commands)
}

/// A fenced block being read: its fence's indentation, whether it is tagged `sh`, its lines.
struct Fence {
    indent: usize,
    sh: bool,
    lines: Vec<(usize, String)>,
}

/// The contents of the page's `sh` blocks, each line with its 1-based line number.
fn sh_blocks(page: &str) -> Result<Vec<Vec<(usize, String)>>, String> {
    let mut blocks = Vec::new();
    let mut open: Option<Fence> = None;
    for (n, raw) in page.lines().enumerate() {
        let line = n + 1;
        let trimmed = raw.trim_start();
        let indent = raw.len() - trimmed.len();
        match open.take() {
            None => {
                if let Some(info) = trimmed.strip_prefix("```") {
                    let info = info.trim();
                    if matches!(info, "" | "bash" | "shell" | "console" | "zsh" | "shell-session") {
                        return Err(format!(
                            "line {line}: a code block tagged `{info}`: tag commands `sh` (run by the docs test) and output `text`"
                        ));
                    }
                    open = Some(Fence {
                        indent,
                        sh: info == "sh",
                        lines: Vec::new(),
                    });
                }
            }
            Some(mut fence) => {
                if trimmed == "```" {
                    if fence.sh {
                        blocks.push(fence.lines);
                    }
                } else {
                    let strip = indent.min(fence.indent);
                    fence.lines.push((line, raw[strip..].to_string()));
                    open = Some(fence);
                }
            }
        }
    }
    if open.is_some() {
        return Err("a code block is never closed".into());
    }
    Ok(blocks)
}

/// Joins lines ending in `\` with the next; each logical line keeps its first line's number.
fn logical_lines(block: &[(usize, String)]) -> Vec<(usize, String)> {
    let mut out: Vec<(usize, String)> = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (line, text) in block {
        let (start, mut joined) = pending.take().unwrap_or((*line, String::new()));
        let text = text.trim_end();
        match text.strip_suffix('\\') {
            Some(head) => {
                joined.push_str(head);
                joined.push(' ');
                pending = Some((start, joined));
            }
            None => {
                joined.push_str(text);
                out.push((start, joined.trim().to_string()));
            }
        }
    }
    if let Some((start, joined)) = pending {
        out.push((start, joined.trim().to_string()));
    }
    out
}

/// A shell word, with what the docs test cannot reproduce noted.
#[derive(Debug, Clone, PartialEq)]
struct Word {
    text: String,
    /// An unquoted operator: `|`, `&`, `;`, `<`, `>`, `>>`, `&&`, `||`, `(`, `)`.
    operator: bool,
    /// Holds an unexpanded `$…` or `` `…` `` (outside single quotes).
    expands: bool,
    /// Starts with an unquoted `~`.
    tilde: bool,
}

fn split_words(line: &str) -> Result<(Vec<Word>, Option<String>), String> {
    let mut words = Vec::new();
    let mut cur: Option<Word> = None;
    let mut chars = line.char_indices().peekable();
    let blank = || Word {
        text: String::new(),
        operator: false,
        expands: false,
        tilde: false,
    };
    while let Some((at, c)) = chars.next() {
        match c {
            ' ' | '\t' => words.extend(cur.take()),
            '#' if cur.is_none() => return Ok((words, Some(line[at + 1..].trim().to_string()))),
            '|' | '&' | ';' | '<' | '>' | '(' | ')' => {
                words.extend(cur.take());
                let mut op = c.to_string();
                if let Some(&(_, next)) = chars.peek() {
                    if (next == c && "|&>".contains(c)) || (c == '>' && next == '|') {
                        op.push(next);
                        chars.next();
                    }
                }
                words.push(Word {
                    text: op,
                    operator: true,
                    ..blank()
                });
            }
            '\'' => {
                let w = cur.get_or_insert_with(blank);
                loop {
                    match chars.next() {
                        Some((_, '\'')) => break,
                        Some((_, ch)) => w.text.push(ch),
                        None => return Err("a single quote is never closed".into()),
                    }
                }
            }
            '"' => {
                let w = cur.get_or_insert_with(blank);
                loop {
                    match chars.next() {
                        Some((_, '"')) => break,
                        Some((_, '\\')) => match chars.next() {
                            Some((_, ch @ ('"' | '\\' | '$' | '`'))) => w.text.push(ch),
                            Some((_, ch)) => {
                                w.text.push('\\');
                                w.text.push(ch);
                            }
                            None => return Err("a double quote is never closed".into()),
                        },
                        Some((_, ch)) => {
                            w.expands |= ch == '$' || ch == '`';
                            w.text.push(ch);
                        }
                        None => return Err("a double quote is never closed".into()),
                    }
                }
            }
            '\\' => {
                let w = cur.get_or_insert_with(blank);
                if let Some((_, ch)) = chars.next() {
                    w.text.push(ch);
                }
            }
            _ => {
                let w = cur.get_or_insert_with(blank);
                w.tilde |= c == '~' && w.text.is_empty();
                w.expands |= c == '$' || c == '`';
                w.text.push(c);
            }
        }
    }
    words.extend(cur);
    Ok((words, None))
}

/// `exits N` anywhere in the comment.
fn exit_marker(comment: &str) -> Result<i32, String> {
    let Some((_, rest)) = comment.split_once("exits ") else {
        return Ok(0);
    };
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits
        .parse()
        .map_err(|_| format!("`exits` must be followed by a number: `{comment}`"))
}

fn is_assignment(w: &Word) -> bool {
    !w.operator
        && w.text.split_once('=').is_some_and(|(name, _)| {
            !name.is_empty()
                && !name.starts_with(|c: char| c.is_ascii_digit())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

fn assignment(w: &Word) -> (String, String) {
    let (name, value) = w.text.split_once('=').unwrap_or((&w.text, ""));
    (name.to_string(), value.to_string())
}

/// What a line is: a promptmill command, a curl command, an export, or (None) someone else's.
fn classify(words: &[Word]) -> Result<Option<Kind>, String> {
    let env_len = words.iter().take_while(|w| is_assignment(w)).count();
    let (env, rest) = words.split_at(env_len);
    let Some(program) = rest.first() else {
        return Err("an assignment alone: use `export VAR=value`".into());
    };
    let promptmill_args = match program.text.as_str() {
        "promptmill" if !program.operator => Some(&rest[1..]),
        "cargo" => {
            let dash = rest.iter().position(|w| w.text == "--" && !w.operator);
            let example = rest.iter().any(|w| w.text == "--example");
            match dash {
                Some(d) if rest.get(1).is_some_and(|w| w.text == "run") && !example => Some(&rest[d + 1..]),
                _ => None,
            }
        }
        _ => None,
    };
    if let Some(args) = promptmill_args {
        let (args, stdout_to) = match args {
            [head @ .., op, file] if op.operator && op.text == ">" && !file.operator => (head, Some(file)),
            _ => (args, None),
        };
        for w in args.iter().chain(stdout_to).chain(env) {
            runnable(w)?;
        }
        return Ok(Some(Kind::Promptmill {
            env: env.iter().map(assignment).collect(),
            args: args.iter().map(|w| w.text.clone()).collect(),
            stdout_to: stdout_to.map(|w| w.text.clone()),
        }));
    }
    let runs_promptmill_later = words.iter().skip(1).any(|w| w.text == "promptmill");
    match program.text.as_str() {
        _ if runs_promptmill_later => {
            Err("runs promptmill behind another command, which the docs test cannot run as written".into())
        }
        "export" if env.is_empty() => {
            let vars = &rest[1..];
            for w in vars {
                runnable(w)?;
                if !is_assignment(w) {
                    return Err(format!(
                        "`export {}`: only `export VAR=value` is understood",
                        w.text
                    ));
                }
            }
            Ok(Some(Kind::Export {
                vars: vars.iter().map(assignment).collect(),
            }))
        }
        "curl" if env.is_empty() => {
            for w in &rest[1..] {
                runnable(w)?;
            }
            Ok(Some(Kind::Curl {
                args: rest[1..].iter().map(|w| w.text.clone()).collect(),
            }))
        }
        _ => Ok(None),
    }
}

/// Whether the docs test can pass `w` on as it is written.
fn runnable(w: &Word) -> Result<(), String> {
    if w.operator {
        Err(format!(
            "`{}` (the docs test runs one command, optionally `> FILE`)",
            w.text
        ))
    } else if w.expands {
        Err(format!("`{}` needs the shell to expand it", w.text))
    } else if w.tilde {
        Err(format!("`{}` is a path in your home directory", w.text))
    } else if w.text.contains('…') {
        Err(format!("`{}` is a placeholder, not a value", w.text))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(page: &str) -> DocCommand {
        let mut all = commands_of(page).expect("commands");
        assert_eq!(all.len(), 1, "{all:?}");
        all.remove(0)
    }

    fn args(c: &DocCommand) -> Vec<&str> {
        match &c.kind {
            Kind::Promptmill { args, .. } => args.iter().map(String::as_str).collect(),
            other => panic!("not a promptmill command: {other:?}"),
        }
    }

    #[test]
    fn continuations_quotes_and_comments_are_read_as_the_shell_reads_them() {
        let page = "text\n\n```sh\npromptmill run a.csv -o x.jsonl \\\n  --template 'Say {a} \"b\"' --system \"it's\"   # a comment\n```\n";
        let c = one(page);
        assert_eq!(c.line, 4);
        assert_eq!(c.expect, 0);
        assert_eq!(
            args(&c),
            [
                "run",
                "a.csv",
                "-o",
                "x.jsonl",
                "--template",
                "Say {a} \"b\"",
                "--system",
                "it's"
            ]
        );
    }

    #[test]
    fn assignments_before_the_command_and_stdout_to_a_file_are_kept() {
        let c = one("```sh\nK=v2 promptmill completions bash > p.bash\n```\n");
        assert_eq!(
            c.kind,
            Kind::Promptmill {
                env: vec![("K".into(), "v2".into())],
                args: vec!["completions".into(), "bash".into()],
                stdout_to: Some("p.bash".into()),
            }
        );
    }

    #[test]
    fn cargo_run_dash_dash_is_promptmill_and_the_demo_and_tests_are_not() {
        let page = "```sh\ncargo run --release --example demo\ncargo test\ncargo run --release -- estimate a.csv --model m\n```\n";
        let c = one(page);
        assert_eq!(args(&c), ["estimate", "a.csv", "--model", "m"]);
    }

    #[test]
    fn an_indented_block_in_a_list_is_read() {
        let c = one("1. A list item:\n\n   ```sh\n   promptmill status a.db\n   ```\n");
        assert_eq!(args(&c), ["status", "a.db"]);
    }

    #[test]
    fn the_exit_marker_sets_the_expected_code() {
        let c = one("```sh\npromptmill cancel a.db   # exits 3: the cancelled rows fail\n```\n");
        assert_eq!(c.expect, 3);
    }

    #[test]
    fn a_line_or_a_block_marked_with_a_reason_is_skipped() {
        let page = "```sh\npromptmill mock-server --port 8089 &   # not run by the docs test: the test starts its own\n```\n\n```sh\n# not run by the docs test: writes into your home directory\npromptmill man --dir ~/.local/share/man/man1\n```\n";
        assert_eq!(commands_of(page).expect("commands"), []);
    }

    #[test]
    fn a_skip_marker_without_a_reason_is_refused() {
        let err = commands_of("```sh\npromptmill run … # not run by the docs test:\n```\n").unwrap_err();
        assert!(err.contains("needs a reason"), "{err}");
    }

    #[test]
    fn a_promptmill_command_the_test_cannot_run_fails_the_page_instead_of_being_skipped() {
        for (line, why) in [
            ("promptmill run … --mode batch --no-wait", "placeholder"),
            ("promptmill mock-server --port 8089 &", "`&`"),
            ("promptmill status a.db --json | jq .rows", "`|`"),
            ("promptmill run p.jsonl -o \"$OUT\"", "expand"),
            ("promptmill man --dir ~/man1", "home directory"),
            ("mkdir -p x && promptmill man --dir x", "behind another command"),
        ] {
            let err = commands_of(&format!("# Page\n\n```sh\n{line}\n```\n")).unwrap_err();
            assert!(err.starts_with("line 4:") && err.contains(why), "{line}: {err}");
        }
    }

    #[test]
    fn a_block_tagged_other_than_sh_or_text_is_refused() {
        for fence in ["```", "```bash", "```console"] {
            let err = commands_of(&format!("{fence}\npromptmill status a.db\n```\n")).unwrap_err();
            assert!(err.contains("tag commands `sh`"), "{fence}: {err}");
        }
        assert_eq!(
            commands_of("```text\npromptmill status a.db\n```\n").expect("text"),
            []
        );
    }

    #[test]
    fn exports_and_curl_are_run_and_other_programs_are_passed_over() {
        let page = "```sh\nexport OPENAI_API_KEY=sk-...\nvllm serve m --api-key \"$K\"\ncurl -sf http://127.0.0.1:1/v1/models\n```\n";
        let all = commands_of(page).expect("commands");
        assert_eq!(all.len(), 2, "{all:?}");
        assert_eq!(
            all[0].kind,
            Kind::Export {
                vars: vec![("OPENAI_API_KEY".into(), "sk-...".into())]
            }
        );
        assert!(matches!(&all[1].kind, Kind::Curl { args } if args[1] == "http://127.0.0.1:1/v1/models"));
    }
}
