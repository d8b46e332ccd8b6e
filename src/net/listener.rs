//! The one HTTP accept loop, shared by the replay server (`serve`) and the recording proxy.
//!
//! Each connection is served by hyper (HTTP/1.1 and HTTP/2) with `TCP_NODELAY`, so a relayed
//! or replayed chunk leaves at once instead of waiting for the client's delayed ACK. Shutdown
//! stops accepting, lets every in-flight exchange finish, closes idle keep-alive connections
//! at once, and cuts what is still running after [`SHUTDOWN_GRACE`].
//!
//! Slow and idle clients are shed by [`ConnLimits`]: a request head must arrive within the
//! header-read timeout (counted from the connection's start or the head's first byte), a
//! request body may not pause longer than that between two reads ([`RequestBody`]), a
//! connection with no request in flight is closed after the idle timeout, and at most
//! `max_connections` are served at once (more wait in the kernel's accept queue, and a client
//! waiting for a slot makes one idle keep-alive connection close, [`Pressure`]). A watchdog
//! per connection enforces the timeouts from what the connection reads and how many responses
//! are in flight, for HTTP/1.1 and HTTP/2 alike; a response in flight is never cut by them.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};

/// Response body type of both servers.
pub type Body = BoxBody<Bytes, std::io::Error>;

/// A request body as the handlers read it: hyper's, with a read timeout. A client that sends
/// its head and then trickles (or withholds) the body would otherwise hold a connection — and
/// a handler waiting on the body — forever, since a request being read counts as in flight.
pub struct RequestBody {
    inner: Incoming,
    timeout: Duration,
    /// Reset after every frame: the timeout bounds each pause, not the whole body.
    deadline: Pin<Box<tokio::time::Sleep>>,
}

/// Why a request body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RequestBodyError {
    #[error(transparent)]
    Http(#[from] hyper::Error),
    #[error("the request body stalled: nothing arrived for {0:?} (--header-read-timeout)")]
    Stalled(Duration),
}

impl RequestBody {
    fn new(inner: Incoming, timeout: Duration) -> Self {
        RequestBody {
            inner,
            timeout,
            deadline: Box::pin(tokio::time::sleep(timeout)),
        }
    }
}

impl hyper::body::Body for RequestBody {
    type Data = Bytes;
    type Error = RequestBodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, RequestBodyError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                let next = tokio::time::Instant::now() + this.timeout;
                this.deadline.as_mut().reset(next);
                Poll::Ready(frame.map(|f| f.map_err(RequestBodyError::from)))
            }
            Poll::Pending => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(RequestBodyError::Stalled(this.timeout)))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// How long shutdown waits for in-flight responses before cutting them.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How the server layer sheds slow and idle clients (flags `--header-read-timeout`,
/// `--idle-timeout`, `--max-connections` on `serve` and `record --proxy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnLimits {
    /// A request head must be complete this long after the connection opened or after its
    /// first byte arrived; else the connection is closed (slowloris). A request body may not
    /// pause longer than this either ([`RequestBody`]).
    pub header_read_timeout: Duration,
    /// A connection with no request in flight and no bytes arriving is closed after this long.
    pub idle_timeout: Duration,
    /// Connections served at once; further ones wait in the accept queue until one closes.
    pub max_connections: usize,
}

impl ConnLimits {
    /// 10 s for a request head, 60 s idle, 256 connections (well under the usual 1 024
    /// descriptors per process, leaving room for cassette files and upstream sockets).
    pub const DEFAULT: ConnLimits = ConnLimits {
        header_read_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(60),
        max_connections: 256,
    };
}

/// The connection cap `serve` and `record --proxy` use unless told: half the descriptors this
/// process may open (the rest for cassette files, upstream sockets and spare), at least 16 and
/// at most 8 192. On unix the soft descriptor limit is first raised to the hard one, as
/// servers do, so a shell's default of 1 024 does not hold a server for 1 000 agents to a few
/// hundred connections (a client beyond the cap waits in the accept queue).
pub fn default_max_connections() -> usize {
    let descriptors = raise_descriptor_limit().unwrap_or(512);
    usize::try_from(descriptors / 2)
        .unwrap_or(usize::MAX)
        .clamp(16, 8192)
}

/// Raise the soft limit on open descriptors to the hard limit; the soft limit now in force.
#[cfg(unix)]
fn raise_descriptor_limit() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit write or read the one plain struct passed by pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return None;
    }
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            lim.rlim_cur = lim.rlim_max;
        }
    }
    // `rlim_t` is u64 on Linux and macOS but i64 on the BSDs.
    #[allow(clippy::useless_conversion)]
    Some(u64::try_from(lim.rlim_cur).unwrap_or(u64::MAX))
}

#[cfg(not(unix))]
fn raise_descriptor_limit() -> Option<u64> {
    None
}

impl Default for ConnLimits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// What one connection's watchdog sees.
#[derive(Default)]
struct Activity {
    /// Responses started and not yet fully sent (or dropped).
    in_flight: AtomicUsize,
    /// Bytes read from the client so far.
    read: AtomicU64,
    /// Responses finished so far (a short exchange may start and end between two ticks).
    served: AtomicU64,
}

/// Counts a response as in flight until its body is dropped (sent, or the connection gone).
struct InFlight(Arc<Activity>);

impl InFlight {
    fn new(act: &Arc<Activity>) -> Self {
        act.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(Arc::clone(act))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.served.fetch_add(1, Ordering::SeqCst);
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The client socket, counting the bytes it reads for the watchdog.
struct Watched {
    io: TcpStream,
    act: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.io).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        if n > 0 {
            self.act.read.fetch_add(n as u64, Ordering::SeqCst);
        }
        r
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// Resolves when the connection has been waiting too long for a request head, or idle too
/// long; never while a response is in flight.
async fn watchdog(act: &Activity, limits: ConnLimits, pressure: &Pressure) {
    #[derive(PartialEq)]
    enum Phase {
        /// Waiting for (the rest of) a request head since `since`.
        Head,
        /// A response is in flight.
        Busy,
        /// Nothing in flight and nothing read since `since`.
        Idle,
    }
    let tick = (limits.header_read_timeout.min(limits.idle_timeout) / 4)
        .clamp(Duration::from_millis(5), Duration::from_millis(500));
    // A new connection owes its first request head at once.
    let mut phase = Phase::Head;
    let mut since = Instant::now();
    let mut read_at_idle = 0;
    let mut served = 0;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = pressure.wanted.notified() => {}
        }
        let read = act.read.load(Ordering::SeqCst);
        if act.in_flight.load(Ordering::SeqCst) > 0 {
            phase = Phase::Busy;
            continue;
        }
        let now_served = act.served.load(Ordering::SeqCst);
        if now_served != served {
            // A response ended since the last tick.
            served = now_served;
            phase = Phase::Busy;
        }
        match phase {
            Phase::Busy => {
                phase = Phase::Idle;
                since = Instant::now();
                read_at_idle = read;
            }
            Phase::Idle if read != read_at_idle => {
                phase = Phase::Head;
                since = Instant::now();
            }
            Phase::Idle if since.elapsed() >= limits.idle_timeout => return,
            // Every slot is taken and a client waits: an idle keep-alive connection makes room.
            Phase::Idle if since.elapsed() >= PRESSURE_MIN_IDLE && pressure.take() => return,
            Phase::Head if since.elapsed() >= limits.header_read_timeout => return,
            Phase::Idle | Phase::Head => {}
        }
    }
}

/// The accept queue asked of the kernel (it caps it at `net.core.somaxconn`, 4096 on current
/// Linux). tokio's default of 1,024 overflowed when a thousand agents connected at once: the
/// kernel dropped their handshakes and each dropped client retried a second later.
const BACKLOG: u32 = 4096;

/// A listening socket on `addr` with a [`BACKLOG`]-deep accept queue.
fn listen_on(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // As `TcpListener::bind` does on Unix: a restarted server can bind at once.
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// A running accept loop.
pub struct Server {
    addr: SocketAddr,
    stop: Option<watch::Sender<bool>>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Bind `listen` and serve every request with `handler` under the default
    /// [`ConnLimits`]. `name` prefixes log lines.
    pub async fn bind<H, F>(
        listen: SocketAddr,
        name: &'static str,
        handler: H,
    ) -> std::io::Result<Server>
    where
        H: Fn(Request<RequestBody>) -> F + Clone + Send + Sync + 'static,
        F: Future<Output = Result<Response<Body>, std::io::Error>> + Send + 'static,
    {
        Self::bind_with(listen, name, ConnLimits::DEFAULT, handler).await
    }

    /// [`bind`](Self::bind) with explicit connection limits.
    pub async fn bind_with<H, F>(
        listen: SocketAddr,
        name: &'static str,
        limits: ConnLimits,
        handler: H,
    ) -> std::io::Result<Server>
    where
        H: Fn(Request<RequestBody>) -> F + Clone + Send + Sync + 'static,
        F: Future<Output = Result<Response<Body>, std::io::Error>> + Send + 'static,
    {
        let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
        let pressure = Arc::new(Pressure::default());
        let listener = listen_on(listen)?;
        let addr = listener.local_addr()?;
        let (stop_tx, mut stop_rx) = watch::channel(false);
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            // Kept across loop turns: it may hold an accepted client waiting for a slot, which
            // another branch of the select must not drop.
            let mut next = Box::pin(accept_slot(&listener, &slots, &pressure));
            loop {
                tokio::select! {
                    // A send or a dropped handle both stop the loop.
                    _ = stop_rx.changed() => break,
                    accepted = &mut next => {
                        next.set(accept_slot(&listener, &slots, &pressure));
                        let (stream, slot) = match accepted {
                            Ok(got) => got,
                            Err(e) => {
                                // Out of descriptors and the like: back off instead of spinning.
                                eprintln!("{name}: accept failed: {e}");
                                tokio::time::sleep(Duration::from_millis(50)).await;
                                continue;
                            }
                        };
                        let _ = stream.set_nodelay(true);
                        let handler = handler.clone();
                        let mut stop = stop_rx.clone();
                        let pressure = Arc::clone(&pressure);
                        conns.spawn(async move {
                            let _slot = slot;
                            let act = Arc::new(Activity::default());
                            let svc_act = Arc::clone(&act);
                            let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                                let guard = InFlight::new(&svc_act);
                                let timeout = limits.header_read_timeout;
                                let resp = handler(req.map(|b| RequestBody::new(b, timeout)));
                                async move {
                                    let resp = resp.await?;
                                    // The guard lives as long as the body is being sent.
                                    Ok::<_, std::io::Error>(resp.map(|b| {
                                        b.map_frame(move |f| {
                                            let _ = &guard;
                                            f
                                        })
                                        .boxed()
                                    }))
                                }
                            });
                            let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                            // Copy a response's ready frames into one buffer and write it with
                            // one call: a replayed body is many small chunks, and writing them
                            // vectored took several system calls per response.
                            builder.http1().writev(false);
                            let io = Watched { io: stream, act: Arc::clone(&act) };
                            let conn = builder.serve_connection(TokioIo::new(io), svc);
                            tokio::pin!(conn);
                            tokio::select! {
                                _ = conn.as_mut() => return,
                                // Slow or idle: close without waiting for the client.
                                _ = watchdog(&act, limits, &pressure) => return,
                                _ = stop.changed() => {}
                            }
                            // Finish the exchange in flight, then close (idle keep-alive
                            // connections close at once).
                            conn.as_mut().graceful_shutdown();
                            let _ = conn.await;
                        });
                    }
                    Some(_) = conns.join_next(), if !conns.is_empty() => {}
                }
            }
            drop(next);
            drop(listener);
            let drain = async { while conns.join_next().await.is_some() {} };
            if tokio::time::timeout(SHUTDOWN_GRACE, drain).await.is_err() {
                conns.abort_all();
                while conns.join_next().await.is_some() {}
            }
        });
        Ok(Server {
            addr,
            stop: Some(stop_tx),
            task,
        })
    }

    /// The bound address (useful with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stop accepting and wait until every connection has finished or been cut.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(true);
        }
        let _ = (&mut self.task).await;
    }
}

/// How long a connection must have been idle before it may be closed to make room: a client
/// reuses a keep-alive connection at once between the requests of an agent loop, and closing
/// it in that instant would fail the request it is sending.
const PRESSURE_MIN_IDLE: Duration = Duration::from_secs(1);

/// How the accept loop asks idle keep-alive connections to make room: when a client is
/// accepted while every slot is taken, one idle connection closes at once (as nginx does)
/// instead of the client waiting for an idle timeout.
#[derive(Default)]
struct Pressure {
    /// Idle connections asked to close: each watchdog that takes one closes its connection.
    closes: AtomicUsize,
    /// Wakes the watchdogs when `closes` is raised.
    wanted: tokio::sync::Notify,
}

impl Pressure {
    /// Take one close request, if there is one.
    fn take(&self) -> bool {
        self.closes
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }
}

/// Accept a client and wait for a free connection slot for it. At the cap the loop holds that
/// one client (later ones queue in the kernel) and asks an idle connection to close.
async fn accept_slot(
    listener: &TcpListener,
    slots: &Arc<Semaphore>,
    pressure: &Pressure,
) -> std::io::Result<(TcpStream, tokio::sync::OwnedSemaphorePermit)> {
    let (stream, _) = listener.accept().await?;
    let slot = match Arc::clone(slots).try_acquire_owned() {
        Ok(slot) => slot,
        Err(_) => {
            pressure.closes.store(1, Ordering::SeqCst);
            pressure.wanted.notify_waiters();
            let slot = Arc::clone(slots).acquire_owned().await;
            pressure.closes.store(0, Ordering::SeqCst);
            slot.map_err(|_| std::io::Error::other("connection slots closed"))?
        }
    };
    Ok((stream, slot))
}
