"""A fake Kubeflow Pipelines API server on 127.0.0.1, for `tfxp submit --target kubeflow`.

It speaks the KFP v2beta1 REST endpoints that ``kfp.Client`` (kfp 2.5) calls to
upload a pipeline and start a run: healthz, pipelines (list, upload, upload a
version, list versions), experiments (list, create) and runs (create). Every
request is recorded (an upload's file is ``form["uploadfile"]``).
"""

from __future__ import annotations

import json

from tests.pipeline.loopback import RecordingServer

API = "/apis/v2beta1"
NOT_FOUND = (404, {"error": "not found", "code": 5})


class FakeKfp(RecordingServer):
    def __init__(self, existing_pipeline: str | None = None, token: str | None = None) -> None:
        """``existing_pipeline``: a pipeline of that name is already uploaded (id ``p-0``);
        ``token``: every request must carry it as a Bearer token, or gets 401."""
        super().__init__()
        self.pipelines = {existing_pipeline: "p-0"} if existing_pipeline else {}
        self.token = token

    def answer(self, request: dict) -> tuple[int, dict]:
        if self.token and request["headers"].get("authorization") != f"Bearer {self.token}":
            return 401, {"error": "Unauthenticated: invalid bearer token", "code": 16}
        path, query = request["path"].removeprefix(API), {k: v[0] for k, v in request["query"].items()}
        if request["method"] == "GET":
            if path == "/healthz":
                return 200, {"multi_user": False}
            if path == "/pipelines":
                wanted = json.loads(query["filter"])["predicates"][0]["stringValue"]
                found = [{"pipeline_id": i, "display_name": n} for n, i in self.pipelines.items() if n == wanted]
                return 200, {"pipelines": found, "total_size": len(found)} if found else {}
            if path.startswith("/pipelines/") and path.endswith("/versions"):
                return 200, {"pipeline_versions": [{"pipeline_id": path.split("/")[2], "pipeline_version_id": "v-1"}]}
            if path == "/experiments":
                return 200, {}  # no experiment of that name yet
            return NOT_FOUND
        if path == "/pipelines/upload":
            self.pipelines[query["name"]] = "p-1"
            return 200, {"pipeline_id": "p-1", "display_name": query["name"]}
        if path == "/pipelines/upload_version":
            return 200, {"pipeline_id": query["pipelineid"], "pipeline_version_id": "v-2"}
        if path == "/experiments":
            return 200, {**json.loads(request["raw"]), "experiment_id": "e-1"}
        if path == "/runs":
            return 200, {**json.loads(request["raw"]), "run_id": "r-1", "state": "PENDING"}
        return NOT_FOUND

    def sent(self, method: str, path: str) -> list[dict]:
        """The recorded requests to ``/apis/v2beta1{path}``, with a JSON body as ``body``."""
        found = [r for r in self.requests if r["method"] == method and r["path"] == f"{API}{path}"]
        return [{**r, "body": json.loads(r["raw"])} if r["raw"] and not r["form"] else r for r in found]
