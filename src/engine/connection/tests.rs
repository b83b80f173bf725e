//! The connection without a socket: a scripted [`Transport`] feeds it bytes and takes what it
//! writes, so the state machine, the keep-alive offer, the output gate and the deadlines are
//! tested one step at a time, with no thread and no timing. Never opens a socket.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::Read as _;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use polling::Poller;

use super::*;
use crate::engine::acceptor::Gauge;
use crate::engine::handoff::{job_queue, Gate, JobReceiver, LoopWaker};
use crate::engine::sys::LoopBell;
use crate::engine::Shared;
use crate::ops::metrics::Metrics;
use crate::ops::proxy::TrustedProxies;

/// What the client side of the script has sent and received.
#[derive(Default)]
struct ScriptState {
    input: VecDeque<u8>,
    eof: bool,
    output: Vec<u8>,
    /// Bytes the client will take before the socket would block; `None`: no limit.
    write_room: Option<usize>,
    write_shut: bool,
    /// The client reset the connection: reads fail.
    reset: bool,
    /// `send_file` calls answered before it says `Unsupported`; `None`: the transport has no
    /// `send_file` (like an encrypting one).
    send_file_calls: Option<usize>,
}

#[derive(Clone, Default)]
struct Script(Rc<RefCell<ScriptState>>);

impl Script {
    fn send(&self, bytes: &[u8]) {
        self.0.borrow_mut().input.extend(bytes);
    }

    fn take_output(&self) -> String {
        String::from_utf8(std::mem::take(&mut self.0.borrow_mut().output)).unwrap()
    }

    fn set_write_room(&self, room: Option<usize>) {
        self.0.borrow_mut().write_room = room;
    }
}

impl Transport for Script {
    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let mut s = self.0.borrow_mut();
        if s.reset {
            return Err(io::ErrorKind::ConnectionReset.into());
        }
        if s.input.is_empty() {
            return if s.eof { Ok(0) } else { Err(io::ErrorKind::WouldBlock.into()) };
        }
        let n = buf.len().min(s.input.len());
        for (slot, byte) in buf.iter_mut().zip(s.input.drain(..n)) {
            *slot = byte;
        }
        Ok(n)
    }

    fn write(&self, buf: &[u8]) -> io::Result<usize> {
        let mut s = self.0.borrow_mut();
        let n = s.write_room.map_or(buf.len(), |room| room.min(buf.len()));
        if n == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        s.output.extend_from_slice(&buf[..n]);
        if let Some(room) = &mut s.write_room {
            *room -= n;
        }
        Ok(n)
    }

    fn shutdown_write(&self) -> io::Result<()> {
        self.0.borrow_mut().write_shut = true;
        Ok(())
    }

    fn send_file(&self, file: &std::fs::File, len: usize) -> Option<io::Result<usize>> {
        let calls = self.0.borrow().send_file_calls?;
        if calls == 0 {
            return Some(Err(io::ErrorKind::Unsupported.into()));
        }
        self.0.borrow_mut().send_file_calls = Some(calls - 1);
        let room = self.0.borrow().write_room.map_or(len, |room| room.min(len));
        let mut piece = vec![0; room];
        let n = match (&*file).read(&mut piece) {
            Ok(n) => n,
            Err(e) => return Some(Err(e)),
        };
        Some(self.write(&piece[..n]))
    }
}

/// A loop context of `config`, with the receiving end of its job queue.
fn context(config: Config) -> (LoopCtx, JobReceiver) {
    // Off: no thread; the access log's own tests cover the writer.
    let config_access_log = crate::ops::access_log::AccessLogFormat::Off;
    let (to_loop, _) = crate::engine::handoff::mailbox();
    let (jobs, jobs_rx) = job_queue(4);
    let body_budget = Arc::new(crate::engine::body_budget::BodyBudget::new(config.body_spool_threshold));
    let shared = Arc::new(Shared {
        watch: crate::engine::watchdog::Watch::new(1, None),
        config: Arc::new(config),
        trusted: TrustedProxies::none(),
        metrics: Metrics::default(),
        draining: AtomicBool::new(false),
        waker: LoopWaker::new(LoopBell::new(&Arc::new(Poller::new().unwrap())).unwrap(), to_loop),
        gauge: Gauge::default(),
        body_budget,
        idle_drain_grace: std::time::Duration::ZERO,
        access_log: crate::ops::access_log::AccessLog::start(config_access_log, Arc::default()).unwrap().0,
        tls: None,
    });
    let ctx = LoopCtx {
        limits: shared.config.limits(),
        shared,
        jobs,
        closing: false,
        buffers: BufferPool::default(),
        out_buffers: crate::engine::buffer::OutPool::default(),
        writings: Vec::new(),
        scratch: Vec::new(),
        last_queue_warning: None,
        open_connections: 1,
        warnings: Default::default(),
        on_loop: None,
        on_loop_depth: 0,
    };
    (ctx, jobs_rx)
}

fn connection(script: &Script, now: Instant) -> Connection<Script> {
    let addr = "127.0.0.1:1".parse().unwrap();
    Connection::new(script.clone(), addr, addr, ConnRef { slot: 0, generation: 0 }, now)
}

fn ok_response(after: After) -> Outgoing {
    Outgoing { head: b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec(), source: Source::None, after }
}

const GET_A: &[u8] = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
const GET_B: &[u8] = b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n";

#[test]
fn pipelined_requests_go_to_workers_one_at_a_time_and_are_answered_in_order() {
    let (mut ctx, jobs) = context(Config::default());
    let script = Script::default();
    let now = Instant::now();
    let mut conn = connection(&script, now);
    script.send(&[GET_A, GET_B].concat());

    assert_eq!(conn.on_readable(&mut ctx, now), Step::Open);
    let first = jobs.try_recv().unwrap();
    assert_eq!(first.head.target(), "/a");
    assert!(first.keep_alive);
    assert!(jobs.try_recv().is_none(), "the second waits for the first answer");
    assert_eq!(conn.interest(), Interest::NONE, "a connection at a worker waits for nothing");

    assert_eq!(conn.on_response(&mut ctx, ok_response(After::KeepAlive), now), Step::Open);
    assert_eq!(script.take_output(), "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    assert_eq!(jobs.try_recv().unwrap().head.target(), "/b", "the pipelined request goes next");

    assert_eq!(conn.on_response(&mut ctx, ok_response(After::Close), now), Step::Close);
    assert!(script.take_output().ends_with("ok"));
}

#[test]
fn keep_alive_is_offered_only_within_the_request_cap_and_outside_a_drain() {
    let config = Config { max_requests_per_connection: 2, ..Config::default() };
    let (mut ctx, jobs) = context(config);
    let script = Script::default();
    let now = Instant::now();
    let mut conn = connection(&script, now);

    script.send(GET_A);
    assert_eq!(conn.on_readable(&mut ctx, now), Step::Open);
    assert!(jobs.try_recv().unwrap().keep_alive, "first of two");
    assert_eq!(conn.on_response(&mut ctx, ok_response(After::KeepAlive), now), Step::Open);
    script.send(GET_B);
    assert_eq!(conn.on_readable(&mut ctx, now), Step::Open);
    assert!(!jobs.try_recv().unwrap().keep_alive, "the last request the cap allows");

    let (mut ctx, jobs) = context(Config::default());
    let mut conn = connection(&script, now);
    script.send(b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(conn.on_readable(&mut ctx, now), Step::Open);
    assert!(!jobs.try_recv().unwrap().keep_alive, "HTTP/1.0 without keep-alive");

    let (mut ctx, jobs) = context(Config::default());
    ctx.shared.draining.store(true, Ordering::Relaxed);
    let mut conn = connection(&script, now);
    script.send(GET_A);
    assert_eq!(conn.on_readable(&mut ctx, now), Step::Open);
    assert!(!jobs.try_recv().unwrap().keep_alive, "draining");
}

/// A file of `len` bytes (`0123456789` repeated) at its start, and that text.
fn numbered_file(len: usize) -> (std::fs::File, String) {
    use std::io::{Seek, Write as _};
    let text: String = (0..len).map(|i| char::from(b'0' + (i % 10) as u8)).collect();
    let mut file = tempfile::tempfile().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    file.rewind().unwrap();
    (file, text)
}

/// Serves `file` (`len` bytes) as the answer to one request, the client taking `room` bytes per
/// turn; returns everything written.
fn serve_file(script: &Script, file: std::fs::File, len: usize, room: usize) -> String {
    let (mut ctx, jobs) = context(Config::default());
    let now = Instant::now();
    let mut conn = connection(script, now);
    script.send(GET_A);
    assert_eq!(conn.on_readable(&mut ctx, now), Step::Open);
    jobs.try_recv().unwrap();
    let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n").into_bytes();
    script.set_write_room(Some(room));
    let response = Outgoing { head, source: Source::File(file, len as u64), after: After::KeepAlive };
    assert_eq!(conn.on_response(&mut ctx, response, now), Step::Open);
    for _ in 0..10_000 {
        if conn.interest() != Interest::WRITE {
            break;
        }
        script.set_write_room(Some(room));
        assert_eq!(conn.on_writable(&mut ctx, now), Step::Open);
    }
    assert_eq!(conn.interest(), Interest::READ, "the response was sent whole: idle again");
    script.take_output()
}

#[test]
fn a_file_body_is_read_and_written_when_the_transport_cannot_send_files() {
    let script = Script::default();
    let (file, text) = numbered_file(200_000);
    let out = serve_file(&script, file, text.len(), 7_000);
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"));
    assert_eq!(out.split_once("\r\n\r\n").unwrap().1, text);
}

#[test]
fn a_file_body_goes_by_send_file_and_falls_back_to_read_and_write_where_refused() {
    let script = Script::default();
    script.0.borrow_mut().send_file_calls = Some(3);
    let (file, text) = numbered_file(200_000);
    let out = serve_file(&script, file, text.len(), 7_000);
    assert_eq!(script.0.borrow().send_file_calls, Some(0), "sent by send_file until it refused");
    assert_eq!(out.split_once("\r\n\r\n").unwrap().1, text, "every byte once, in order");
}

#[test]
fn the_output_gate_counts_only_streamed_bytes_the_client_has_taken() {
    let (mut ctx, jobs) = context(Config::default());
    let script = Script::default();
    let now = Instant::now();
    let mut conn = connection(&script, now);
    script.send(GET_A);
    assert_eq!(conn.on_readable(&mut ctx, now), Step::Open);
    jobs.try_recv().unwrap();

    let gate = Arc::new(Gate::new(8));
    let head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    let head_len = head.len();
    script.set_write_room(Some(head_len + 2));
    let response = Outgoing { head, source: Source::Stream(Arc::clone(&gate)), after: After::KeepAlive };
    assert_eq!(conn.on_response(&mut ctx, response, now), Step::Open);
    assert_eq!(gate.pending(), 0, "the head is never counted");

    assert!(gate.reserve(7));
    assert_eq!(conn.on_chunk(&mut ctx, b"2\r\nok\r\n".to_vec(), now), Step::Open);
    assert_eq!(gate.pending(), 5, "two of seven bytes were taken");
    assert_eq!(conn.interest(), Interest::WRITE);

    script.set_write_room(None);
    assert_eq!(conn.on_writable(&mut ctx, now), Step::Open);
    assert_eq!(gate.pending(), 0);
    assert_eq!(conn.interest(), Interest::NONE, "waiting for the worker's next piece");

    assert!(gate.reserve(5));
    assert_eq!(conn.on_chunk(&mut ctx, b"0\r\n\r\n".to_vec(), now), Step::Open);
    assert_eq!(conn.on_stream_end(&mut ctx, true, now), Step::Open, "a complete stream keeps the connection");
    assert!(script.take_output().ends_with("2\r\nok\r\n0\r\n\r\n"));
    assert_eq!(conn.interest(), Interest::READ, "idle again");
    assert!(!gate.is_closed());
    drop(conn);
}

#[test]
fn a_stream_that_breaks_closes_the_connection_and_releases_the_worker() {
    let (mut ctx, jobs) = context(Config::default());
    let script = Script::default();
    let now = Instant::now();
    let mut conn = connection(&script, now);
    script.send(GET_A);
    assert_eq!(conn.on_readable(&mut ctx, now), Step::Open);
    jobs.try_recv().unwrap();
    let gate = Arc::new(Gate::new(8));
    let response = Outgoing {
        head: b"HTTP/1.1 200 OK\r\n\r\n".to_vec(),
        source: Source::Stream(Arc::clone(&gate)),
        after: After::KeepAlive,
    };
    assert_eq!(conn.on_response(&mut ctx, response, now), Step::Open);
    assert_eq!(conn.on_stream_end(&mut ctx, false, now), Step::Close);

    // A connection dropped mid-stream (the loop closed it) lets the worker go.
    let gate = Arc::new(Gate::new(8));
    let mut conn = connection(&script, now);
    script.send(GET_A);
    assert_eq!(conn.on_readable(&mut ctx, now), Step::Open);
    jobs.try_recv().unwrap();
    let response = Outgoing {
        head: b"HTTP/1.1 200 OK\r\n\r\n".to_vec(),
        source: Source::Stream(Arc::clone(&gate)),
        after: After::KeepAlive,
    };
    assert_eq!(conn.on_response(&mut ctx, response, now), Step::Open);
    assert!(!gate.is_closed());
    drop(conn);
    assert!(gate.is_closed());
    assert!(!gate.reserve(1), "the worker stops producing");
}

#[test]
fn deadlines_follow_the_phase() {
    let config = Config::default();
    let (header, keepalive, write) = (config.header_timeout, config.keepalive_timeout, config.write_timeout);
    let (mut ctx, jobs) = context(config);
    let script = Script::default();
    let t0 = Instant::now();
    let mut conn = connection(&script, t0);
    let deadline = |conn: &Connection<Script>, ctx: &LoopCtx| conn.compute_deadline(&ctx.shared.config, false);

    assert_eq!(deadline(&conn, &ctx), Some(t0 + header), "a new connection: the head deadline runs from accept");
    let t1 = t0 + Duration::from_secs(1);
    script.send(b"GET /a HT");
    assert_eq!(conn.on_readable(&mut ctx, t1), Step::Open);
    assert_eq!(deadline(&conn, &ctx), Some(t0 + header), "dribbling does not extend it");
    script.send(b"TP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(conn.on_readable(&mut ctx, t1), Step::Open);
    jobs.try_recv().unwrap();
    assert_eq!(deadline(&conn, &ctx), None, "the handler's time is not the client's");

    let t2 = t0 + Duration::from_secs(2);
    script.set_write_room(Some(0));
    assert_eq!(conn.on_response(&mut ctx, ok_response(After::KeepAlive), t2), Step::Open);
    assert_eq!(deadline(&conn, &ctx), Some(t2 + write), "a response the client does not take");

    let t3 = t0 + Duration::from_secs(3);
    script.set_write_room(None);
    assert_eq!(conn.on_writable(&mut ctx, t3), Step::Open);
    assert_eq!(deadline(&conn, &ctx), Some(t3 + keepalive), "kept alive: idle from the end of the response");

    // The next head's deadline runs from its first byte, and its expiry answers 408 and lingers.
    let t4 = t0 + Duration::from_secs(4);
    script.take_output();
    script.send(b"GET /b");
    assert_eq!(conn.on_readable(&mut ctx, t4), Step::Open);
    assert_eq!(deadline(&conn, &ctx), Some(t4 + header));
    assert_eq!(conn.on_deadline(&mut ctx, t4 + header), Step::Open);
    assert!(script.take_output().starts_with("HTTP/1.1 408 Request Timeout\r\n"));
    assert!(script.0.borrow().write_shut, "half-closed while lingering");
    assert_eq!(conn.interest(), Interest::READ, "draining what the client still sends");
}

#[test]
fn eviction_ranks_the_least_progress_first_and_never_a_request_in_hand() {
    let config = Config { min_transfer_rate: 1024, ..Config::default() };
    let (mut ctx, jobs) = context(config.clone());
    let t0 = Instant::now();
    let late = t0 + Duration::from_secs(5);
    let rank = |conn: &Connection<Script>, now: Instant| conn.eviction_rank(&config, now).map(|(cut, _)| cut);

    // A new connection is not judged within EVICT_GRACE; after it, silent.
    let silent = Script::default();
    let fresh = connection(&silent, t0);
    assert_eq!(rank(&fresh, t0 + Duration::from_millis(500)), None, "too new to judge");
    assert_eq!(rank(&fresh, late), Some(Cut::Silent));

    // A partial head ranks before everything but a lingering connection.
    let partial = Script::default();
    let mut head = connection(&partial, t0);
    partial.send(b"GET /a HTTP/1.1\r\nHo");
    assert_eq!(head.on_readable(&mut ctx, t0), Step::Open);
    assert_eq!(rank(&head, t0), Some(Cut::PartialHead), "judged at once: its bytes were read");

    // A complete request unread (pipelined behind one at a worker) and one at a worker: never.
    let busy = Script::default();
    let mut handling = connection(&busy, t0);
    busy.send(&[GET_A, GET_B].concat());
    assert_eq!(handling.on_readable(&mut ctx, t0), Step::Open);
    jobs.try_recv().unwrap();
    assert_eq!(rank(&handling, late), None, "a request at a worker keeps its place");

    // Idle after a response: an idle keep-alive connection.
    let idle = Script::default();
    let mut kept = connection(&idle, t0);
    idle.send(GET_A);
    assert_eq!(kept.on_readable(&mut ctx, t0), Step::Open);
    jobs.try_recv().unwrap();
    assert_eq!(kept.on_response(&mut ctx, ok_response(After::KeepAlive), t0), Step::Open);
    assert_eq!(rank(&kept, late), Some(Cut::IdleKeepAlive));

    // A body: healthy at the minimum rate, cut below it.
    let uploader = Script::default();
    let mut body = connection(&uploader, t0);
    uploader.send(b"POST /u HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n");
    assert_eq!(body.on_readable(&mut ctx, t0), Step::Open);
    uploader.send(&[b'x'; 6000]);
    assert_eq!(body.on_readable(&mut ctx, t0 + Duration::from_secs(1)), Step::Open);
    assert_eq!(rank(&body, t0 + Duration::from_secs(5)), None, "6000 bytes in 5 s is above 1 KiB/s");
    assert_eq!(rank(&body, t0 + Duration::from_secs(10)), Some(Cut::SlowBody), "6000 bytes in 10 s is below");

    // A response: what the socket takes before its buffer first fills is not progress; after
    // that, the rate the client takes it decides.
    let reader = Script::default();
    let mut writing = connection(&reader, t0);
    reader.send(GET_A);
    assert_eq!(writing.on_readable(&mut ctx, t0), Step::Open);
    jobs.try_recv().unwrap();
    reader.set_write_room(Some(100));
    let big = Outgoing {
        head: b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n".to_vec(),
        source: Source::Bytes(vec![b'y'; 100_000]),
        after: After::KeepAlive,
    };
    assert_eq!(writing.on_response(&mut ctx, big, t0), Step::Open);
    assert_eq!(rank(&writing, t0 + Duration::from_millis(900)), None, "within the grace");
    reader.set_write_room(Some(4000));
    assert_eq!(writing.on_writable(&mut ctx, t0 + Duration::from_secs(2)), Step::Open);
    assert_eq!(rank(&writing, t0 + Duration::from_secs(2)), None, "4000 bytes in 2 s is above 1 KiB/s");
    assert_eq!(rank(&writing, t0 + Duration::from_secs(8)), Some(Cut::SlowReader), "4000 in 8 s is below");

    // The order: least progress first.
    let mut ranks: Vec<Cut> =
        [&fresh, &head, &kept, &body, &writing].iter().filter_map(|c| rank(c, t0 + Duration::from_secs(10))).collect();
    ranks.sort();
    assert_eq!(ranks, [Cut::PartialHead, Cut::Silent, Cut::IdleKeepAlive, Cut::SlowBody, Cut::SlowReader]);
}

#[test]
fn header_and_body_deadlines_tighten_under_pressure() {
    let config = Config::default();
    let (header, body) = (config.header_timeout, config.body_timeout);
    let (mut ctx, _jobs) = context(config.clone());
    let t0 = Instant::now();
    let script = Script::default();
    let mut conn = connection(&script, t0);
    let tight = |d: Duration| d / PRESSURE_DIVISOR;
    assert_eq!(conn.compute_deadline(&config, false), Some(t0 + header));
    assert_eq!(conn.compute_deadline(&config, true), Some(t0 + tight(header)), "a new connection's head");
    script.send(b"POST /u HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n");
    assert_eq!(conn.on_readable(&mut ctx, t0), Step::Open);
    assert_eq!(conn.compute_deadline(&config, false), Some(t0 + body));
    assert_eq!(conn.compute_deadline(&config, true), Some(t0 + tight(body)), "a body without progress");

    // The loop's view of pressure: from PRESSURE_PERCENT of connection_limit.
    let limit = ctx.shared.config.connection_limit;
    ctx.open_connections = limit * PRESSURE_PERCENT / 100 - 1;
    assert!(!ctx.under_pressure());
    ctx.open_connections = limit * PRESSURE_PERCENT / 100;
    assert!(ctx.under_pressure());
}

#[test]
fn the_drain_reads_a_request_already_waiting_on_a_kept_alive_connection() {
    let (mut ctx, jobs) = context(Config::default());
    let script = Script::default();
    let now = Instant::now();
    let mut conn = connection(&script, now);
    script.send(GET_A);
    assert_eq!(conn.on_readable(&mut ctx, now), Step::Open);
    jobs.try_recv().unwrap();
    assert_eq!(conn.on_response(&mut ctx, ok_response(After::KeepAlive), now), Step::Open);
    // The next request is in the socket, not yet reported by the poller, when the drain begins.
    script.send(GET_B);
    ctx.shared.draining.store(true, Ordering::Relaxed);
    ctx.closing = true;
    assert_eq!(conn.on_drain(&mut ctx, now), Step::Open, "a request is waiting: read and answer it");
    let job = jobs.try_recv().expect("the waiting request goes to a worker");
    assert_eq!(job.head.target(), "/b");
    assert!(!job.keep_alive, "answered with Connection: close");

    // With nothing waiting, the kept-alive connection closes at once.
    let (mut ctx, _jobs) = context(Config::default());
    let quiet = Script::default();
    let mut conn = connection(&quiet, now);
    quiet.send(GET_A);
    assert_eq!(conn.on_readable(&mut ctx, now), Step::Open);
    assert_eq!(conn.on_response(&mut ctx, ok_response(After::KeepAlive), now), Step::Open);
    assert_eq!(conn.on_drain(&mut ctx, now), Step::Close);
}

#[test]
fn a_reset_while_the_request_waits_cancels_it_but_an_end_of_file_does_not() {
    let (mut ctx, jobs) = context(Config::default());
    let now = Instant::now();
    // End-of-file (a half-close) after a complete request: the request stays.
    let half = Script::default();
    let mut conn = connection(&half, now);
    half.send(GET_A);
    assert_eq!(conn.on_readable(&mut ctx, now), Step::Open);
    let job = jobs.try_recv().unwrap();
    assert_eq!(conn.interest(), Interest::READ, "watched while at a worker");
    half.0.borrow_mut().eof = true;
    assert_eq!(conn.on_readable(&mut ctx, now), Step::Open);
    assert_eq!(conn.interest(), Interest::NONE, "no more watching after the end-of-file");
    assert!(!job.cancelled.load(Ordering::Relaxed), "a half-closed client still gets its answer");
    assert_eq!(conn.on_response(&mut ctx, ok_response(After::KeepAlive), now), Step::Close, "answered, then closed");
    assert!(half.take_output().ends_with("ok"));

    // A reset: the connection closes and the queued job is cancelled.
    let reset = Script::default();
    let mut conn = connection(&reset, now);
    reset.send(GET_A);
    assert_eq!(conn.on_readable(&mut ctx, now), Step::Open);
    let job = jobs.try_recv().unwrap();
    reset.0.borrow_mut().reset = true;
    assert_eq!(conn.on_readable(&mut ctx, now), Step::Close);
    conn.release_worker();
    assert!(job.cancelled.load(Ordering::Relaxed), "the worker must drop this request");
}

/// The loop keeps the `Writing` state of a finished response for the next one, but at most
/// `KEPT_WRITINGS` of them: responses that all finish in one pass (here every connection's,
/// each blocked until the client takes bytes again) must not grow the kept list past it.
#[test]
fn finished_responses_leave_at_most_kept_writings_states_for_reuse() {
    let (mut ctx, jobs) = context(Config::default());
    let now = Instant::now();
    let mut open = Vec::new();
    for _ in 0..output::KEPT_WRITINGS + 3 {
        let script = Script::default();
        let mut conn = connection(&script, now);
        script.send(GET_A);
        assert_eq!(conn.on_readable(&mut ctx, now), Step::Open);
        jobs.try_recv().expect("the request went to a worker");
        script.set_write_room(Some(0));
        assert_eq!(conn.on_response(&mut ctx, ok_response(After::KeepAlive), now), Step::Open);
        assert_eq!(conn.interest(), Interest::WRITE, "blocked in the middle of its response");
        open.push((script, conn));
    }
    assert!(ctx.writings.is_empty(), "every state is in use");
    for (script, conn) in &mut open {
        script.set_write_room(None);
        assert_eq!(conn.on_writable(&mut ctx, now), Step::Open);
        assert!(script.take_output().ends_with("\r\n\r\nok"));
    }
    assert_eq!(ctx.writings.len(), output::KEPT_WRITINGS);
    // The next response takes a kept state instead of a new one.
    let (script, conn) = &mut open[0];
    script.send(GET_B);
    assert_eq!(conn.on_readable(&mut ctx, now), Step::Open);
    jobs.try_recv().expect("the next request went to a worker");
    script.set_write_room(Some(0));
    assert_eq!(conn.on_response(&mut ctx, ok_response(After::KeepAlive), now), Step::Open);
    assert_eq!(ctx.writings.len(), output::KEPT_WRITINGS - 1, "the response took a kept state");
    script.set_write_room(None);
    assert_eq!(conn.on_writable(&mut ctx, now), Step::Open);
    assert_eq!(ctx.writings.len(), output::KEPT_WRITINGS, "and gave it back once written");
}
