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
