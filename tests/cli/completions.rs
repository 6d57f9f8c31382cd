//! `promptmill completions SHELL` and `promptmill man`: generated from the clap definition, so
//! these tests check that what comes out is complete (names every subcommand) and well formed.

use std::process::Command;

use crate::util::{promptmill, run, Dir};

const SUBCOMMANDS: [&str; 9] = [
    "run",
    "estimate",
    "resume",
    "status",
    "export",
    "cancel",
    "mock-server",
    "completions",
    "man",
];

#[test]
fn every_shells_completion_script_names_every_subcommand() {
    let dir = Dir::new();
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let out = run(promptmill(&dir).args(["completions", shell]));
        assert_eq!(out.code(), 0, "{shell}: {}", out.stderr);
        assert!(!out.stdout.trim().is_empty(), "{shell}: empty script");
        for sub in SUBCOMMANDS {
            assert!(
                out.stdout.contains(sub),
                "{shell}: the script never names `{sub}`"
            );
        }
        assert!(
            out.stdout.contains("max-cost"),
            "{shell}: run's flags are missing"
        );
    }
}

#[test]
fn the_bash_completion_script_parses_in_bash() {
    let dir = Dir::new();
    let out = run(promptmill(&dir).args(["completions", "bash"]));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let script = dir.write("promptmill.bash", &out.stdout);
    let check = run(Command::new("bash").arg("-n").arg(&script));
    assert_eq!(check.code(), 0, "bash -n: {}", check.stderr);
}

#[test]
fn an_unknown_shell_is_a_usage_error_naming_the_shells() {
    let dir = Dir::new();
    let out = run(promptmill(&dir).args(["completions", "tcsh"]));
    assert_eq!(out.code(), 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("bash") && out.stderr.contains("zsh"),
        "{}",
        out.stderr
    );
}

#[test]
fn the_man_page_is_roff_and_names_every_subcommand() {
    let dir = Dir::new();
    let out = run(promptmill(&dir).arg("man"));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    assert!(out.stdout.contains(".TH promptmill 1"), "{}", out.stdout);
    for sub in SUBCOMMANDS {
        let roff_name = format!("promptmill\\-{}(1)", sub.replace('-', "\\-"));
        assert!(
            out.stdout.contains(&roff_name),
            "the man page never names `{sub}`"
        );
    }
}

#[test]
fn man_dir_writes_one_private_page_per_subcommand() {
    let dir = Dir::new();
    std::fs::create_dir(dir.path("man1")).expect("mkdir");
    let out = run(promptmill(&dir).args(["man", "--dir", "man1"]));
    assert_eq!(out.code(), 0, "{}", out.stderr);
    let mut pages = vec!["promptmill".to_string()];
    pages.extend(SUBCOMMANDS.iter().map(|s| format!("promptmill-{s}")));
    for page in pages {
        let name = format!("man1/{page}.1");
        let text = dir.read(&name);
        assert!(text.contains(&format!(".TH {page} 1")), "{name}: {text}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path(&name))
                .expect("stat")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{name}");
        }
    }
    let run_page = dir.read("man1/promptmill-run.1");
    assert!(run_page.contains("max\\-cost"), "run's page lacks its flags");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path("man1"))
        .expect("read_dir")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn man_dir_that_does_not_exist_is_an_error_naming_it() {
    let dir = Dir::new();
    let out = run(promptmill(&dir).args(["man", "--dir", "no-such-dir"]));
    assert_eq!(out.code(), 1, "{}", out.stderr);
    assert!(out.stderr.contains("no-such-dir"), "{}", out.stderr);
}
