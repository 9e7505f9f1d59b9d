"""Real notification receivers for tests: an HTTP server that records POSTs, an SMTP server
(aiosmtpd) that records mail. Both bind 127.0.0.1 on a free port and can be stopped and
started again on the same port, to play a target that goes away and comes back.

    with HttpReceiver() as http, SmtpReceiver() as smtp:
        urls = [http.url(), smtp.url()]          # json://... and mailto://user:pass@...
        ...
        assert http.wait_for(1) and smtp.wait_for(1)
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import logging
import socket
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HOST = "127.0.0.1"


def _free_socket(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, port))
    return sock


class _Recorder:
    """What both receivers share: a list of received items and a way to wait for them."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._items: list[Any] = []

    def _record(self, item: Any) -> None:
        with self._cond:
            self._items.append(item)
            self._cond.notify_all()

    def wait_for(self, count: int, timeout_s: float = 5.0) -> bool:
        """True once at least `count` items arrived; False after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while len(self._items) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def clear(self) -> None:
        with self._cond:
            self._items.clear()


# ---------------------------------------------------------------- HTTP


@dataclass(frozen=True)
class Post:
    path: str
    body: str
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class HttpReceiver(_Recorder):
    """Records every POST. `status` is what it answers; `delay_s` makes it hang that long
    before answering (stop() cuts the hang short). `gate`, when an Event, holds every POST
    until it is set (or stop()); `arrived` counts POSTs as they come in, before any hold."""

    def __init__(self) -> None:
        super().__init__()
        self.port = 0
        self.status = 200
        self.delay_s = 0.0
        self.gate: threading.Event | None = None
        self.arrived = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    @property
    def posts(self) -> list[Post]:
        with self._cond:
            return list(self._items)

    def _arrive(self) -> bool:
        """Count an arriving POST and hold it at the gate; False when stop() cut the hold short."""
        with self._cond:
            self.arrived += 1
            self._cond.notify_all()
        gate = self.gate
        while gate is not None and not gate.wait(0.05):
            if self._stopping.is_set():
                return False
        return True

    def wait_arrived(self, count: int, timeout_s: float = 10.0) -> bool:
        """True once `count` POSTs arrived (held or not); False after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self.arrived < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def url(
        self, path: str = "/", *, user: str | None = None, password: str | None = None, scheme: str = "json"
    ) -> str:
        auth = "" if user is None else f"{user}:{password}@" if password is not None else f"{user}@"
        return f"{scheme}://{auth}{HOST}:{self.port}{path}"

    def start(self) -> HttpReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode("utf-8", "replace")
                if not receiver._arrive():
                    return
                if receiver.delay_s and receiver._stopping.wait(receiver.delay_s):
                    return
                if 200 <= receiver.status < 300:
                    receiver._record(Post(self.path, body, dict(self.headers.items())))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._stopping.clear()
        sock = _free_socket(self.port)
        self.port = sock.getsockname()[1]
        server = ThreadingHTTPServer((HOST, self.port), Handler, bind_and_activate=False)
        server.socket.close()
        server.socket = sock
        server.daemon_threads = True
        server.server_activate()
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=f"http-receiver-{self.port}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def __enter__(self) -> HttpReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ---------------------------------------------------------------- SMTP


class SmtpReceiver(_Recorder):
    """An SMTP server without TLS that accepts AUTH with `user`/`password` (and only those)
    and records each message as an EmailMessage."""

    def __init__(self, user: str = "evman", password: str = "mail-s3cret") -> None:
        super().__init__()
        self.user = user
        self.password = password
        self.port = 0
        self.logins: list[str] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def messages(self) -> list[EmailMessage]:
        with self._cond:
            return list(self._items)

    def url(self, to: str = "driver@example.com", *, sender: str = "evman@example.com") -> str:
        """A mailto:// URL for Apprise: plain SMTP (mailto, not mailtos, means no TLS), with login."""
        return f"mailto://{self.user}:{self.password}@{HOST}:{self.port}/?from={sender}&to={to}"

    def start(self) -> SmtpReceiver:
        from aiosmtpd.smtp import SMTP

        logging.getLogger("mail.log").setLevel(logging.ERROR)  # aiosmtpd's chatter, down to errors
        loop = asyncio.new_event_loop()
        sock = _free_socket(self.port)
        self.port = sock.getsockname()[1]

        def factory() -> SMTP:
            return SMTP(self, hostname=HOST, auth_require_tls=False, authenticator=self._authenticate, loop=loop)

        self._server = loop.run_until_complete(loop.create_server(factory, sock=sock))
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name=f"smtp-receiver-{self.port}", daemon=True)
        self._thread.start()
        return self

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> Any:
        from aiosmtpd.smtp import AuthResult, LoginPassword

        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == self.user
            and auth_data.password.decode() == self.password
        )
        if ok:
            self.logins.append(self.user)
        return AuthResult(success=ok)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content
        message = email.message_from_bytes(raw, policy=email.policy.default)
        self._record(message)
        return "250 Message accepted for delivery"

    def stop(self) -> None:
        loop, server = self._loop, self._server
        if loop is None or server is None:
            return

        async def close() -> None:
            server.close()
            await server.wait_closed()

        asyncio.run_coroutine_threadsafe(close(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(5)
        loop.close()
        self._loop = self._server = self._thread = None

    def __enter__(self) -> SmtpReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def text_of(message: EmailMessage) -> str:
    """The plain-text body of a recorded mail."""
    part = message.get_body(preferencelist=("plain", "html"))
    return "" if part is None else str(part.get_content())
