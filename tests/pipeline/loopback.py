"""The base of the fakes of cloud APIs: an HTTP server on 127.0.0.1 that records every request.

A fake subclasses :class:`RecordingServer` and answers each recorded request
in ``answer``. A request is recorded as a dict: ``method``, ``path``, ``query``
(parse_qs lists), ``headers`` (lower-case names), ``raw`` (the body's bytes),
and ``form`` (field name -> text) for a multipart upload.
"""

from __future__ import annotations

import json
import threading
from email.parser import BytesParser
from email.policy import default as email_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


def _form(content_type: str, raw: bytes) -> dict[str, str]:
    message = BytesParser(policy=email_policy).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
    return {
        part.get_param("name", header="content-disposition"): part.get_payload(decode=True).decode()
        for part in message.iter_parts()
    }


class RecordingServer:
    def __init__(self) -> None:
        self.requests: list[dict] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                url = urlparse(self.path)
                content_type = self.headers.get("Content-Type", "")
                entry = {
                    "method": self.command,
                    "path": url.path,
                    "query": parse_qs(url.query),
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "raw": raw,
                    "form": _form(content_type, raw) if content_type.startswith("multipart/form-data") else {},
                }
                fake.requests.append(entry)
                status, body = fake.answer(entry)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def answer(self, request: dict) -> tuple[int, dict]:
        """The status and JSON body to reply to a recorded request."""
        raise NotImplementedError

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
