//! A stable-Rust driver for the same checks the libFuzzer targets run.
//!
//! ```text
//! replay <head_parser|chunked_decoder|all> [--seed N] [--iters N] [--secs S] [--dir DIR]... [FILE]...
//! ```
//!
//! With FILE arguments it only runs the check on those files (to reproduce a crash found by
//! either driver) and exits. Otherwise it runs the check on every file of the seed corpus
//! (`seeds/<target>/`), the libFuzzer corpus (`corpus/<target>/`, if present) and any `--dir`,
//! then on pseudo-random mutations of them from a xorshift generator seeded by `--seed`, until
//! `--iters` inputs or `--secs` seconds (per target), whichever comes first. There is no
//! coverage feedback; as a stand-in, a mutant is kept for further mutation when its outcome
//! signature (which rejection, which framing, which limits were small) is new.
//!
//! A broken invariant is a panic. The driver saves the input to
//! `artifacts/replay/<target>/crash-<hash>`, shrinks it while the same assertion still fails,
//! saves that as `minimized-<hash>`, prints both, and exits with status 1.

use std::cell::Cell;
use std::collections::HashSet;
use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use maitred_fuzz::{chunked_outcome, escape, head_outcome, PREFIX_LEN};

const MAX_LEN: usize = 4096;
const POOL_MAX: usize = 4096;

/// The last panic's message and location, recorded by the panic hook.
static LAST_PANIC: Mutex<Option<(String, String)>> = Mutex::new(None);

thread_local! {
    /// Whether a check is running: panics there are findings, recorded quietly; any other
    /// panic is a bug in the driver and is reported by the default hook.
    static IN_CHECK: Cell<bool> = const { Cell::new(false) };
}

struct Target {
    name: &'static str,
    check: fn(&[u8]) -> u64,
    dictionary: &'static [&'static [u8]],
}

const HEAD_WORDS: &[&[u8]] = &[
    b"\r\n",
    b"\r\n\r\n",
    b"GET ",
    b"POST ",
    b"OPTIONS ",
    b"CONNECT ",
    b" HTTP/1.1\r\n",
    b" HTTP/1.0\r\n",
    b"HTTP/2.0",
    b"Host: a\r\n",
    b"Host: [::1]:80\r\n",
    b"Host:",
    b"Transfer-Encoding: chunked\r\n",
    b"Transfer-Encoding:",
    b"transfer-encoding: CHUNKED\r\n",
    b"chunked",
    b"gzip, chunked",
    b"Content-Length: 5\r\n",
    b"Content-Length:",
    b"content-length: 0\r\n",
    b"18446744073709551616",
    b"Connection: close\r\n",
    b"Connection: keep-alive\r\n",
    b"Expect: 100-continue\r\n",
    b"http://",
    b"https://",
    b"/a?b=c",
    b"%20",
    b" ",
    b"\t",
    b":",
    b",",
    b"#",
    b"*",
];

const CHUNKED_WORDS: &[&[u8]] = &[
    b"\r\n",
    b"0\r\n\r\n",
    b"0\r\n",
    b"5\r\nhello\r\n",
    b"1\r\nA\r\n",
    b"ffffffffffffffff",
    b"10000000000000000",
    b"7fffffffffffffff",
    b";",
    b";name=value",
    b";a=\"q\"",
    b"Trailer: x\r\n",
    b"X:",
    b" ",
    b"\t",
    b":",
    b"0000",
    b"GET / HTTP/1.1\r\n",
];

const TARGETS: &[Target] = &[
    Target { name: "head_parser", check: head_outcome, dictionary: HEAD_WORDS },
    Target { name: "chunked_decoder", check: chunked_outcome, dictionary: CHUNKED_WORDS },
];

/// Bytes worth inserting: line endings, separators, hex digits, control and high bytes.
const INTERESTING: &[u8] = b"\r\n;:, \t0123456789abcdefABCDEF\x00\x7f\x80\xff\"=/?";

struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-ish in `0..n` (`n` > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// A position in a buffer of `len` bytes, `0..=len`.
    fn pos(&mut self, len: usize) -> usize {
        self.below(len + 1)
    }
}

/// Applies one to four random edits to `base`.
fn mutate(rng: &mut Rng, base: &[u8], pool: &[Vec<u8>], words: &[&[u8]]) -> Vec<u8> {
    let mut v = base.to_vec();
    for _ in 0..1 + rng.below(4) {
        match rng.below(13) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = rng.next() as u8;
            }
            2 => {
                let i = rng.pos(v.len());
                v.insert(i, INTERESTING[rng.below(INTERESTING.len())]);
            }
            3 if !v.is_empty() => {
                let i = rng.below(v.len());
                let n = (1 + rng.below(8)).min(v.len() - i);
                v.drain(i..i + n);
            }
            4 if !v.is_empty() => {
                let i = rng.below(v.len());
                let n = (1 + rng.below(16)).min(v.len() - i);
                let copy = v[i..i + n].to_vec();
                let at = rng.pos(v.len());
                v.splice(at..at, copy);
            }
            5 => {
                let i = rng.pos(v.len());
                let w = words[rng.below(words.len())];
                v.splice(i..i, w.iter().copied());
            }
            6 if !pool.is_empty() => {
                // Splice: a piece of another input replaces a piece of this one.
                let other = &pool[rng.below(pool.len())];
                let a = rng.pos(other.len());
                let b = a + rng.pos(other.len() - a);
                let i = rng.pos(v.len());
                let j = i + rng.pos(v.len() - i).min(8);
                v.splice(i..j, other[a..b].iter().copied());
            }
            7 => {
                // New parameters: other limits or other split points.
                while v.len() < PREFIX_LEN {
                    v.push(0);
                }
                let i = rng.below(PREFIX_LEN);
                v[i] = rng.next() as u8;
            }
            8 if v.len() > PREFIX_LEN => {
                let n = PREFIX_LEN + rng.below(v.len() - PREFIX_LEN);
                v.truncate(n);
            }
            9 => {
                // Line-ending games: CRLF -> LF, CRLF -> CR, LF -> CRLF, CRLF -> CRCRLF.
                let spots: Vec<usize> = v.iter().enumerate().filter(|(_, &b)| b == b'\n').map(|(i, _)| i).collect();
                if !spots.is_empty() {
                    let i = spots[rng.below(spots.len())];
                    match rng.below(4) {
                        0 if i > 0 && v[i - 1] == b'\r' => {
                            v.remove(i - 1);
                        }
                        1 if i > 0 && v[i - 1] == b'\r' => {
                            v.remove(i);
                        }
                        2 => v.insert(i, b'\r'),
                        _ => v.insert(i, b'\r'),
                    }
                }
            }
            10 => {
                // Numbers: change a digit, or add digits next to one.
                let spots: Vec<usize> =
                    v.iter().enumerate().filter(|(_, b)| b.is_ascii_hexdigit()).map(|(i, _)| i).collect();
                if !spots.is_empty() {
                    let i = spots[rng.below(spots.len())];
                    let d = b"0123456789abcdefF"[rng.below(17)];
                    if rng.below(2) == 0 {
                        v[i] = d;
                    } else {
                        for _ in 0..1 + rng.below(16) {
                            v.insert(i, d);
                        }
                    }
                }
            }
            11 if !v.is_empty() => {
                let i = rng.below(v.len());
                let j = i + rng.pos(v.len() - i).min(12);
                let w = words[rng.below(words.len())];
                v.splice(i..j, w.iter().copied());
            }
            _ => {
                // Repeat a range (many headers, many chunks, long lines).
                if !v.is_empty() {
                    let i = rng.below(v.len());
                    let n = (1 + rng.below(32)).min(v.len() - i);
                    let copy = v[i..i + n].to_vec();
                    for _ in 0..1 + rng.below(40) {
                        v.splice(i..i, copy.iter().copied());
                    }
                }
            }
        }
    }
    v.truncate(MAX_LEN);
    v
}

/// Runs `check` on `input`; on a panic returns its (message, location).
fn run(check: fn(&[u8]) -> u64, input: &[u8]) -> Result<u64, (String, String)> {
    IN_CHECK.with(|c| c.set(true));
    let result = panic::catch_unwind(AssertUnwindSafe(|| check(input)));
    IN_CHECK.with(|c| c.set(false));
    match result {
        Ok(sig) => Ok(sig),
        Err(_) => Err(LAST_PANIC.lock().unwrap().take().unwrap_or_default()),
    }
}

/// Shrinks `input` while the check still fails at the same place.
fn minimize(check: fn(&[u8]) -> u64, input: &[u8], location: &str, budget: Duration) -> Vec<u8> {
    let start = Instant::now();
    let fails_here = |v: &[u8]| matches!(run(check, v), Err((_, loc)) if loc == location);
    let mut best = input.to_vec();
    let mut chunk = best.len().next_power_of_two();
    while chunk >= 1 && start.elapsed() < budget {
        let mut i = 0;
        let mut progress = false;
        while i < best.len() && start.elapsed() < budget {
            let end = (i + chunk).min(best.len());
            let mut candidate = best[..i].to_vec();
            candidate.extend_from_slice(&best[end..]);
            if fails_here(&candidate) {
                best = candidate;
                progress = true;
            } else {
                i += chunk;
            }
        }
        if !progress {
            chunk /= 2;
        }
    }
    best
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
}

fn show(input: &[u8]) -> String {
    let (p, data) = input.split_at(input.len().min(PREFIX_LEN));
    let hex: Vec<String> = p.iter().map(|b| format!("{b:02x}")).collect();
    format!("params [{}] wire \"{}\"", hex.join(" "), escape(data))
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = match fs::read_dir(dir) {
        Ok(entries) => entries.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_file()).collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    files
}

struct Options {
    seed: u64,
    iters: u64,
    secs: u64,
    dirs: Vec<PathBuf>,
    files: Vec<PathBuf>,
}

/// Reports a failure: saves the input and its minimized form.
fn report(target: &Target, input: &[u8], message: &str, location: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("artifacts/replay").join(target.name);
    let _ = fs::create_dir_all(&dir);
    let hash = format!("{:016x}", fnv(input));
    let crash = dir.join(format!("crash-{hash}"));
    let _ = fs::write(&crash, input);
    eprintln!("\n=== {}: invariant failed at {location}\n{message}", target.name);
    eprintln!("input ({} bytes, saved to {}): {}", input.len(), crash.display(), show(input));
    let small = minimize(target.check, input, location, Duration::from_secs(30));
    let min = dir.join(format!("minimized-{hash}"));
    let _ = fs::write(&min, &small);
    let again = run(target.check, &small).err().map(|(m, _)| m).unwrap_or_default();
    eprintln!("minimized ({} bytes, saved to {}): {}", small.len(), min.display(), show(&small));
    eprintln!("minimized message: {again}");
}

/// Fuzzes one target; returns whether every check passed.
fn fuzz(target: &Target, opts: &Options) -> bool {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut dirs = vec![root.join("seeds").join(target.name), root.join("corpus").join(target.name)];
    dirs.extend(opts.dirs.iter().cloned());
    let mut pool: Vec<Vec<u8>> = Vec::new();
    let mut seen = HashSet::new();
    let started = Instant::now();
    let mut execs = 0u64;
    for dir in &dirs {
        for file in files_in(dir) {
            let Ok(input) = fs::read(&file) else { continue };
            execs += 1;
            match run(target.check, &input) {
                Ok(sig) => {
                    seen.insert(sig);
                    pool.push(input);
                }
                Err((message, location)) => {
                    eprintln!("{}: corpus file {} fails", target.name, file.display());
                    report(target, &input, &message, &location);
                    return false;
                }
            }
        }
    }
    let corpus_len = pool.len();
    if pool.is_empty() {
        pool.push(Vec::new());
    }
    println!("{}: {} corpus inputs pass; mutating with seed {}", target.name, corpus_len, opts.seed);

    let mut rng = Rng::new(opts.seed ^ fnv(target.name.as_bytes()));
    let deadline = started + Duration::from_secs(opts.secs);
    let mut kept = 0usize;
    let mut mutants = 0u64;
    while mutants < opts.iters {
        if mutants.is_multiple_of(256) && Instant::now() >= deadline {
            break;
        }
        let base = &pool[rng.below(pool.len())];
        let input = mutate(&mut rng, base, &pool, target.dictionary);
        mutants += 1;
        execs += 1;
        match run(target.check, &input) {
            Ok(sig) => {
                if seen.insert(sig) || rng.below(512) == 0 {
                    // Up to POOL_MAX mutants are kept beside the corpus, then replace each other.
                    if pool.len() < corpus_len + POOL_MAX {
                        pool.push(input);
                    } else {
                        let i = corpus_len + rng.below(POOL_MAX);
                        pool[i] = input;
                    }
                    kept += 1;
                }
            }
            Err((message, location)) => {
                report(target, &input, &message, &location);
                println!("{}: FAILED after {execs} executions", target.name);
                return false;
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{}: {execs} executions in {secs:.1} s ({:.0}/s), {} outcome signatures, {kept} mutants kept, no invariant failures",
        target.name,
        execs as f64 / secs.max(1e-9),
        seen.len()
    );
    true
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: replay <head_parser|chunked_decoder|all> [--seed N] [--iters N] [--secs S] [--dir DIR]... [FILE]...\n\
         defaults: --seed 1 --iters 100000000 --secs 60 (per target)\n\
         With FILE arguments, only runs the check on those files."
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let default_hook = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        if !IN_CHECK.with(Cell::get) {
            return default_hook(info);
        }
        let message = match (info.payload().downcast_ref::<&str>(), info.payload().downcast_ref::<String>()) {
            (Some(s), _) => (*s).to_string(),
            (_, Some(s)) => s.clone(),
            _ => "panic".to_string(),
        };
        let location = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
        *LAST_PANIC.lock().unwrap() = Some((message, location));
    }));

    let mut args = std::env::args().skip(1);
    let Some(which) = args.next() else { return usage() };
    let mut opts = Options { seed: 1, iters: 100_000_000, secs: 60, dirs: Vec::new(), files: Vec::new() };
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        let parsed: Result<(), String> = match arg.as_str() {
            "--seed" => {
                value("--seed").and_then(|v| v.parse().map(|n| opts.seed = n).map_err(|e| format!("--seed: {e}")))
            }
            "--iters" => {
                value("--iters").and_then(|v| v.parse().map(|n| opts.iters = n).map_err(|e| format!("--iters: {e}")))
            }
            "--secs" => {
                value("--secs").and_then(|v| v.parse().map(|n| opts.secs = n).map_err(|e| format!("--secs: {e}")))
            }
            "--dir" => value("--dir").map(|v| opts.dirs.push(v.into())),
            "-h" | "--help" => return usage(),
            _ if arg.starts_with("--") => Err(format!("unknown option {arg}")),
            _ => {
                opts.files.push(arg.into());
                Ok(())
            }
        };
        if let Err(e) = parsed {
            eprintln!("replay: {e}");
            return usage();
        }
    }
    let targets: Vec<&Target> = match which.as_str() {
        "all" => TARGETS.iter().collect(),
        name => match TARGETS.iter().find(|t| t.name == name) {
            Some(t) => vec![t],
            None => return usage(),
        },
    };

    let mut ok = true;
    if !opts.files.is_empty() {
        for target in &targets {
            for file in &opts.files {
                let input = match fs::read(file) {
                    Ok(input) => input,
                    Err(e) => {
                        eprintln!("replay: {}: {e}", file.display());
                        return ExitCode::from(2);
                    }
                };
                match run(target.check, &input) {
                    Ok(_) => println!("{}: {} passes", target.name, file.display()),
                    Err((message, location)) => {
                        ok = false;
                        println!(
                            "{}: {} FAILS at {location}\n{message}\ninput: {}",
                            target.name,
                            file.display(),
                            show(&input)
                        );
                    }
                }
            }
        }
    } else {
        for target in &targets {
            ok &= fuzz(target, &opts);
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
