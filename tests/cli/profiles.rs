//! Profiles: `--profile NAME` takes settings from a TOML config file (`--config FILE`, or
//! `$XDG_CONFIG_HOME/promptmill/config.toml`); a flag wins over the profile, the profile over
//! what the job stored. The file never holds a key.

use crate::util::*;

/// Writes `$dir/xdg/promptmill/config.toml` and returns the XDG_CONFIG_HOME to use.
fn xdg_config(dir: &Dir, text: &str) -> std::path::PathBuf {
    let home = dir.path("xdg");
    std::fs::create_dir_all(home.join("promptmill")).expect("config dir");
    std::fs::write(home.join("promptmill").join("config.toml"), text).expect("config");
    home
}

#[test]
fn a_profile_from_the_xdg_config_supplies_url_key_variable_model_and_limits() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 3);
    let mock = Mock::start_with_env(&["--api-key-env", "MOCK_KEY"], &[("MOCK_KEY", "local-secret-1")]);
    let home = xdg_config(
        &dir,
        &format!(
            "[profiles.local]\nbase_url = \"{}\"\napi_key_env = \"LOCAL_KEY\"\nmodel = \"from-profile\"\nrpm = 6000\nconcurrency = 3\nheaders = [\"X-Title: promptmill\"]\n",
            mock.url
        ),
    );
    let out = run(promptmill(&dir)
        .args(["run", "p.jsonl", "-o", "out.jsonl", "--profile", "local"])
        .env("XDG_CONFIG_HOME", &home)
        .env("LOCAL_KEY", "local-secret-1"));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let lines = dir.jsonl("out.jsonl");
    assert_eq!(lines.len(), 3);
    assert!(lines.iter().all(|l| l["model"] == "from-profile"), "{lines:?}");
    assert!(mock.requests().iter().all(|r| r["credential"] == "bearer"));

    let status = run(promptmill(&dir).args(["status", "out.jsonl.promptmill.db"]));
    assert_eq!(status.code(), 0, "{}", status.stderr);
    let config = home.join("promptmill").join("config.toml");
    assert!(
        status.stdout.contains(&format!(
            "profile     local ({}) gave --base-url --api-key-env --model --concurrency --rpm --header",
            config.display()
        )),
        "{}",
        status.stdout
    );
    assert!(
        status.stdout.contains("concurrency 3, rpm 6000"),
        "{}",
        status.stdout
    );
    let json = run(promptmill(&dir).args(["status", "out.jsonl.promptmill.db", "--json"]));
    let json: serde_json::Value = serde_json::from_str(&json.stdout).expect("status JSON");
    assert_eq!(json["profile"]["name"], "local");
    assert_nowhere(dir.root(), &[&out.stderr, &status.stdout], "local-secret-1");
}

#[test]
fn a_flag_wins_over_the_profile_and_the_profile_over_the_stored_job() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 2);
    let mock = Mock::start(&[]);
    dir.write(
        "team.toml",
        format!(
            "[profiles.team]\nbase_url = \"{}\"\nmodel = \"m\"\nrpm = 100\nconcurrency = 7\n",
            mock.url
        ),
    );
    let limits = |dir: &Dir| {
        let s = run(promptmill(dir).args(["status", "out.jsonl.promptmill.db", "--json"]));
        let v: serde_json::Value = serde_json::from_str(&s.stdout).expect("status JSON");
        (v["limits"]["concurrency"].clone(), v["limits"]["rpm"].clone())
    };
    // The stored job: rpm 50, concurrency 2.
    let first = run(run_job(&dir, &mock).args(["--rpm", "50", "--concurrency", "2"]));
    assert_eq!(first.code(), 0, "{}", first.stderr);
    assert_eq!(limits(&dir), (2.into(), 50.into()));
    // The profile over the stored job; the flag over the profile.
    let second = run(promptmill(&dir).args([
        "run",
        "p.jsonl",
        "-o",
        "out.jsonl",
        "--profile",
        "team",
        "--config",
        "team.toml",
        "--concurrency",
        "4",
    ]));
    assert_eq!(second.code(), 0, "{}", second.stderr);
    assert_eq!(limits(&dir), (4.into(), 100.into()));
    // Without the profile, the job keeps what it last ran with.
    let third = run(&mut run_job(&dir, &mock));
    assert_eq!(third.code(), 0, "{}", third.stderr);
    assert_eq!(limits(&dir), (4.into(), 100.into()));
}

#[test]
fn a_config_file_holding_a_key_is_refused_naming_the_line() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 1);
    let mock = Mock::start(&[]);
    let cases = [
        (
            "[profiles.a]\nmodel = \"m\"\napi_key = \"sk-live-123456\"\n",
            ":3: `api_key` is not allowed",
        ),
        (
            "[profiles.a]\nmodel = \"m\"\n\nheaders = [\"X-Title: t\", \"X-Api-Key: live-123456\"]\n",
            ":4: profile `a`: the header `X-Api-Key` looks like a credential",
        ),
        (
            "[profiles.other]\napi_key_env = \"sk-live-123456\"\n[profiles.a]\nmodel = \"m\"\n",
            ":2: profile `other`: `api_key_env` holds what looks like an API key",
        ),
    ];
    for (text, told) in cases {
        dir.write("c.toml", text);
        let out = run(promptmill(&dir).args([
            "run",
            "p.jsonl",
            "-o",
            "out.jsonl",
            "--base-url",
            &mock.url,
            "--profile",
            "a",
            "--config",
            "c.toml",
        ]));
        assert_eq!(out.code(), 1, "{}", out.stderr);
        assert!(
            out.stderr.contains(&format!("c.toml{told}")),
            "{text}\n{}",
            out.stderr
        );
        assert!(
            out.stderr.contains("the config file never holds a key"),
            "{}",
            out.stderr
        );
        assert!(
            !out.stderr.contains("live-123456"),
            "the key is not echoed: {}",
            out.stderr
        );
    }
    assert!(!dir.exists("out.jsonl.promptmill.db"), "nothing was started");
    assert_eq!(mock.requests().len(), 0);
}

#[test]
fn an_unknown_key_or_profile_is_an_error_naming_the_file() {
    let dir = Dir::new();
    prompts_jsonl(&dir, "p.jsonl", 1);
    dir.write("c.toml", "[profiles.a]\nmodel = \"m\"\nrmp = 5\n");
    let typo = run(promptmill(&dir).args([
        "run",
        "p.jsonl",
        "-o",
        "o.jsonl",
        "--profile",
        "a",
        "--config",
        "c.toml",
    ]));
    assert_eq!(typo.code(), 1);
    assert!(
        typo.stderr.contains("c.toml:3: unknown field `rmp`"),
        "{}",
        typo.stderr
    );
    dir.write("c.toml", "[profiles.a]\nmodel = \"m\"\n");
    let missing = run(promptmill(&dir).args([
        "run",
        "p.jsonl",
        "-o",
        "o.jsonl",
        "--profile",
        "b",
        "--config",
        "c.toml",
    ]));
    assert_eq!(missing.code(), 1);
    assert!(
        missing.stderr.contains("c.toml: has no profile `b` (it has: a)"),
        "{}",
        missing.stderr
    );
    let none = run(promptmill(&dir)
        .args(["run", "p.jsonl", "-o", "o.jsonl", "--profile", "a"])
        .env("XDG_CONFIG_HOME", dir.path("nowhere")));
    assert_eq!(none.code(), 1);
    assert!(
        none.stderr
            .contains("nowhere/promptmill/config.toml: cannot read the config file of --profile a"),
        "{}",
        none.stderr
    );
}
