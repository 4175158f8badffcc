"""A fake of the Google Cloud endpoints that `tfxp submit` talks to, on 127.0.0.1.

It speaks the wire protocols aiplatform and google-auth use: the OAuth2 token
endpoint of an application-default credentials file, the Cloud Storage JSON API (bucket lookup
and creation, via STORAGE_EMULATOR_HOST), and the Vertex AI REST API's PipelineJob create.
Every request is recorded for the test to inspect.
"""

from __future__ import annotations

import json

from tests.pipeline.loopback import RecordingServer

NOT_FOUND = (404, {"error": {"code": 404, "message": "not found", "status": "NOT_FOUND"}})


class FakeCloud(RecordingServer):
    def answer(self, request: dict) -> tuple[int, dict]:
        path = request["path"]
        if request["method"] == "GET":
            # Buckets are reported missing and their creation refused (below):
            # aiplatform then skips its bucket set-up, which would otherwise go
            # on to the Resource Manager API that no fake can stand in for.
            return NOT_FOUND
        if path == "/token":
            return 200, {"access_token": "fake-token", "expires_in": 3600, "token_type": "Bearer"}
        if path == "/storage/v1/b":
            return 403, {"error": {"code": 403, "message": "fake: no buckets", "status": "PERMISSION_DENIED"}}
        if path.endswith("/pipelineJobs"):
            body = json.loads(request["raw"])
            job_id = request["query"].get("pipelineJobId", ["job"])[0]
            parent = path.removeprefix("/v1/")
            return 200, {**body, "name": f"{parent}/{job_id}", "state": "PIPELINE_STATE_PENDING"}
        return NOT_FOUND

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
