"""``make notebook``: Jupyter's classic notebook UI (nbclassic) over notebooks/, where TFMA's widgets draw.

TFMA 0.47's views are a classic-notebook extension: JupyterLab 4 and Notebook 7
(both in the lock) show an empty box. nbclassic serves the classic UI from
the same Jupyter server. Two front-end problems stop the views from drawing
even there, and ``review/nbextension/tfma_nb_compat`` fixes both:
- widgetsnbextension >= 3.6.7 ships its base classes as ES classes, and TFMA's
  Backbone-style subclasses fail with "_deserialize_state is not a function";
- TFMA's bundle holds a UMD module that calls an anonymous ``define()`` under
  RequireJS, which breaks whichever widget loads next, at random.

The views draw their tables and charts with Google Charts, which the browser
loads from www.gstatic.com: the browser needs internet access for them.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
COMPAT = Path(__file__).resolve().parent / "nbextension" / "tfma_nb_compat"
EXTENSIONS = ("tensorflow_model_analysis/extension", "tfma_nb_compat/extension")


def _jupyter() -> str:
    return str(Path(sys.executable).parent / "jupyter")


def enable_extensions() -> None:
    """Install and enable TFMA's views and the compatibility shim in this environment (idempotent)."""
    def quiet(*args: str) -> None:
        subprocess.run(
            [_jupyter(), "nbclassic-extension", *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )

    quiet("install", str(COMPAT), "--sys-prefix", "--overwrite")
    for extension in EXTENSIONS:
        quiet("enable", extension, "--sys-prefix")


def command(port: int, token: str | None, notebook_dir: Path, ip: str = "127.0.0.1") -> list[str]:
    cmd = [
        _jupyter(), "nbclassic", "--no-browser", f"--ip={ip}", f"--port={port}", "--port-retries=0",
        f"--ServerApp.root_dir={notebook_dir}",
    ]  # fmt: skip
    if token is not None:
        cmd.append(f"--IdentityProvider.token={token}")
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    return cmd


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8888)
    parser.add_argument("--token", default=None, help="Access token (default: Jupyter makes one and prints the URL).")
    parser.add_argument("--notebook-dir", type=Path, default=REPO_ROOT / "notebooks")
    args = parser.parse_args(argv)
    try:
        enable_extensions()
    except subprocess.CalledProcessError as exc:
        sys.exit(f"error: could not enable the notebook extensions: {exc.stderr.decode().strip()[-500:]}")
    cmd = command(args.port, args.token, args.notebook_dir.resolve())
    print(f"Open http://127.0.0.1:{args.port}/nbclassic/notebooks/model_analysis.ipynb (Ctrl-C stops the server)")
    os.execv(cmd[0], cmd)


if __name__ == "__main__":
    main()
