//! The README's settings table is generated from the settings table in the code; this test
//! fails when they drift apart and prints the table to paste. `MAITRED_BLESS=1 cargo test --test
//! docs` rewrites the README's table from the code.

fn expected_table() -> String {
    let mut table = String::from("| flag | environment variable | default | unit | meaning |\n|---|---|---|---|---|\n");
    for s in maitred::SETTINGS {
        table.push_str(&format!(
            "| `{}` | `{}` | `{}` | {} | {} |\n",
            s.flag(),
            s.env_var(),
            s.default_text(),
            s.unit,
            s.summary().replace('|', "\\|")
        ));
    }
    table
}

#[test]
fn readme_settings_table_matches_the_code() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let begin = "<!-- settings:begin -->\n";
    let start = readme.find(begin).expect("README lacks the settings:begin marker") + begin.len();
    let end = readme.find("<!-- settings:end -->").expect("README lacks the settings:end marker");
    let expected = expected_table();
    if std::env::var_os("MAITRED_BLESS").is_some() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
        std::fs::write(path, format!("{}{expected}{}", &readme[..start], &readme[end..])).unwrap();
        return;
    }
    assert!(readme[start..end] == expected, "README settings table is stale; replace it with:\n{expected}");
}

fn repo_file(path: &str) -> String {
    let full = format!("{}/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

/// The commands of the fenced code blocks (```sh) of `text`, in order, one list per block,
/// without their `# comments`.
fn code_blocks(text: &str) -> Vec<Vec<String>> {
    let mut blocks = Vec::new();
    let mut current: Option<Vec<String>> = None;
    for line in text.lines() {
        match (&mut current, line.trim_start().starts_with("```")) {
            (None, true) => current = Some(Vec::new()),
            (Some(_), true) => blocks.push(current.take().unwrap()),
            (Some(block), false) => {
                let command = line.split(" #").next().unwrap_or("").trim();
                if !command.is_empty() {
                    block.push(command.to_string());
                }
            }
            (None, false) => {}
        }
    }
    blocks
}

#[test]
fn readme_first_screen_shows_the_rust_commands_then_the_python_ones() {
    let readme = repo_file("README.md");
    let first_screen: String = readme.lines().take(45).collect::<Vec<_>>().join("\n");
    let blocks = code_blocks(&first_screen);
    assert_eq!(
        blocks.first().map(Vec::as_slice),
        Some(&["cargo run --release".to_string(), "cargo test --release".to_string()][..])
    );
    let python = blocks.get(1).expect("a second code block on the first screen");
    assert!(python.contains(&"pip install .".to_string()), "{python:?}");
    assert!(python.contains(&"maitred module:app".to_string()), "{python:?}");
    // After `cargo run` there is no `maitred` on PATH: the first screen gives the cargo form.
    assert!(first_screen.contains("`cargo run --release -- DIR`"), "{first_screen}");
    assert!(!first_screen.contains("`maitred DIR` serves another directory"), "{first_screen}");
}

#[test]
fn readme_fuzz_command_is_the_one_ci_runs() {
    let ci = repo_file(".ci/run");
    let line = ci.lines().find(|l| l.starts_with("step \"fuzz")).expect(".ci/run has a fuzz step");
    let command = line.split_once("bash -c '").and_then(|(_, rest)| rest.rsplit_once('\'')).expect("bash -c '...'").0;
    let readme = repo_file("README.md");
    assert!(
        code_blocks(&readme).iter().flatten().any(|c| c == command),
        "README's fuzz section should show what .ci/run runs:\n{command}"
    );
}

#[test]
fn readme_505_row_says_which_versions_are_refused() {
    let readme = repo_file("README.md");
    let row = readme.lines().find(|l| l.starts_with("| 505 |")).expect("a 505 row");
    // HTTP/1.2 is served as HTTP/1.1 (RFC 9112 §2.3): only another major version is a 505.
    assert!(!row.contains("other than 1.0 and 1.1"), "{row}");
    assert!(row.contains("major") && row.contains("`HTTP/1.2`"), "{row}");
}

/// CI runs on a plain clone: nothing under `.ci/` reaches outside the repository (the Wine
/// shim used to come from `../shared/windows/`).
#[test]
fn ci_scripts_need_nothing_beside_the_checkout() {
    fn walk(dir: &std::path::Path, files: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, files);
            } else {
                files.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci"), &mut files);
    assert!(files.len() >= 3, "{files:?}");
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        assert!(!text.contains("../shared"), "{} refers to ../shared", file.display());
    }
    let smoke = repo_file(".ci/wine-smoke.sh");
    assert!(smoke.contains("$ROOT/.ci/windows/processprng_shim.c"), "wine-smoke.sh builds the shim kept here");
    assert!(repo_file(".ci/windows/processprng_shim.c").contains("ProcessPrng"));
}
