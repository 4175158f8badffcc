"""A fake Kubeflow Pipelines API server on 127.0.0.1, for `tfxp submit --target kubeflow`.

It speaks the KFP v2beta1 REST endpoints that ``kfp.Client`` (kfp 2.5) calls to
upload a pipeline and start a run: healthz, pipelines (list, upload, upload a
version, list versions), experiments (list, create) and runs (create). Every
request is recorded, with its headers, query and body (an upload's file
content as ``upload``), for the test to inspect.
"""

from __future__ import annotations

import json
import threading
from email.parser import BytesParser
from email.policy import default as email_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

API = "/apis/v2beta1"


class FakeKfp:
    def __init__(self, existing_pipeline: str | None = None) -> None:
        """``existing_pipeline``: a pipeline of that name is already uploaded (id ``p-0``)."""
        self.requests: list[dict] = []
        self.pipelines = {existing_pipeline: "p-0"} if existing_pipeline else {}
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
                    "query": {k: v[0] for k, v in parse_qs(url.query).items()},
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "raw": raw,
                }
                ctype = self.headers.get("Content-Type", "")
                if ctype.startswith("multipart/form-data"):
                    message = BytesParser(policy=email_policy).parsebytes(
                        f"Content-Type: {ctype}\r\n\r\n".encode() + raw
                    )
                    for part in message.iter_parts():
                        if part.get_param("name", header="content-disposition") == "uploadfile":
                            entry["upload"] = part.get_payload(decode=True).decode()
                elif raw:
                    entry["body"] = json.loads(raw)
                fake.requests.append(entry)
                return entry

            def do_GET(self) -> None:
                entry = self._record()
                path = entry["path"]
                if path == f"{API}/healthz":
                    self._reply(200, {"multi_user": False})
                elif path == f"{API}/pipelines":
                    wanted = json.loads(entry["query"]["filter"])["predicates"][0]["stringValue"]
                    found = [{"pipeline_id": i, "display_name": n} for n, i in fake.pipelines.items() if n == wanted]
                    self._reply(200, {"pipelines": found, "total_size": len(found)} if found else {})
                elif path.startswith(f"{API}/pipelines/") and path.endswith("/versions"):
                    pipeline_id = path.split("/")[-2]
                    self._reply(200, {"pipeline_versions": [{"pipeline_id": pipeline_id, "pipeline_version_id": "v-1"}]})
                elif path == f"{API}/experiments":
                    self._reply(200, {})  # no experiment of that name yet
                else:
                    self._reply(404, {"error": "not found", "code": 5})

            def do_POST(self) -> None:
                entry = self._record()
                path, query = entry["path"], entry["query"]
                if path == f"{API}/pipelines/upload":
                    fake.pipelines[query["name"]] = "p-1"
                    self._reply(200, {"pipeline_id": "p-1", "display_name": query["name"]})
                elif path == f"{API}/pipelines/upload_version":
                    self._reply(200, {"pipeline_id": query["pipelineid"], "pipeline_version_id": "v-2"})
                elif path == f"{API}/experiments":
                    self._reply(200, {**entry["body"], "experiment_id": "e-1"})
                elif path == f"{API}/runs":
                    self._reply(200, {**entry["body"], "run_id": "r-1", "state": "PENDING"})
                else:
                    self._reply(404, {"error": "not found", "code": 5})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "FakeKfp":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def sent(self, method: str, path: str) -> list[dict]:
        return [r for r in self.requests if r["method"] == method and r["path"] == f"{API}{path}"]
