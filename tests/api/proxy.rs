//! A TCP proxy the tests put between the service and PostgreSQL, Redis or
//! the provider, to inject the faults of a real network: latency, a link
//! that goes silent (a half-open connection, or one that accepts and never
//! answers), a reset in the middle of an answer, an answer trickled one byte
//! at a time. It runs on a thread and a runtime of its own, so that a fault
//! never depends on the service's runtime.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// What the proxy does to the bytes it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Carries every byte at once.
    None,
    /// Holds each chunk, either way, this long.
    Latency(Duration),
    /// Every connection, open or new, goes silent for good: its bytes are
    /// swallowed and it is never closed, as a half-open link or a peer that
    /// froze. A new connection is accepted and never answered. Connections
    /// silenced stay dead when the fault is lifted; new ones work again.
    Silence,
    /// The next this many bytes of a connection's answers get through,
    /// then the connection is reset (RST).
    ResetAfter(u64),
    /// Answers go out one byte at a time, this far apart.
    Trickle(Duration),
}

/// A running proxy to one upstream address.
pub struct FaultProxy {
    pub port: u16,
    fault: Arc<Mutex<Fault>>,
    bytes_down: Arc<AtomicU64>,
    stop: Option<oneshot::Sender<()>>,
}

impl FaultProxy {
    /// Proxies a free local port to `upstream`, carrying every byte at first.
    pub fn start(upstream: SocketAddr) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let fault = Arc::new(Mutex::new(Fault::None));
        let bytes_down = Arc::new(AtomicU64::new(0));
        let (stop, stopped) = oneshot::channel::<()>();
        let (shared, counter) = (fault.clone(), bytes_down.clone());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the proxy");
            // Dropping the runtime when told to stop closes every connection.
            runtime.block_on(async move {
                let listener = TcpListener::from_std(listener).expect("a tokio listener");
                let accept = async {
                    loop {
                        let Ok((client, _)) = listener.accept().await else {
                            continue;
                        };
                        let _ = client.set_nodelay(true);
                        tokio::spawn(carry(client, upstream, shared.clone(), counter.clone()));
                    }
                };
                tokio::select! {
                    () = accept => {}
                    _ = stopped => {}
                }
            });
        });
        FaultProxy {
            port,
            fault,
            bytes_down,
            stop: Some(stop),
        }
    }

    /// A proxy in front of the server of `url` (`scheme://[user@]host:port/...`),
    /// and `url` pointed at the proxy instead.
    pub fn in_front_of(url: &str) -> (Self, String) {
        let (scheme, rest) = url.split_once("://").expect("a URL");
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let (user, host_port) = match authority.rsplit_once('@') {
            Some((user, host_port)) => (format!("{user}@"), host_port),
            None => (String::new(), authority),
        };
        let upstream = std::net::ToSocketAddrs::to_socket_addrs(host_port)
            .expect("host:port")
            .find(SocketAddr::is_ipv4)
            .expect("an IPv4 address");
        let proxy = Self::start(upstream);
        let proxied = format!("{scheme}://{user}127.0.0.1:{}{path}", proxy.port);
        (proxy, proxied)
    }

    /// Injects `fault` from now on, into open connections too.
    pub fn set(&self, fault: Fault) {
        *self.fault.lock().unwrap() = fault;
    }

    /// Bytes carried from upstream to clients so far.
    pub fn bytes_down(&self) -> u64 {
        self.bytes_down.load(Ordering::Relaxed)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Carries one connection both ways, as the fault of the moment says.
async fn carry(
    client: TcpStream,
    upstream: SocketAddr,
    fault: Arc<Mutex<Fault>>,
    bytes_down: Arc<AtomicU64>,
) {
    let now = || *fault.lock().unwrap();
    if now() == Fault::Silence {
        return swallow(client).await;
    }
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = server.set_nodelay(true);
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let (mut up, mut down) = (vec![0u8; 16 * 1024], vec![0u8; 16 * 1024]);
    // Answer bytes carried since the fault of the moment was set.
    let (mut answered, mut since) = (0u64, now());
    loop {
        if now() != since {
            (answered, since) = (0, now());
        }
        tokio::select! {
            read = client_read.read(&mut up) => {
                let Ok(n @ 1..) = read else { return };
                match now() {
                    Fault::Silence => break,
                    Fault::Latency(wait) => tokio::time::sleep(wait).await,
                    _ => {}
                }
                if server_write.write_all(&up[..n]).await.is_err() {
                    return;
                }
            }
            read = server_read.read(&mut down) => {
                let Ok(n @ 1..) = read else { return };
                let chunk = &down[..n];
                let written = match now() {
                    Fault::Silence => break,
                    Fault::Latency(wait) => {
                        tokio::time::sleep(wait).await;
                        client_write.write_all(chunk).await
                    }
                    Fault::Trickle(gap) => {
                        for byte in chunk {
                            if client_write.write_all(std::slice::from_ref(byte)).await.is_err() {
                                return;
                            }
                            bytes_down.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(gap).await;
                        }
                        answered += n as u64;
                        continue;
                    }
                    Fault::ResetAfter(limit) => {
                        let room = limit.saturating_sub(answered).min(n as u64) as usize;
                        let _ = client_write.write_all(&chunk[..room]).await;
                        bytes_down.fetch_add(room as u64, Ordering::Relaxed);
                        if room < n {
                            // Linger 0: closing sends RST instead of FIN.
                            let _ = client_write.as_ref().set_zero_linger();
                            return;
                        }
                        answered += n as u64;
                        continue;
                    }
                    Fault::None => client_write.write_all(chunk).await,
                };
                if written.is_err() {
                    return;
                }
                answered += n as u64;
                bytes_down.fetch_add(n as u64, Ordering::Relaxed);
            }
        }
    }
    // Silenced: keep both sockets open and read nothing more from the
    // server; swallow what the client sends, for as long as the proxy runs.
    let _keep = (server_read, server_write, client_write);
    let mut sink = vec![0u8; 16 * 1024];
    while let Ok(1..) = client_read.read(&mut sink).await {}
    std::future::pending::<()>().await;
}

/// Holds a connection open and never answers it.
async fn swallow(mut client: TcpStream) {
    let mut sink = vec![0u8; 16 * 1024];
    while let Ok(1..) = client.read(&mut sink).await {}
    std::future::pending::<()>().await;
}
