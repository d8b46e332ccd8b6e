//! Slow and idle clients against the server layer through the real `tapeloop serve` (on
//! 127.0.0.1): with every connection slot taken by slowloris clients (a header byte every
//! 100 ms) and silent ones, a well-behaved client is still answered, and every slow client is
//! disconnected by the header-read / idle timeouts set on the command line.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Generous bound for "answered at all" and "disconnected at all": a hang fails, a slow
/// machine does not.
const HANG_GUARD: Duration = Duration::from_secs(20);

struct Serve {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(extra: &[&str]) -> Serve {
    let cassette = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/recordings/text-repeat.gemini.jsonl"
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_tapeloop"))
        .args([
            "serve",
            cassette,
            "--listen",
            "127.0.0.1:0",
            "--pace",
            "instant",
        ])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tapeloop serve");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("serve exited before listening")
            .unwrap();
        if let Some(rest) = line.split("on http://").nth(1) {
            break rest.split_whitespace().next().unwrap().parse().unwrap();
        }
    };
    // Keep draining stderr so the child never blocks on a full pipe.
    thread::spawn(move || for _ in lines {});
    Serve { child, addr }
}

/// Whether the server closed `s` (EOF or reset) within `within`.
fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 512];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue, // e.g. a 408 before closing
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                return false
            }
            Err(_) => return true,
        }
    }
}

#[test]
fn slow_clients_are_dropped_and_a_good_client_is_served() {
    let slots = 6;
    let s = serve(&[
        "--header-read-timeout",
        "0.5",
        "--idle-timeout",
        "1",
        "--max-connections",
        &slots.to_string(),
    ]);
    let addr = s.addr;
    // Slowloris: a request head one byte every 100 ms, never finished in time.
    let slow: Vec<_> = (0..slots)
        .map(|_| {
            thread::spawn(move || {
                let mut c = TcpStream::connect(addr).unwrap();
                let head = b"GET /_tapeloop/status HTTP/1.1\r\nHost: x\r\nX-Slow: ";
                let start = Instant::now();
                for b in head.iter().chain(std::iter::repeat(&b'a')) {
                    if c.write_all(&[*b]).is_err() {
                        return start.elapsed(); // the server closed it
                    }
                    if start.elapsed() > HANG_GUARD {
                        return start.elapsed();
                    }
                    thread::sleep(Duration::from_millis(100));
                }
                unreachable!()
            })
        })
        .collect();
    // Silent clients: connect and send nothing.
    let mut silent: Vec<TcpStream> = (0..slots)
        .map(|_| TcpStream::connect(addr).unwrap())
        .collect();
    thread::sleep(Duration::from_millis(200));

    // The well-behaved client, while every slot is taken.
    let start = Instant::now();
    let mut good = TcpStream::connect(addr).unwrap();
    good.set_read_timeout(Some(HANG_GUARD)).unwrap();
    good.write_all(b"GET /_tapeloop/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    good.read_to_string(&mut answer)
        .expect("the good client is answered");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let waited = start.elapsed();
    assert!(waited < HANG_GUARD, "good client waited {waited:?}");

    for c in &mut silent {
        assert!(
            closed_within(c, HANG_GUARD),
            "a silent connection was never closed"
        );
    }
    for h in slow {
        let held = h.join().unwrap();
        assert!(held < HANG_GUARD, "a slowloris client was held {held:?}");
    }
    eprintln!("good client answered after {waited:?} with all {slots} slots held by slow clients");
}

#[test]
fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let s = serve(&["--idle-timeout", "0.5"]);
    let mut c = TcpStream::connect(s.addr).unwrap();
    c.write_all(b"GET /_tapeloop/status HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    c.set_read_timeout(Some(HANG_GUARD)).unwrap();
    let mut buf = [0u8; 4096];
    let n = c.read(&mut buf).unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    // Kept alive, then idle: closed by the server.
    assert!(closed_within(&mut c, HANG_GUARD));
}

#[test]
fn a_stalled_request_body_gets_408_and_its_connection_closed() {
    let s = serve(&["--header-read-timeout", "0.5", "--max-connections", "2"]);
    // A complete head announcing 100 bytes of body, then 8 bytes and silence: a request
    // being read counts as in flight, so only the body's own read timeout frees the slot.
    let stalled: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut c = TcpStream::connect(s.addr).unwrap();
            c.write_all(
                b"POST /v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse HTTP/1.1\r\n\
                  Host: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"conte",
            )
            .unwrap();
            c
        })
        .collect();
    for mut c in stalled {
        c.set_read_timeout(Some(HANG_GUARD)).unwrap();
        let mut answer = Vec::new();
        let _ = c.read_to_end(&mut answer);
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains("the request body stalled"), "{answer}");
    }
    // Both slots are free again: a good client is answered.
    let mut good = TcpStream::connect(s.addr).unwrap();
    good.set_read_timeout(Some(HANG_GUARD)).unwrap();
    good.write_all(b"GET /_tapeloop/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    good.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[test]
fn at_the_connection_cap_an_idle_keep_alive_connection_makes_room() {
    // Both slots held by clients that were answered and keep their connection open (idle, far
    // from the 60 s idle timeout): a third client must not wait for that timeout.
    let s = serve(&["--max-connections", "2", "--idle-timeout", "60"]);
    let status = b"GET /_tapeloop/status HTTP/1.1\r\nHost: x\r\n\r\n";
    let idle: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut c = TcpStream::connect(s.addr).unwrap();
            c.write_all(status).unwrap();
            c.set_read_timeout(Some(HANG_GUARD)).unwrap();
            let mut buf = [0u8; 4096];
            let n = c.read(&mut buf).unwrap();
            assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
            c
        })
        .collect();
    let start = Instant::now();
    let mut third = TcpStream::connect(s.addr).unwrap();
    third.set_read_timeout(Some(HANG_GUARD)).unwrap();
    third
        .write_all(b"GET /_tapeloop/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    third.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let waited = start.elapsed();
    assert!(
        waited < Duration::from_secs(10),
        "the third client waited {waited:?}"
    );
    // Exactly one idle connection was closed to make room; the other is still open.
    let closed = idle
        .into_iter()
        .map(|mut c| closed_within(&mut c, Duration::from_millis(300)))
        .filter(|&c| c)
        .count();
    assert_eq!(closed, 1, "idle connections closed to make room");
}

#[test]
fn connection_flags_reject_nonsense_with_exit_2() {
    let out = Command::new(env!("CARGO_BIN_EXE_tapeloop"))
        .args(["serve", "x.jsonl", "--header-read-timeout", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected seconds"));
}
