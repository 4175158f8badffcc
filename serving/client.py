"""A typed client for TF Serving's REST and gRPC APIs (this server or the real one).

    with connect("http://127.0.0.1:8501", "taxi") as client:      # or "grpc://127.0.0.1:8500"
        rows = read_rows(Path("data/data.csv"), client.input_dtypes(), limit=3)
        result = client.predict(rows)
        result.predictions, result.model_version

``read_rows`` converts CSV cells with the dtypes the server's metadata gives:
an empty cell becomes NaN (floats) or "" (strings), which the taxi model
treats as missing, or 0 (integers), the value the pipeline fills a missing
integer with (``models.features.Feature.missing_value``).
"""

from __future__ import annotations

import base64
import csv
import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

_FLOAT = {"DT_FLOAT": "float32", "DT_DOUBLE": "float64", "DT_HALF": "float16", "DT_BFLOAT16": "bfloat16"}
_INT = {"DT_INT8", "DT_INT16", "DT_INT32", "DT_INT64", "DT_UINT8", "DT_UINT16", "DT_UINT32", "DT_UINT64"}
VERSION_HEADER = "X-Model-Version"


class ServingClientError(Exception):
    """The server refused or failed a request; ``status`` is the HTTP status or gRPC code name."""

    def __init__(self, status: int | str, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


@dataclasses.dataclass(frozen=True)
class PredictResult:
    predictions: list[Any]  # one per row: a value, or {output: value} for several outputs
    model_version: int | None  # None when the server does not say (REST on the real TF Serving)


class ServingClient(Protocol):
    model_name: str

    def predict(self, rows: Sequence[Mapping[str, Any]], signature_name: str = "") -> PredictResult: ...

    def metadata(self) -> dict[str, Any]: ...

    def status(self) -> dict[str, Any]: ...

    def input_dtypes(self, signature_name: str = "") -> dict[str, str]: ...

    def close(self) -> None: ...

    def __enter__(self) -> ServingClient: ...

    def __exit__(self, *exc: object) -> None: ...


def connect(
    url: str, model_name: str, *, version: int | None = None, label: str | None = None, timeout: float = 30.0
) -> RestClient | GrpcClient:
    """A client for ``http(s)://host:port`` (REST) or ``grpc://host:port`` (gRPC)."""
    scheme = urlsplit(url).scheme
    if scheme in ("http", "https"):
        return RestClient(url, model_name, version=version, label=label, timeout=timeout)
    if scheme == "grpc":
        return GrpcClient(url, model_name, version=version, label=label, timeout=timeout)
    raise ValueError(f"--url {url!r}: use http://host:8501 for REST or grpc://host:8500 for gRPC")


class _Base:
    model_name: str

    def input_dtypes(self, signature_name: str = "") -> dict[str, str]:
        """Input name -> TF dtype (``DT_FLOAT``...) of a signature, from the model's metadata."""
        sigs = self.metadata()["metadata"]["signature_def"]["signature_def"]
        key = signature_name or "serving_default"
        if key not in sigs:
            raise ServingClientError(
                400, f"model {self.model_name!r} has no signature {key!r}; it has {sorted(sigs)}"
            )
        return {name: info["dtype"] for name, info in sorted(sigs[key]["inputs"].items())}

    def metadata(self) -> dict[str, Any]:
        raise NotImplementedError

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()  # type: ignore[attr-defined]


class RestClient(_Base):
    def __init__(
        self,
        url: str,
        model_name: str,
        *,
        version: int | None = None,
        label: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        import httpx

        self.model_name = model_name
        path = f"/v1/models/{quote(model_name, safe='')}"
        if version is not None:
            path += f"/versions/{version}"
        elif label is not None:
            path += f"/labels/{quote(label, safe='')}"
        self._path = path
        self._http = httpx.Client(base_url=url.rstrip("/"), timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def _send(self, method: str, path: str, body: bytes | None = None) -> Any:
        headers = {"Content-Type": "application/json"} if body is not None else None
        response = self._http.request(method, path, content=body, headers=headers)
        try:
            doc = json.loads(response.content) if response.content else {}
        except json.JSONDecodeError:
            doc = {"error": response.text[:200]}
        if response.status_code != 200:
            raise ServingClientError(response.status_code, doc.get("error", response.reason_phrase))
        return doc, response.headers

    def predict(self, rows: Sequence[Mapping[str, Any]], signature_name: str = "") -> PredictResult:
        request: dict[str, Any] = {"instances": [dict(r) for r in rows]}
        if signature_name:
            request["signature_name"] = signature_name
        doc, headers = self._send("POST", f"{self._path}:predict", json.dumps(request, default=_b64).encode())
        version = headers.get(VERSION_HEADER)
        return PredictResult(doc["predictions"], int(version) if version else None)

    def metadata(self) -> dict[str, Any]:
        return self._send("GET", f"{self._path}/metadata")[0]

    def status(self) -> dict[str, Any]:
        return self._send("GET", self._path)[0]


def _b64(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"b64": base64.b64encode(value).decode("ascii")}
    raise TypeError(f"cannot send {type(value).__name__} as JSON")


class GrpcClient(_Base):
    def __init__(
        self,
        url: str,
        model_name: str,
        *,
        version: int | None = None,
        label: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        import grpc
        from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

        self.model_name = model_name
        self._version, self._label, self._timeout = version, label, timeout
        target = urlsplit(url).netloc
        self._channel = grpc.insecure_channel(target)
        self._predict = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        self._models = model_service_pb2_grpc.ModelServiceStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def _spec(self, spec: Any, signature_name: str = "") -> None:
        spec.name = self.model_name
        if self._version is not None:
            spec.version.value = self._version
        elif self._label is not None:
            spec.version_label = self._label
        if signature_name:
            spec.signature_name = signature_name

    def _call(self, method: Any, request: Any) -> Any:
        import grpc

        try:
            return method(request, timeout=self._timeout)
        except grpc.RpcError as exc:
            raise ServingClientError(exc.code().name, exc.details()) from exc

    def predict(self, rows: Sequence[Mapping[str, Any]], signature_name: str = "") -> PredictResult:
        import numpy as np
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2

        dtypes = self.input_dtypes(signature_name)
        request = predict_pb2.PredictRequest()
        self._spec(request.model_spec, signature_name)
        for name, dtype in dtypes.items():
            values = [row[name] for row in rows]
            if dtype == "DT_STRING":
                arr = np.array([v.encode() if isinstance(v, str) else v for v in values], dtype=object)
            else:
                arr = np.array(values, dtype=tf.dtypes.as_dtype(dtype.lower()[3:]).as_numpy_dtype)
            request.inputs[name].CopyFrom(tf.make_tensor_proto(arr))
        response = self._call(self._predict.Predict, request)
        outputs = {k: tf.make_ndarray(v) for k, v in response.outputs.items()}
        names = sorted(outputs)
        if len(names) == 1:
            predictions = [_plain(v) for v in outputs[names[0]]]
        else:
            predictions = [{n: _plain(outputs[n][i]) for n in names} for i in range(len(rows))]
        return PredictResult(predictions, response.model_spec.version.value)

    def metadata(self) -> dict[str, Any]:
        from google.protobuf import json_format
        from tensorflow_serving.apis import get_model_metadata_pb2

        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        self._spec(request.model_spec)
        response = self._call(self._predict.GetModelMetadata, request)
        signatures = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signatures)
        opts = {"including_default_value_fields": True, "preserving_proto_field_name": True}
        return {
            "model_spec": json_format.MessageToDict(response.model_spec, **opts),
            "metadata": {"signature_def": json_format.MessageToDict(signatures, **opts)},
        }

    def status(self) -> dict[str, Any]:
        from google.protobuf import json_format
        from tensorflow_serving.apis import get_model_status_pb2

        request = get_model_status_pb2.GetModelStatusRequest()
        self._spec(request.model_spec)
        response = self._call(self._models.GetModelStatus, request)
        return json_format.MessageToDict(response, including_default_value_fields=True)


def _plain(value: Any) -> Any:
    import numpy as np

    value = np.asarray(value)
    items = value.tolist()
    if value.dtype.kind == "O":
        return _decode(items)
    return items


def _decode(items: Any) -> Any:
    if isinstance(items, list):
        return [_decode(i) for i in items]
    return items.decode("utf-8", "replace") if isinstance(items, bytes) else items


# ---------------------------------------------------------------------------
# Rows from files


def read_rows(path: Path, dtypes: Mapping[str, str], limit: int | None = None) -> list[dict[str, Any]]:
    """Rows of a CSV or JSON file, holding exactly the inputs in ``dtypes`` (name -> DT_*)."""
    if path.suffix.lower() == ".json":
        return _json_rows(path, dtypes, limit)
    return _csv_rows(path, dtypes, limit)


def _csv_rows(path: Path, dtypes: Mapping[str, str], limit: int | None) -> list[dict[str, Any]]:
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        columns = reader.fieldnames or []
        missing = [name for name in dtypes if name not in columns]
        if missing:
            raise ValueError(
                f"{path}: no column {', '.join(missing)}, which the model's signature needs; "
                f"the file has: {', '.join(columns) or 'no header'}"
            )
        rows: list[dict[str, Any]] = []
        for line, record in enumerate(reader, start=2):
            if limit is not None and len(rows) >= limit:
                break
            rows.append(
                {
                    name: _cell(record[name], dtype, f"{path}:{line} column {name!r}")
                    for name, dtype in dtypes.items()
                }
            )
    if not rows:
        raise ValueError(f"{path}: no data rows after the header")
    return rows


def _cell(text: str | None, dtype: str, where: str) -> Any:
    text = (text or "").strip()
    try:
        if dtype in _FLOAT:
            return float(text) if text else math.nan
        if dtype in _INT:
            if not text:
                return 0
            value = float(text)
            if not value.is_integer():
                raise ValueError
            return int(value)
        if dtype == "DT_BOOL":
            return text.lower() in ("1", "true", "yes")
        return text
    except ValueError:
        kind = "a number" if dtype in _FLOAT else "a whole number"
        raise ValueError(
            f"{where}: {text!r} is not {kind} ({dtype}); fix the cell or leave it empty"
        ) from None


def _json_rows(path: Path, dtypes: Mapping[str, str], limit: int | None) -> list[dict[str, Any]]:
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from exc
    rows = doc.get("instances") if isinstance(doc, dict) else doc
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise ValueError(f'{path}: expected a list of objects, or {{"instances": [{{...}}, ...]}}')
    out = []
    for i, row in enumerate(rows[:limit]):
        missing = [n for n in dtypes if n not in row]
        if missing:
            raise ValueError(f"{path}: row {i} lacks {', '.join(missing)}, which the model's signature needs")
        out.append({n: row[n] for n in dtypes})
    if not out:
        raise ValueError(f"{path}: no rows")
    return out
