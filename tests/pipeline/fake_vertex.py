"""A fake of the Google Cloud endpoints that `tfxp submit` talks to, on 127.0.0.1.

It speaks the wire protocols aiplatform and google-auth use: the OAuth2 token
endpoint of an application-default credentials file, the Cloud Storage JSON API (bucket lookup
and creation, via STORAGE_EMULATOR_HOST), and the Vertex AI REST API's PipelineJob create.
Every request is recorded for the test to inspect.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


class FakeCloud:
    def __init__(self) -> None:
        self.requests: list[dict] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _reply(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _record(self) -> dict:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                url = urlparse(self.path)
                entry = {
                    "method": self.command,
                    "path": url.path,
                    "query": parse_qs(url.query),
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "raw": raw,
                }
                fake.requests.append(entry)
                return entry

            def do_GET(self) -> None:
                self._record()
                # Buckets are reported missing and their creation refused (below):
                # aiplatform then skips its bucket set-up, which would otherwise go
                # on to the Resource Manager API that no fake can stand in for.
                self._reply(404, {"error": {"code": 404, "message": "not found", "status": "NOT_FOUND"}})

            def do_POST(self) -> None:
                entry = self._record()
                if entry["path"] == "/token":
                    self._reply(200, {"access_token": "fake-token", "expires_in": 3600, "token_type": "Bearer"})
                elif entry["path"] == "/storage/v1/b":
                    self._reply(403, {"error": {"code": 403, "message": "fake: no buckets", "status": "PERMISSION_DENIED"}})
                elif entry["path"].endswith("/pipelineJobs"):
                    body = json.loads(entry["raw"])
                    job_id = entry["query"].get("pipelineJobId", ["job"])[0]
                    parent = entry["path"].removeprefix("/v1/")
                    self._reply(200, {**body, "name": f"{parent}/{job_id}", "state": "PIPELINE_STATE_PENDING"})
                else:
                    self._reply(404, {"error": {"code": 404, "message": "not found", "status": "NOT_FOUND"}})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "FakeCloud":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def pipeline_job_requests(self) -> list[dict]:
        return [r for r in self.requests if r["method"] == "POST" and r["path"].endswith("/pipelineJobs")]


def user_credentials(token_url: str) -> dict:
    """An application-default credentials file whose token endpoint is the fake.

    ``external_account_authorized_user`` is the user-credential type whose token
    URL google-auth honours (``authorized_user`` always uses Google's), and with
    no workforce pool in its audience it makes no access-boundary lookup.
    """
    return {
        "type": "external_account_authorized_user",
        "audience": "//iam.googleapis.com/locations/global/providers/fake",
        "client_id": "fake-client",
        "client_secret": "fake-secret",
        "refresh_token": "fake-refresh-token",
        "token_url": token_url,
        "token_info_url": token_url.replace("/token", "/tokeninfo"),
    }
