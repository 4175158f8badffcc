"""Headless Chromium for the tests that look at pages as a person would.

Debian's ``chromium`` (``.ci/run`` installs it). Outside CI a missing browser
skips the test and says why; in CI it fails.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from websockets.sync.client import connect


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path:
        return path
    if os.environ.get("CI"):
        pytest.fail("chromium is not installed: .ci/run installs Debian's chromium package")
    pytest.skip("chromium is not installed (apt-get install chromium); the browser check needs it")
    raise AssertionError("unreachable")


def screenshot(url: str, out: Path, width: int = 1100, height: int = 3000) -> tuple[Image.Image, list[str]]:
    """Render ``url`` headless; return the screenshot and the page's console errors."""
    result = subprocess.run(
        [
            chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            "--enable-logging=stderr", "--v=0", f"--window-size={width},{height}",
            f"--screenshot={out}", url,
        ],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert out.is_file(), f"chromium wrote no screenshot: {result.stderr[-2000:]}"
    errors = [
        line for line in result.stderr.splitlines() if "CONSOLE" in line and ("Error" in line or "Uncaught" in line)
    ]
    return Image.open(out).convert("RGB"), errors


def ink(image: Image.Image) -> float:
    """The share of pixels that are not (near) white: 0 for a blank page."""
    pixels = np.asarray(image, dtype=np.int16)
    return float((pixels.min(axis=2) < 235).mean())


class DevTools:
    """A headless Chromium driven over the DevTools protocol, bound to loopback.

    Host resolution is blocked for every name but 127.0.0.1, so a page can
    reach nothing outside this machine.
    """

    def __init__(self, profile_dir: Path, width: int = 1400, height: int = 1800) -> None:

        port = free_port()
        self.process = subprocess.Popen(
            [
                chromium(), "--headless=new", "--disable-gpu", "--no-first-run", "--no-sandbox",
                "--disable-extensions", "--disable-background-networking", "--disable-component-update",
                f"--user-data-dir={profile_dir}", "--remote-debugging-address=127.0.0.1",
                f"--remote-debugging-port={port}", f"--window-size={width},{height}",
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", "about:blank",
            ],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        wait_http(f"http://127.0.0.1:{port}/json/version", 30)
        request = urllib.request.Request(f"http://127.0.0.1:{port}/json/new?about:blank", method="PUT")
        url = json.load(urllib.request.urlopen(request, timeout=10))["webSocketDebuggerUrl"]
        self.ws = connect(url, max_size=None, open_timeout=20)
        self.n = 0
        self.events: list[dict] = []
        for domain in ("Page", "Runtime", "Log"):
            self(f"{domain}.enable")
        self("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)

    def __call__(self, method: str, timeout: float = 60, **params) -> dict:

        self.n += 1
        self.ws.send(json.dumps({"id": self.n, "method": method, "params": params}))
        end = time.time() + timeout
        while True:
            message = json.loads(self.ws.recv(timeout=max(0.1, end - time.time())))
            if message.get("id") == self.n:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def js(self, expression: str):
        result = self("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        return None if "exceptionDetails" in result else result["result"].get("value")

    def wait(self, expression: str, timeout: float, what: str):

        end = time.time() + timeout
        while time.time() < end:
            value = self.js(expression)
            if value:
                return value
            time.sleep(0.5)
        raise TimeoutError(f"timed out after {timeout}s waiting for {what}")

    def screenshot(self, out: Path) -> Path:

        data = self("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"]
        out.write_bytes(base64.b64decode(data))
        return out

    def errors(self) -> list[dict]:
        """Exceptions and console or log errors the pages reported."""
        return [
            m["params"]
            for m in self.events
            if m.get("method") == "Runtime.exceptionThrown"
            or (m.get("method") == "Log.entryAdded" and m["params"]["entry"]["level"] == "error")
            or (m.get("method") == "Runtime.consoleAPICalled" and m["params"]["type"] in ("error", "assert"))
        ]

    def close(self) -> None:
        stop(self.process)


def wait_http(url: str, timeout: float) -> bytes:

    end = time.time() + timeout
    while time.time() < end:
        with contextlib.suppress(OSError):
            return urllib.request.urlopen(url, timeout=2).read()
        time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


def stop(process: subprocess.Popen) -> None:
    """SIGTERM the process group (Jupyter then shuts its kernels down), SIGKILL if it lingers."""

    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
