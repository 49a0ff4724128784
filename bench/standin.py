"""A light Intercom stand-in for the rate benchmarks: sleeping answers and Intercom's rate limit.

Not the sandbox: every answer is a fixed-shape JSON after `--latency` seconds of sleep, so the
stand-in costs next to no CPU and the connector, not the stand-in, is what gets measured. It
enforces Intercom's default limit the way Intercom reports it (reference/intercom-api.md §8):
`--limit` calls per `--window`-second window, `X-RateLimit-Limit/-Remaining/-Reset` on every
answer, 429 past the limit.

    python bench/standin.py --port 0 --latency 0.15 --limit 1666 --window 10

Prints `PORT <n>` on its first line. `GET /_stats` answers the calls per route, the 429s and the
successful calls per window; `POST /_reset` forgets them.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_ID = re.compile(r"/[^/]+$")
_OWNER = re.compile(r"^/(contacts|companies)/[^/]+(?=/)")  # /contacts/<id>/tags -> /contacts/{id}/tags


def route_of(method: str, path: str) -> str:
    """The call's route for the stats: ids replaced by {id} (the owner's and the last one)."""
    if path.endswith("/search") or path.count("/") < 2:
        return f"{method} {path}"
    owned = _OWNER.sub(lambda m: f"/{m.group(1)}/{{id}}", path)
    return f"{method} {owned if owned.count('/') == 3 else _ID.sub('/{id}', owned)}"


class State:
    def __init__(self, limit: int, window: float, latency: float) -> None:
        self.limit, self.window, self.latency = limit, window, latency
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with getattr(self, "lock", threading.Lock()):
            self.routes: Counter[str] = Counter()
            self.per_window: Counter[int] = Counter()
            self.refused = 0
            self.first = self.last = 0.0
            self.contacts = 0
            self.hull: Counter[str] = Counter()

    def take(self, route: str) -> tuple[bool, int, int]:
        """(allowed, remaining, reset epoch) for one call now."""
        now = time.time()
        window = int(now // self.window)
        reset = int((window + 1) * self.window)
        with self.lock:
            used = self.per_window[window]
            if used >= self.limit:
                self.refused += 1
                return False, 0, reset
            self.per_window[window] = used + 1
            self.routes[route] += 1
            self.first = self.first or now
            self.last = now
            return True, self.limit - used - 1, reset


def _contact(contact_id: str, body: dict) -> dict:
    empty = {"type": "list", "data": [], "has_more": False, "total_count": 0}
    return {
        "type": "contact", "id": contact_id, "role": body.get("role", "user"), "email": body.get("email"),
        "external_id": body.get("external_id"), "custom_attributes": body.get("custom_attributes", {}),
        "tags": empty, "companies": empty, "notes": empty, "updated_at": int(time.time()),
    }


def make_handler(state: State) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as Intercom

        def log_message(self, *args: object) -> None:
            pass

        def _send(self, status: int, body: object, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> dict:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                return json.loads(raw) if raw else {}
            except ValueError:
                return {}

        def _handle(self) -> None:
            body = self._body()
            path = self.path.split("?")[0]
            if path == "/_stats":
                with state.lock:
                    stats = {
                        "routes": dict(state.routes), "refused": state.refused, "first": state.first, "last": state.last,
                        "per_window": {str(k): v for k, v in sorted(state.per_window.items())}, "limit": state.limit,
                        "hull": dict(state.hull),
                        "window": state.window,
                    }
                return self._send(200, stats)
            if path == "/_reset":
                state.reset()
                return self._send(200, {})
            if path.startswith("/api/"):  # Hull (firehose, status): outside Intercom's limit
                with state.lock:
                    state.hull[path] += 1
                time.sleep(0.02)
                return self._send(200, {"ok": True})
            route = route_of(self.command, path)
            allowed, remaining, reset = state.take(route)
            time.sleep(state.latency)
            headers = {"X-RateLimit-Limit": str(state.limit), "X-RateLimit-Remaining": str(remaining), "X-RateLimit-Reset": str(reset)}
            if not allowed:
                return self._send(429, {"type": "error.list", "errors": [{"code": "rate_limit_exceeded", "message": "Exceeded rate limit"}]}, headers)
            if path == "/contacts/search":
                query = json.dumps(body)
                found = re.search(r'"value": "ext-(\d+)"', query)
                data = [_contact(f"c-{found.group(1)}", {"external_id": f"ext-{found.group(1)}"})] if found else []
                return self._send(200, {"type": "list", "data": data, "total_count": len(data)}, headers)
            if self.command == "POST" and path == "/contacts":
                with state.lock:
                    state.contacts += 1
                    number = state.contacts
                return self._send(200, _contact(f"new-{number}", body), headers)
            if path.startswith("/contacts/") and path.endswith("/tags"):
                return self._send(200, {"type": "tag", "id": str(body.get("id", "1")), "name": "tag"}, headers)
            if path.startswith("/contacts/"):
                return self._send(200, _contact(path.rsplit("/", 1)[1], body), headers)
            if path == "/tags" and self.command == "GET":
                return self._send(200, {"type": "list", "data": []}, headers)
            if path == "/tags":
                return self._send(200, {"type": "tag", "id": str(abs(hash(body.get("name"))) % 10**6), "name": body.get("name")}, headers)
            return self._send(200, {"type": "list", "data": []}, headers)

        do_GET = do_POST = do_PUT = do_DELETE = _handle

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.15)
    parser.add_argument("--limit", type=int, default=1666)
    parser.add_argument("--window", type=float, default=10.0)
    args = parser.parse_args()
    state = State(args.limit, args.window, args.latency)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(state))
    server.daemon_threads = True
    server.request_queue_size = 256
    print(f"PORT {server.server_address[1]}", flush=True)
    sys.stdout.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
