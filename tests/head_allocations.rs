//! A parsed request head costs at most two heap allocations (its bytes and its field list),
//! whatever its number of header fields. The head is allocated on the I/O loop thread and freed
//! on a worker thread, where the allocator's per-thread cache does not help, so this is pinned.
//! A response's header fields share one buffer too (one allocation for a few short fields).
//!
//! This test binary counts allocations with its own global allocator: it forwards every call to
//! the system allocator and counts those made by the current thread while counting is on, so
//! the other tests' threads and the harness do not disturb the count. It is the only `unsafe`
//! here, and it lives in this test binary alone.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use maitred::fuzzing::{parse_head, Head, HeadScanner, Limits};
use maitred::Response;

/// The system allocator, counting this thread's allocations while [`COUNTING`] is set.
struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn count_one() {
    if COUNTING.try_with(Cell::get).unwrap_or(false) {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
    }
}

// SAFETY: every call is forwarded unchanged to `System`, which upholds `GlobalAlloc`'s
// contract; the counting touches only const-initialised thread-locals without destructors, so
// it never allocates or recurses.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_one();
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_one();
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_one();
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Parses the complete head `input` and returns it with the allocations `parse_head` made
/// (scanning is not counted: it allocates nothing, and is not what is pinned here).
fn parse_counting(input: &[u8], limits: &Limits) -> (Head, usize) {
    let span = HeadScanner::new().scan(input, limits).expect("a valid head").expect("a complete head");
    ALLOCATIONS.with(|n| n.set(0));
    COUNTING.with(|c| c.set(true));
    let head = parse_head(input, &span, limits);
    COUNTING.with(|c| c.set(false));
    let allocations = ALLOCATIONS.with(Cell::get);
    assert!(allocations > 0, "no allocation counted: the head's bytes are always copied");
    (head.expect("a valid head"), allocations)
}

/// A `GET` head with `Host` and then `extra` more fields, and a version of `version`.
fn head_with(extra: usize, version: &str) -> Vec<u8> {
    let mut text = format!("GET /index.html?q=1 {version}\r\nHost: example.com\r\n");
    for i in 0..extra {
        text.push_str(&format!("X-Field-{i}: value {i}\r\n"));
    }
    text.push_str("\r\n");
    text.into_bytes()
}

#[test]
fn a_one_field_head_costs_at_most_two_allocations() {
    let (head, allocations) = parse_counting(&head_with(0, "HTTP/1.1"), &Limits::default());
    assert_eq!(head.headers().len(), 1);
    assert!(allocations <= 2, "parse_head made {allocations} allocations for a 1-field head");
}

#[test]
fn a_twenty_field_head_costs_at_most_two_allocations() {
    let (head, allocations) = parse_counting(&head_with(19, "HTTP/1.1"), &Limits::default());
    assert_eq!(head.headers().len(), 20);
    assert!(allocations <= 2, "parse_head made {allocations} allocations for a 20-field head");
}

#[test]
fn a_head_at_the_default_field_limit_costs_at_most_two_allocations() {
    let limits = Limits::default();
    let (head, allocations) = parse_counting(&head_with(limits.max_headers - 1, "HTTP/1.1"), &limits);
    assert_eq!(head.headers().len(), limits.max_headers);
    assert!(allocations <= 2, "parse_head made {allocations} allocations for a {}-field head", limits.max_headers);
}

#[test]
fn a_higher_minor_version_costs_no_extra_allocation() {
    let (head, allocations) = parse_counting(&head_with(3, "HTTP/1.7"), &Limits::default());
    assert_eq!((head.method(), head.target()), ("GET", "/index.html?q=1"));
    assert!(allocations <= 2, "parse_head made {allocations} allocations for an HTTP/1.7 head");
}

/// Builds a response with `names`' fields (each valued `value`), counting the allocations.
fn response_counting(names: &[String]) -> (Response, usize) {
    ALLOCATIONS.with(|n| n.set(0));
    COUNTING.with(|c| c.set(true));
    let mut response = Response::new(200);
    for name in names {
        response.add_header(name, "value");
    }
    COUNTING.with(|c| c.set(false));
    (response, ALLOCATIONS.with(Cell::get))
}

#[test]
fn a_responses_header_fields_share_one_buffer() {
    // Before: a `Vec` of pairs and a `String` and a `Vec` per field (7 for three fields).
    let few: Vec<String> = ["Content-Type", "Cache-Control", "X-Request-Id"].map(String::from).to_vec();
    let (response, allocations) = response_counting(&few);
    assert_eq!(allocations, 1, "three short fields");
    let read: Vec<(&str, &[u8])> = response.headers().collect();
    assert_eq!(read, few.iter().map(|n| (n.as_str(), &b"value"[..])).collect::<Vec<_>>());
    // More fields grow the one buffer (doubling), not one allocation each (before: 27).
    let many: Vec<String> = (0..12).map(|i| format!("X-Field-{i}")).collect();
    let (response, allocations) = response_counting(&many);
    assert!(allocations <= 3, "12 fields: {allocations} allocations");
    assert_eq!(response.headers().count(), 12);
    assert_eq!(response.headers().nth(11), Some(("X-Field-11", &b"value"[..])));
}
