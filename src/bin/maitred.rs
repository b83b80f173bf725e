//! The `maitred` binary: serves a directory of static files (the current directory unless a
//! DIR is given), configured from flags, `MAITRED_*` variables and an optional config file.
//! Owns only `main`: the static-file app plus [`maitred::launch_with`]. Never holds server logic.

use std::path::PathBuf;
use std::process::ExitCode;

use maitred::static_files::{StaticFiles, StaticOptions};
use maitred::{Handler, Request, Response};

/// The static file app, plus a welcome page at the root when the directory has no
/// `index.html` (so a first run shows what is served rather than a bare 404).
struct App {
    files: StaticFiles,
    welcome_path: String,
    listing: bool,
}

impl Handler for App {
    fn handle(&self, request: Request) -> Response {
        let is_root = request.path() == self.welcome_path && matches!(request.method(), "GET" | "HEAD");
        let response = self.files.handle(request);
        if is_root && response.status() == 404 && !self.listing {
            return welcome(&self.files);
        }
        response
    }

    fn responds_on_loop(&self) -> bool {
        self.files.responds_on_loop()
    }

    /// The static app's fast path, except for the root, which may need the welcome page.
    fn respond_on_loop(&self, request: &Request) -> Option<Response> {
        if request.path() == self.welcome_path {
            return None;
        }
        self.files.respond_on_loop(request)
    }
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn welcome(files: &StaticFiles) -> Response {
    let root = escape_html(&files.root().display().to_string());
    Response::html(
        200,
        format!(
            "<!doctype html>
<html lang=\"en\">
<head><meta charset=\"utf-8\"><title>maitred</title></head>
<body>
<h1>maitred is running</h1>
<p>It serves <code>{root}</code>, which has no <code>index.html</code>. Files in it are served by
their path; add an <code>index.html</code> for this page, or start with
<code>--directory-listing</code> to list the directory.</p>
<p><code>maitred --help</code> lists every setting.</p>
</body>
</html>
"
        ),
    )
}

fn main() -> ExitCode {
    maitred::launch_with("maitred: a production HTTP/1.1 server for static files", " [DIR]", |config, args| {
        if args.len() > 1 {
            return Err(format!("unexpected argument {:?}: give at most one directory", args[1]));
        }
        if let Some(dir) = args.first() {
            config.root = PathBuf::from(dir);
        }
        let options = StaticOptions {
            root: config.root.clone(),
            url_prefix: config.url_prefix.clone(),
            directory_listing: config.directory_listing,
            follow_symlinks: config.follow_symlinks,
            serve_dotfiles: config.serve_dotfiles,
        };
        let files = StaticFiles::new(options).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => format!("cannot serve {}: no such directory", config.root.display()),
            _ => e.to_string(),
        })?;
        let welcome_path =
            if config.url_prefix.is_empty() { "/".to_string() } else { format!("{}/", config.url_prefix) };
        Ok(App { files, welcome_path, listing: config.directory_listing })
    })
}
