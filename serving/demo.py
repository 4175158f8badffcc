"""``make demo``'s last step: serve the pushed model, send one REST predict, print, stop."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from serving.client import RestClient, read_rows
from serving.config import ServerOptions, single_model

logger = logging.getLogger(__name__)


def demo_query(model_base_path: str, data_csv: str, rows: int = 3) -> None:
    """Start the server on free loopback ports, predict ``rows`` CSV rows over REST, print, stop."""
    from serving.server import start_server

    base = Path(model_base_path)
    name = base.name
    options = ServerOptions(models=single_model(name, str(base)), port=0, rest_api_port=0)
    with start_server(options) as server:
        if not server.manager.statuses(name) or all(
            s.state != "AVAILABLE" for s in server.manager.statuses(name)
        ):
            raise RuntimeError(
                f"no version of {name!r} under {base} could be loaded: {server.manager.statuses(name)}"
            )
        with RestClient(server.rest_url, name) as client:
            instances = read_rows(Path(data_csv), client.input_dtypes(), limit=rows)
            print(f"POST {server.rest_url}/v1/models/{name}:predict")
            print('{"instances": [\n  ' + ",\n  ".join(json.dumps(r) for r in instances) + "\n]}")
            result = client.predict(instances)
        print(f"Predictions from version {result.model_version}:")
        for i, (row, p) in enumerate(zip(instances, result.predictions, strict=True)):
            described = ", ".join(
                f"{k}={row[k]!r}" for k in ("payment_type", "fare", "trip_miles") if k in row
            )
            print(f"  row {i}: {described} -> {p}")


def main() -> None:
    """Query the local profile's pushed model with the first rows of its data."""
    import os
    import warnings

    from pipeline.config import load_config

    # Keep TensorFlow's start-up chatter and Google's deprecation notices off the demo.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    warnings.filterwarnings("ignore", category=FutureWarning)

    cfg = load_config("local")
    csvs = sorted(Path(cfg.data.root).glob("*.csv"))
    if not csvs:
        raise SystemExit(f"error: no CSV file in {cfg.data.root} to take example rows from")
    base = Path(cfg.model_base_path)
    if not base.is_dir() or not any(p.name.isdigit() for p in base.iterdir()):
        raise SystemExit(f"error: no pushed model under {base}: run `tfxp run` (or `make demo`) first")
    demo_query(cfg.model_base_path, str(csvs[0]))


if __name__ == "__main__":
    main()
