//! The listening socket and the connections: [`MockServer::bind`] opens the socket,
//! [`MockServer::serve`] accepts connections and runs one task per connection (hyper
//! HTTP/1.1 with keep-alive) until cancelled, then closes every connection gracefully.
//! What a request gets is `service`'s business.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::config::MockConfig;
use super::service::{self, State};

/// Pending-connection queue: thousands of clients may connect at once (the kernel caps
/// it at `net.core.somaxconn`).
const BACKLOG: u32 = 4096;
/// After an accept error that is not about one connection (e.g. out of file descriptors),
/// wait this long before trying again instead of spinning.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
/// How long shutdown waits for a connection to finish its answer before dropping it.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A bound, not yet serving, server.
pub struct MockServer {
    listener: TcpListener,
    local_addr: SocketAddr,
    state: Arc<State>,
}

impl MockServer {
    /// Opens the --log file and binds the socket; a port of 0 picks a free one.
    pub async fn bind(config: MockConfig) -> anyhow::Result<MockServer> {
        let addr = SocketAddr::new(config.host, config.port);
        let state = Arc::new(State::new(config)?);
        let listener = listen(addr).with_context(|| format!("could not listen on {addr}"))?;
        let local_addr = listener
            .local_addr()
            .context("could not read the bound address")?;
        Ok(MockServer {
            listener,
            local_addr,
            state,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` is cancelled, then lets every connection finish its current
    /// answer (waits and hangs are cut short) and returns once all of them are closed.
    pub async fn serve(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let MockServer { listener, state, .. } = self;
        // One task per connection. The tracker is closed after the accept loop; `wait` then
        // completes when the last connection task has ended.
        let connections = TaskTracker::new();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        connections.spawn(serve_connection(stream, Arc::clone(&state)));
                    }
                    Err(err) if is_per_connection(&err) => {}
                    Err(err) => {
                        tracing::warn!("mock-server: accept failed: {err}; retrying");
                        tokio::select! {
                            () = tokio::time::sleep(ACCEPT_BACKOFF) => {}
                            () = shutdown.cancelled() => break,
                        }
                    }
                },
            }
        }
        drop(listener);
        // Tells every connection task to finish (see `State::stop`).
        state.stop.cancel();
        connections.close();
        connections.wait().await;
        Ok(())
    }
}

fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // Lets a restarted server reuse a port whose old connections are in TIME_WAIT.
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// Errors about one failed connection, after which accepting simply continues.
fn is_per_connection(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    )
}

async fn serve_connection(stream: TcpStream, state: Arc<State>) {
    // Answers are single small writes; don't let Nagle hold them back.
    let _ = stream.set_nodelay(true);
    let stop = state.stop.clone();
    let service = service_fn(move |req| service::handle(Arc::clone(&state), req));
    let connection = http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    tokio::select! {
        // Errors here are clients hanging up or deliberate resets: nothing to report.
        result = connection.as_mut() => {
            if let Err(err) = result {
                tracing::trace!("mock-server: connection ended: {err}");
            }
        }
        () = stop.cancelled() => {
            connection.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(SHUTDOWN_GRACE, connection).await;
        }
    }
}
