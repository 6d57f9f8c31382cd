//! The prose of `--help` beyond the flags: the exit codes, and each subcommand's examples (shown
//! by `--help`, not `-h`). The commands are meant to be copied: keep them runnable.

pub(super) const AFTER_HELP: &str = "\
Exit codes:
  0  every row is done (with --mode batch --no-wait: the batches are submitted)
  1  error: bad flags, bad input, a checkpoint that does not match the command, I/O
  2  command-line usage error
  3  the run finished, but some rows failed (or were invalid, with --skip-invalid)
  4  the run stopped before finishing (Ctrl-C/SIGTERM/SIGHUP, the API refused the key, the
     account is out of quota, or the disk is full; in batch mode, Ctrl-C stops waiting and the
     batches go on); the checkpoint is intact: rerun the printed command to resume
  5  the run stopped at its --max-cost budget; resume with a larger budget to go on

The API key is read from OPENAI_API_KEY (AZURE_OPENAI_API_KEY with --provider azure), or the
variable named by --api-key-env, never from a flag.";

pub(super) const RUN_EXAMPLES: &str = "\
Examples:
  # every row of a JSONL file through gpt-4o-mini, 10 requests at a time
  promptmill run prompts.jsonl -o out.jsonl --model gpt-4o-mini --concurrency 10

  # a CSV file with a template over its columns, at most 500 requests a minute
  promptmill run reviews.csv -o out.csv --model gpt-4o-mini --template 'Summarize: {text}' --rpm 500

  # rows from standard input, results to standard output (the checkpoint needs --db)
  cat prompts.jsonl | promptmill run - --format jsonl -o - --db job.db --model gpt-4o-mini

  # the settings of the profile `groq` in ~/.config/promptmill/config.toml
  promptmill run prompts.jsonl -o out.jsonl --profile groq

  # the same command again resumes; rows already done are not sent again
  promptmill run prompts.jsonl -o out.jsonl --model gpt-4o-mini --concurrency 10";

pub(super) const ESTIMATE_EXAMPLES: &str = "\
Examples:
  # tokens, cost and time of a job, nothing sent
  promptmill estimate prompts.jsonl --model gpt-4o-mini --max-tokens 200

  # with the expected answer length and a rate limit, as JSON
  promptmill estimate prompts.jsonl --model gpt-4o-mini --expect-output-tokens 80 --rpm 500 --json

  # send 20 random rows for real to measure the answers (the full run will not pay for them again)
  promptmill estimate prompts.jsonl -o out.jsonl --model gpt-4o-mini --sample 20";

pub(super) const RESUME_EXAMPLES: &str = "\
Examples:
  # go on with a job from its checkpoint alone
  promptmill resume out.jsonl.promptmill.db

  # with more requests in flight, and the failed rows sent again
  promptmill resume out.jsonl.promptmill.db --concurrency 20 --retry-failed";

pub(super) const STATUS_EXAMPLES: &str = "\
Examples:
  promptmill status out.jsonl.promptmill.db
  promptmill status out.jsonl.promptmill.db --json";

pub(super) const REPORT_EXAMPLES: &str = "\
Examples:
  # how the job went: open report.html in a browser (it needs no network)
  promptmill report out.jsonl.promptmill.db -o report.html

  # or write it each time a run ends
  promptmill run prompts.csv -o out.jsonl --model gpt-4o-mini --report report.html";

pub(super) const EXPORT_EXAMPLES: &str = "\
Examples:
  # the results so far, as CSV
  promptmill export out.jsonl.promptmill.db -o now.csv

  # as OpenAI Batch output lines, or to standard output
  promptmill export out.jsonl.promptmill.db -o batch-out.jsonl --output-format openai-batch
  promptmill export out.jsonl.promptmill.db -o -";

pub(super) const CACHE_EXAMPLES: &str = "\
Examples:
  promptmill cache stats
  promptmill cache prune --older-than 30d
  promptmill cache clear --cache /tmp/shared-cache.db";

pub(super) const CANCEL_EXAMPLES: &str = "\
Examples:
  promptmill cancel out.jsonl.promptmill.db
  promptmill cancel out.jsonl.promptmill.db --no-wait";

pub(super) const MOCK_EXAMPLES: &str = "\
Examples:
  # a local API on a free port (printed), 200 ms per reply, 5% of requests answered 429
  promptmill mock-server --port 0 --latency 200ms --rate-429 0.05";

pub(super) const COMPLETIONS_EXAMPLES: &str = "\
Examples:
  # bash, for this user (open a new shell afterwards)
  promptmill completions bash > ~/.local/share/bash-completion/completions/promptmill
  # zsh: a file named _promptmill in a directory of $fpath
  promptmill completions zsh > ~/.zfunc/_promptmill";

pub(super) const MAN_EXAMPLES: &str = "\
Examples:
  # read it now
  promptmill man | man -l -
  # one page per subcommand, for a man directory
  promptmill man --dir ~/.local/share/man/man1";
