"""A loopback HTTP proxy in front of the emulator that injects AWS faults by rule.

Clients (the healer via ``AWS_ENDPOINT_URL``, the local runtime, tests) talk to the proxy as
if it were the emulator. Requests go upstream unchanged - moto does not verify SigV4, and the
original ``Host`` keeps URLs moto builds (SQS queue URLs) pointing back at the proxy - unless
a rule answers first with an AWS error, a delay, or a dropped connection.

A small JSON control API under ``/__faults__/`` lets chaos actions in other processes add and
remove rules (``FaultProxyClient``).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import sys
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.error import HTTPError, URLError
from urllib.parse import quote, unquote, urlsplit
from urllib.request import ProxyHandler, Request, build_opener

from ..exceptions import ConfigError
from ..target import is_loopback_url
from .rules import DROP, FAULTS, LATENCY, FaultRule, FaultRuleSet, RequestInfo, classify, error_response

if TYPE_CHECKING:
    from typing import Self

CONTROL_PREFIX = "/__faults__/"
_CHUNK = 64 * 1024
# Connection-level headers a proxy must not pass on (RFC 9110 §7.6.1). Expect is answered here.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "expect",
    }
)


def _require_loopback(url: str, what: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme != "http" or not is_loopback_url(url):
        raise ConfigError(f"{what} {url!r} is not an http:// loopback URL; the fault proxy only talks to 127.0.0.1")
    return parts.hostname or "127.0.0.1", parts.port or 80


def _hop_by_hop(headers: list[tuple[str, str]]) -> frozenset[str]:
    named = {
        token.strip().lower() for name, value in headers if name.lower() == "connection" for token in value.split(",")
    }
    return _HOP_BY_HOP | named


class FaultProxy:
    """Forwards every request to ``upstream_url`` unless a fault rule answers first.

    Configure with ``with_*``, then ``start()`` (or use as a context manager); ``url`` is what
    clients use as their endpoint. Rules can change at any time from any thread.
    """

    def __init__(self, upstream_url: str) -> None:
        self.upstream_url = upstream_url.rstrip("/")
        self._upstream = _require_loopback(self.upstream_url, "fault proxy upstream")
        self.upstream_timeout = 60.0
        self._rules = FaultRuleSet()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._counts: Counter[str] = Counter()
        self._injected: Counter[str] = Counter()
        self._fired: Counter[str] = Counter()

    def with_seed(self, seed: int | None) -> Self:
        """Seed the probability draws, for reproducible runs."""
        self._rules.seed(seed)
        return self

    def with_upstream_timeout(self, seconds: float) -> Self:
        self.upstream_timeout = seconds
        return self

    # --- lifecycle -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("fault proxy is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Self:
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="fault-proxy", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()  # ends pending delays
        server.shutdown()
        server.server_close()
        with self._lock:
            open_connections = list(self._connections)
        for conn in open_connections:  # keep-alive clients would otherwise go on being served
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # --- rules and counters ----------------------------------------------------------------

    def add_rule(self, rule: FaultRule) -> str:
        """Add a rule (checked after those already there); returns its id."""
        rule_id = self._rules.add(rule)
        with self._lock:
            self._fired[rule_id] += 0
        return rule_id

    def remove_rule(self, rule_id: str) -> bool:
        """True when the rule existed."""
        return self._rules.remove(rule_id)

    def clear_rules(self) -> int:
        """Remove every rule; returns how many were live."""
        return self._rules.clear()

    def rules(self) -> dict[str, FaultRule]:
        """The live rules by id, in the order they are checked (expired ones are dropped)."""
        return self._rules.rules()

    def stats(self) -> dict[str, Any]:
        """Counters since start: requests seen, forwarded, injected per fault and per rule id."""
        with self._lock:
            return {
                "requests": self._counts["requests"],
                "forwarded": self._counts["forwarded"],
                "upstream_errors": self._counts["upstream_errors"],
                "injected": {fault: self._injected[fault] for fault in FAULTS},
                "rules": dict(self._fired),
            }

    # --- the request path ------------------------------------------------------------------

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, and Expect: 100-continue is answered
            disable_nagle_algorithm = True  # headers and body go out in separate writes

            def setup(self) -> None:
                super().setup()
                with proxy._lock:
                    proxy._connections.add(self.connection)

            def finish(self) -> None:
                with proxy._lock:
                    proxy._connections.discard(self.connection)
                with contextlib.suppress(OSError):
                    super().finish()

            def handle_one_request(self) -> None:
                try:
                    super().handle_one_request()
                except (OSError, http.client.HTTPException):  # a side went away mid-exchange
                    self.close_connection = True

            def _dispatch(self) -> None:
                proxy._handle(self)

            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = do_PATCH = do_OPTIONS = _dispatch  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence per-request lines
                return

        return Handler

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        target = request.path
        if "://" in target:  # absolute-form, from clients that treat us as an HTTP proxy
            parts = urlsplit(target)
            target = parts.path + (f"?{parts.query}" if parts.query else "")
        path, _, query = target.partition("?")
        try:
            body = self._read_body(request)
        except ValueError as exc:  # a Content-Length or chunk size that is not a number
            request.send_error(400, explain=f"unreadable request body framing: {exc}")
            request.close_connection = True
            return
        if path.startswith(CONTROL_PREFIX):
            self._control(request, path[len(CONTROL_PREFIX) :], body)
            return
        headers = dict(request.headers.items())
        info = classify(request.command, path, query, headers, body)
        chosen = self._rules.select(info)
        with self._lock:
            self._counts["requests"] += 1
            for rule_id, rule in chosen:
                self._fired[rule_id] += 1
                self._injected[rule.fault] += 1
        delay = sum(rule.latency_s for _, rule in chosen)
        if delay > 0 and self._stopping.wait(delay):
            self._drop(request)
            return
        final = chosen[-1][1] if chosen else None
        if final is not None and final.fault == DROP:
            self._drop(request)
        elif final is not None and final.fault != LATENCY:
            self._inject(request, final.fault, info, chosen[-1][0])
        else:
            self._forward(request, target, body)

    @staticmethod
    def _read_body(request: BaseHTTPRequestHandler) -> bytes:
        if "chunked" in (request.headers.get("Transfer-Encoding") or "").lower():
            parts: list[bytes] = []
            while True:
                size = int(request.rfile.readline(65537).split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while request.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers: dropped, the body is re-framed with Content-Length
                    return b"".join(parts)
                parts.append(request.rfile.read(size))
                request.rfile.readline()
        length = int(request.headers.get("Content-Length") or 0)
        return request.rfile.read(length) if length > 0 else b""

    @staticmethod
    def _drop(request: BaseHTTPRequestHandler) -> None:
        request.close_connection = True
        with contextlib.suppress(OSError):
            request.connection.shutdown(socket.SHUT_RDWR)

    @staticmethod
    def _inject(request: BaseHTTPRequestHandler, fault: str, info: RequestInfo, rule_id: str) -> None:
        answer = error_response(fault, info)
        body = b"" if request.command == "HEAD" else answer.body  # botocore then reads the status alone
        request.send_response_only(answer.status)
        for name, value in answer.headers.items():
            request.send_header(name, value)
        request.send_header("x-s3sh-fault-rule", rule_id)
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)

    def _forward(self, request: BaseHTTPRequestHandler, target: str, body: bytes) -> None:
        incoming = list(request.headers.items())
        skip = _hop_by_hop(incoming)
        host, port = self._upstream
        upstream = http.client.HTTPConnection(host, port, timeout=self.upstream_timeout)
        try:
            try:
                upstream.putrequest(request.command, target, skip_host=True, skip_accept_encoding=True)
                for name, value in incoming:
                    if name.lower() not in skip:
                        upstream.putheader(name, value)
                if "host" not in {name.lower() for name, _ in incoming}:
                    upstream.putheader("Host", f"{host}:{port}")
                if "chunked" in (request.headers.get("Transfer-Encoding") or "").lower():
                    upstream.putheader("Content-Length", str(len(body)))
                upstream.endheaders(body or None)
                response = upstream.getresponse()
            except (OSError, http.client.HTTPException) as exc:
                self._upstream_failed(request, exc)
                return
            with self._lock:
                self._counts["forwarded"] += 1
            self._relay(request, response)
        finally:
            upstream.close()

    def _upstream_failed(self, request: BaseHTTPRequestHandler, exc: Exception) -> None:
        with self._lock:
            self._counts["upstream_errors"] += 1
        print(f"s3-self-healing fault proxy: upstream {self.upstream_url} failed: {exc}", file=sys.stderr)
        message = f"fault proxy: upstream {self.upstream_url} failed: {type(exc).__name__}".encode()
        request.send_response_only(502)
        request.send_header("Content-Type", "text/plain")
        request.send_header("Content-Length", str(len(message)))
        request.end_headers()
        request.wfile.write(message)

    @staticmethod
    def _relay(request: BaseHTTPRequestHandler, response: http.client.HTTPResponse) -> None:
        """Status, headers and body as they came; re-chunked only when upstream sent no length."""
        headers = response.getheaders()
        skip = _hop_by_hop(headers)
        no_body = request.command == "HEAD" or response.status in (204, 304) or response.status < 200
        has_length = any(name.lower() == "content-length" for name, _ in headers)
        chunked = not no_body and not has_length and request.request_version != "HTTP/1.0"
        if not no_body and not has_length and not chunked:
            request.close_connection = True  # an HTTP/1.0 client reads to the end of the connection
        request.send_response_only(response.status, response.reason)
        for name, value in headers:
            if name.lower() not in skip:
                request.send_header(name, value)
        if chunked:
            request.send_header("Transfer-Encoding", "chunked")
        request.end_headers()
        if no_body:
            return
        while piece := response.read(_CHUNK):
            request.wfile.write(b"%x\r\n%b\r\n" % (len(piece), piece) if chunked else piece)
        if chunked:
            request.wfile.write(b"0\r\n\r\n")

    # --- control API -----------------------------------------------------------------------

    def _control(self, request: BaseHTTPRequestHandler, route: str, body: bytes) -> None:
        method, route = request.command, route.partition("?")[0].rstrip("/")
        status: int
        payload: dict[str, Any]
        status, payload = 200, {}
        try:
            if route == "rules" and method == "GET":
                payload = {"rules": [{"id": rid, **rule.to_dict()} for rid, rule in self.rules().items()]}
            elif route == "rules" and method == "POST":
                data = json.loads(body or b"{}")
                if not isinstance(data, dict):
                    raise ConfigError("a fault rule must be a JSON object")
                status, payload = 201, {"id": self.add_rule(FaultRule.from_dict(data))}
            elif route == "rules" and method == "DELETE":
                payload = {"removed": self.clear_rules()}
            elif route.startswith("rules/") and method == "DELETE":
                payload = {"removed": self.remove_rule(unquote(route[len("rules/") :]))}
            elif route == "stats" and method == "GET":
                payload = self.stats()
            else:
                status, payload = 404, {"error": f"no control route {method} {CONTROL_PREFIX}{route}"}
        except ValueError as exc:  # json.JSONDecodeError is one
            status, payload = 400, {"error": f"request body is not JSON: {exc}"}
        except ConfigError as exc:
            status, payload = 400, {"error": str(exc)}
        raw = json.dumps(payload).encode()
        request.send_response_only(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(raw)))
        request.end_headers()
        request.wfile.write(raw)


class FaultProxyClient:
    """Drives a FaultProxy in another process through its control API."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        _require_loopback(self.url, "fault proxy")
        self.timeout = timeout
        self._opener = build_opener(ProxyHandler({}))  # never through an HTTP(S)_PROXY from the environment

    def add_rule(self, rule: FaultRule) -> str:
        return str(self._call("POST", "rules", rule.to_dict())["id"])

    def remove_rule(self, rule_id: str) -> bool:
        return bool(self._call("DELETE", f"rules/{quote(rule_id, safe='')}")["removed"])

    def clear_rules(self) -> int:
        return int(self._call("DELETE", "rules")["removed"])

    def rules(self) -> dict[str, FaultRule]:
        listed = self._call("GET", "rules")["rules"]
        return {item.pop("id"): FaultRule.from_dict(item) for item in listed}

    def stats(self) -> dict[str, Any]:
        return self._call("GET", "stats")

    def _call(self, method: str, route: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        data = None if payload is None else json.dumps(payload).encode()
        url = f"{self.url}{CONTROL_PREFIX}{route}"
        request = Request(url, data=data, method=method)  # noqa: S310 - http://127.0.0.1 only, checked above
        request.add_header("Content-Type", "application/json")
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                answer = json.loads(response.read())
        except HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")
            with contextlib.suppress(ValueError, KeyError, TypeError):
                detail = json.loads(detail)["error"]
            raise ConfigError(f"fault proxy at {self.url} refused {method} {route}: {detail}") from exc
        except URLError as exc:
            raise ConfigError(f"no fault proxy answers at {self.url}: {exc.reason}") from exc
        if not isinstance(answer, dict):
            raise ConfigError(f"fault proxy at {self.url} answered {method} {route} with {answer!r}")
        return answer
