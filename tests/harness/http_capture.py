"""A loopback HTTP server that records what is POSTed to it (Slack incoming webhooks speak
plain JSON POSTs answered `ok`), with an adjustable answer status."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class CaptureServer:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status = 200
        self.script: list[int] = []  # statuses answered first, one per request, then `status`
        self._lock = threading.Lock()
        capture = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with capture._lock:
                    capture.requests.append(
                        {"path": self.path, "headers": dict(self.headers), "body": body}
                    )
                    status = capture.script.pop(0) if capture.script else capture.status
                answer = b"ok" if status < 300 else b"invalid_payload"
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}{path}"

    def json_bodies(self) -> list[Any]:
        with self._lock:
            return [json.loads(r["body"]) for r in self.requests]

    def __enter__(self) -> "CaptureServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
