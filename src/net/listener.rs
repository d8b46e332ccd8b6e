//! The one HTTP accept loop, shared by the replay server (`serve`) and the recording proxy.
//!
//! Each connection is served by hyper (HTTP/1.1 and HTTP/2) with `TCP_NODELAY`, so a relayed
//! or replayed chunk leaves at once instead of waiting for the client's delayed ACK. Shutdown
//! stops accepting, lets every in-flight exchange finish, closes idle keep-alive connections
//! at once, and cuts what is still running after [`SHUTDOWN_GRACE`].

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Response body type of both servers.
pub type Body = BoxBody<Bytes, std::io::Error>;

/// How long shutdown waits for in-flight responses before cutting them.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A running accept loop.
pub struct Server {
    addr: SocketAddr,
    stop: Option<watch::Sender<bool>>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Bind `listen` and serve every request with `handler`. `name` prefixes log lines.
    pub async fn bind<H, F>(
        listen: SocketAddr,
        name: &'static str,
        handler: H,
    ) -> std::io::Result<Server>
    where
        H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
        F: Future<Output = Result<Response<Body>, std::io::Error>> + Send + 'static,
    {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let (stop_tx, mut stop_rx) = watch::channel(false);
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    // A send or a dropped handle both stop the loop.
                    _ = stop_rx.changed() => break,
                    accepted = listener.accept() => {
                        let stream = match accepted {
                            Ok((stream, _)) => stream,
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
                        conns.spawn(async move {
                            let svc = hyper::service::service_fn(handler);
                            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                            let conn = builder.serve_connection(TokioIo::new(stream), svc);
                            tokio::pin!(conn);
                            tokio::select! {
                                _ = conn.as_mut() => return,
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
