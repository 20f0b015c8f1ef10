"""waitress, set up for a fleet: thousands of keep-alive connections, deadlines for clients that send
or read too slowly, bounded memory for answers nobody reads, and perfmon's JSON for its own errors."""

from __future__ import annotations

import socket
from collections.abc import Sequence
from typing import Any

from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.server import MultiSocketServer, TcpWSGIServer
from waitress.task import ThreadedTaskDispatcher

from perfmon.entrypoints import polling
from perfmon.entrypoints.http_framing import JsonErrorTask, StrictRequestParser
from perfmon.entrypoints.open_files import open_file_limit, usable_connection_limit

# Defaults of the settings of the same names (bootstrap.Settings), for servers built without them.
DEFAULT_CONNECTION_LIMIT = 10_000
DEFAULT_IDLE_TIMEOUT = 30
DEFAULT_REQUEST_TIMEOUT = 30
# An answer the client does not read is held in memory up to this, per connection, and in an unlinked
# temporary file past it (waitress's outbuf_overflow): 60 unread 40 MB answers once held 3 GB.
ANSWER_MEMORY_BYTES = 1024 * 1024
# A worker thread hands an answer of up to this to its connection and is free at once, whether or not
# the client reads (waitress's outbuf_high_watermark; the bytes past ANSWER_MEMORY_BYTES are on disk).
# Only a longer streamed answer waits for the client, and a client that reads nothing for the idle
# timeout is closed. 64 MiB is more than a read of 1,000,000 samples.
ANSWER_HANDOFF_BYTES = 64 * 1024 * 1024


class FleetChannel(HTTPChannel):
    """One client connection: perfmon's parser and JSON error answers."""

    parser_class = StrictRequestParser
    error_task_class = JsonErrorTask

    def service(self) -> None:
        """Serve the queued requests, in a worker thread that names this connection when it wakes the
        loop (polling.py: the loop then asks only the connections that changed)."""
        polling.serving.channel = self
        try:
            super().service()
        finally:
            polling.serving.channel = None

    def del_channel(self, map: Any = None) -> None:  # noqa: A002 (waitress's name)
        """Leave the socket map, noting the descriptor: a worker thread may close a connection (a
        reset while it sends), and an accept reuse the number before the loop looks."""
        fd = self._fileno
        super().del_channel(map)
        changed = getattr(self._map, "changed", None)
        if fd is not None and changed is not None:
            changed.add(fd)


class FleetServer(TcpWSGIServer):
    """A listening socket whose maintenance also closes connections that hold on without progress."""

    channel_class = FleetChannel
    request_timeout = DEFAULT_REQUEST_TIMEOUT

    def run(self) -> None:
        """Serve until the socket map is empty (every socket closed) or KeyboardInterrupt: waitress's
        loop, watching only the connections that changed (polling.py). `perfmon serve` drains instead
        (draining.py); tests' servers run this."""
        watcher = polling.Watcher(self._map)
        try:
            while self._map:
                watcher.poll_once(self.adj.asyncore_loop_timeout)
        except (SystemExit, KeyboardInterrupt):
            # The worker threads first: one still serving would wake the loop through a closed trigger.
            self.task_dispatcher.shutdown()
            self.close()

    def pull_trigger(self) -> None:
        """Wake the loop, noting first the connection the calling worker thread serves as changed."""
        polling.note_changed(self._map)
        super().pull_trigger()

    def maintenance(self, now: float) -> None:
        """Close idle keep-alive connections (waitress), requests that have been arriving for longer
        than request_timeout (a header byte a second would otherwise hold a connection forever), and
        connections whose answer has not moved for channel_timeout (its worker thread waits on it)."""
        super().maintenance(now)
        request_cutoff = now - self.request_timeout
        idle_cutoff = now - self.adj.channel_timeout
        for channel in self.active_channels.values():
            arriving = channel.request
            if arriving is not None and not channel.requests and arriving.started_at < request_cutoff:
                channel.will_close = True
            elif channel.requests and channel.total_outbufs_len and channel.last_activity < idle_cutoff:
                # Closing wakes the worker blocked in waitress's write with ClientDisconnected.
                channel.will_close = True


def create_server(
    app: object,
    *,
    host: str,
    port: int,
    threads: int,
    max_body_bytes: int,
    connection_limit: int = DEFAULT_CONNECTION_LIMIT,
    idle_timeout: int = DEFAULT_IDLE_TIMEOUT,
    request_timeout: int = DEFAULT_REQUEST_TIMEOUT,
    sockets: Sequence[socket.socket] = (),
) -> FleetServer | MultiSocketServer:
    """A bound, listening waitress server; run() serves until KeyboardInterrupt.

    It binds host and port, or serves on `sockets` when given (then host and port are not used):
    sockets bound and listening already (listening_sockets()), which the worker processes of
    `perfmon serve --workers` inherit.
    Bodies over max_body_bytes get 413 from the headers. connection_limit caps open connections (each
    is a file descriptor: it is lowered to what the descriptor limit leaves room for). Timeouts are
    in whole seconds.
    Raises OSError when the address cannot be bound, ValueError when the host does not resolve."""
    # waitress refuses host and port beside sockets: the sockets say where.
    where: dict[str, object] = {"sockets": list(sockets)} if sockets else {"host": host, "port": port}
    adj = Adjustments(
        **where,
        threads=threads,
        # waitress refuses a body of max_request_body_size bytes or more; PROTOCOL.md refuses only one
        # larger than the limit: a body of exactly max_body_bytes is read (the app checks it again).
        max_request_body_size=max_body_bytes + 1,
        ident="perfmon",
        # X-Forwarded-For reaches the app, which believes it from trusted proxies only
        # (perfmon.entrypoints.http.client_address); waitress 3 would drop it before.
        clear_untrusted_proxy_headers=False,
        connection_limit=usable_connection_limit(connection_limit, threads, open_file_limit()),
        channel_timeout=idle_timeout,
        # waitress checks its timeouts at most this often (seconds): often enough for short deadlines.
        cleanup_interval=1,
        # select() cannot watch a file descriptor above 1024; poll() can watch any number.
        asyncore_use_poll=True,
        outbuf_overflow=ANSWER_MEMORY_BYTES,
        outbuf_high_watermark=ANSWER_HANDOFF_BYTES,
    )
    dispatcher = ThreadedTaskDispatcher()
    dispatcher.set_thread_count(adj.threads)
    socket_map = polling.SocketMap()
    places: list[dict[str, Any]] = [
        {"_sock": s, "bind_socket": False, "sockinfo": (s.family, s.type, s.proto, s.getsockname())}
        for s in sockets
    ]
    if not sockets:  # a name such as localhost may stand for several addresses: a server for each
        places = [{"sockinfo": sockinfo} for sockinfo in adj.listen]
    servers = []
    for place in places:
        server = FleetServer(app, socket_map, dispatcher=dispatcher, adj=adj, **place)
        server.request_timeout = request_timeout
        servers.append(server)
    if len(servers) == 1:
        return servers[0]
    listening = [(server.effective_host, server.effective_port) for server in servers]
    return MultiSocketServer(socket_map, adj, listening, dispatcher, servers[0].log_info)


def listening_port(server: FleetServer | MultiSocketServer) -> int:
    """The port the server listens on (the free one picked for port 0)."""
    if isinstance(server, MultiSocketServer):
        return int(server.effective_listen[0][1])
    return int(server.effective_port)


def listening_sockets(host: str, port: int) -> list[socket.socket]:
    """Sockets bound to host and port and listening, as create_server would bind them (one per address
    that host stands for), for worker processes to inherit and serve on.

    Raises OSError when an address cannot be bound, ValueError when the host does not resolve; then no
    socket is left open."""
    adj = Adjustments(host=host, port=port)
    sockets: list[socket.socket] = []
    try:
        for family, kind, protocol, address in adj.listen:
            sock = socket.socket(family, kind, protocol)
            sockets.append(sock)
            # As waitress binds its own: a restart may bind at once beside connections in TIME_WAIT.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(adj.backlog)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets
