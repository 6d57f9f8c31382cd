//! A complete keyless run: starts the bundled mock server on 127.0.0.1 (a free port), then runs
//! the real `promptmill run` code path on `sample-data/products.csv` against it, then `status`;
//! then the same job through the Batch API (`--mode batch`, the mock's Files and Batches), whose
//! completions equal the live run's at half the cost.
//!
//! ```text
//! cargo run --release --example demo
//! ```
//!
//! The results land in `target/demo/`. Nothing leaves this machine and no API key is needed.

use std::path::PathBuf;

use promptmill::mock::{MockConfig, MockServer};
use tokio_util::sync::CancellationToken;

fn main() -> anyhow::Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let out_dir = root.join("target").join("demo");
    std::fs::create_dir_all(&out_dir)?;

    // The mock server gets its own runtime on its own thread; the CLI below builds its own.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let server = runtime.block_on(MockServer::bind(MockConfig {
        latency: std::time::Duration::from_millis(40),
        ..MockConfig::default()
    }))?;
    let url = format!("http://{}/v1", server.local_addr());
    let shutdown = CancellationToken::new();
    let serving = runtime.spawn(server.serve(shutdown.clone()));
    println!("mock server listening on {url}\n");

    let input = root.join("sample-data").join("products.csv");
    let output = out_dir.join("products.out.jsonl");
    let args: Vec<String> = vec![
        "promptmill".into(),
        "run".into(),
        input.display().to_string(),
        "-o".into(),
        output.display().to_string(),
        "--model".into(),
        "gpt-4o-mini".into(),
        "--template".into(),
        "Write a one-line product description for a {color} {name} made of {material}.".into(),
        "--max-tokens".into(),
        "60".into(),
        "--base-url".into(),
        url,
        "--restart".into(),
    ];
    let mut live_args = args.clone();
    // The response cache beside the demo's files, not in ~/.cache: its answers are keyed by the
    // mock's URL, a new port each time.
    live_args.extend(["--cache".into(), out_dir.join("cache.db").display().to_string()]);
    println!("$ {}\n", promptmill::commands::shell_line(&live_args));
    let code = promptmill::commands::main(live_args)?;

    println!("\nfirst rows of {}:", output.display());
    for line in std::fs::read_to_string(&output)?.lines().take(3) {
        println!("  {line}");
    }
    let db = out_dir.join("products.out.jsonl.promptmill.db");
    println!(
        "\n$ {}\n",
        promptmill::commands::shell_line(&["promptmill", "status", &db.display().to_string()])
    );
    promptmill::commands::main([
        "promptmill".to_string(),
        "status".into(),
        db.display().to_string(),
    ])?;

    // The same job through the Batch API: uploaded in files of 5 rows, polled, collected.
    let batch_output = out_dir.join("products.batch.jsonl");
    let mut batch_args = args.clone();
    let o = batch_args.iter().position(|a| a == "-o").unwrap_or(0) + 1;
    batch_args[o] = batch_output.display().to_string();
    // Every row goes to the Batch API: the live run's answers are in the response cache, and a
    // batch answered from it would compare the cache with itself.
    batch_args.extend(
        [
            "--no-cache",
            "--mode",
            "batch",
            "--batch-max-rows",
            "5",
            "--poll-interval",
            "100ms",
        ]
        .map(String::from),
    );
    println!("\n$ {}\n", promptmill::commands::shell_line(&batch_args));
    let batch_code = promptmill::commands::main(batch_args)?;
    let completions = |path: &std::path::Path| -> anyhow::Result<Vec<serde_json::Value>> {
        std::fs::read_to_string(path)?
            .lines()
            .map(|l| Ok(serde_json::from_str::<serde_json::Value>(l)?["completion"].clone()))
            .collect()
    };
    let same = completions(&output)? == completions(&batch_output)?;
    println!("\nbatch completions equal the live run's: {same}");
    if !same || batch_code != code {
        anyhow::bail!("the batch run differs from the live run");
    }

    shutdown.cancel();
    runtime.block_on(serving)??;
    std::process::exit(code);
}
