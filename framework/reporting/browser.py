"""Open a report in headless Chromium: console errors, plot sizes and a full-page screenshot.

Used by the browser test and to take the README's screenshot. Chromium is driven through the
Chrome DevTools protocol (``--remote-debugging-port``) with aiohttp's websocket client, which the
environment already has (MLflow depends on it), so no browser-automation package is needed.
"""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass
import json
import os
from pathlib import Path
import shutil
import socket
import subprocess
import tempfile
import time
from typing import Any


CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "chrome")

_SIZES = """JSON.stringify(Array.from(document.querySelectorAll('.plotly-graph-div')).map(
  e => ({id: e.id, width: e.getBoundingClientRect().width,
         height: e.getBoundingClientRect().height,
         svg: e.querySelectorAll('svg.main-svg').length})))"""


@dataclass
class PageCheck:
    """What the browser saw."""

    errors: list[str]
    """Console errors and uncaught exceptions."""
    plots: list[dict[str, Any]]
    """Per plotly container: id, width, height and its number of rendered SVG layers."""
    images: int
    """Images that loaded (naturalWidth > 0)."""
    screenshot: Path | None


def find_chromium() -> str | None:
    """The path of a Chromium (or Chrome) executable, or None."""
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


def inspect_page(page: Path, screenshot: Path | None = None, width: int = 1280,
                 timeout: float = 60.0) -> PageCheck:
    """Load ``page`` in headless Chromium and report what rendered.

    Raises:
        FileNotFoundError: when no Chromium is installed.
    """
    chromium = find_chromium()
    if chromium is None:
        raise FileNotFoundError(f"none of {', '.join(CANDIDATES)} is on PATH")
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="dropout-lab-chromium-") as profile:
        process = subprocess.Popen(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-extensions", "--disable-dev-shm-usage", f"--user-data-dir={profile}",
             f"--remote-debugging-port={port}", f"--window-size={width},900", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            return asyncio.run(asyncio.wait_for(
                _inspect(port, page.resolve().as_uri(), screenshot, width, timeout),
                timeout))
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


async def _inspect(port: int, url: str, screenshot: Path | None, width: int,
                   timeout: float) -> PageCheck:
    import aiohttp

    async with aiohttp.ClientSession() as http:
        target = await _page_target(http, port, timeout)
        async with http.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
            cdp = _Session(ws)
            await cdp.call("Runtime.enable")
            await cdp.call("Log.enable")
            await cdp.call("Page.enable")
            await cdp.call("Page.navigate", url=url)
            await cdp.wait_for("Page.loadEventFired")
            # plotly draws on load; give it a moment to lay out every figure.
            await asyncio.sleep(1.5)
            plots = json.loads(await cdp.evaluate(_SIZES))
            images = await cdp.evaluate(
                "Array.from(document.images).filter(i => i.naturalWidth > 0).length")
            shot = None
            if screenshot is not None:
                height = await cdp.evaluate("document.documentElement.scrollHeight")
                await cdp.call("Emulation.setDeviceMetricsOverride", width=width,
                               height=int(height), deviceScaleFactor=1, mobile=False)
                await asyncio.sleep(0.5)
                data = await cdp.call("Page.captureScreenshot", format="png",
                                      captureBeyondViewport=True)
                screenshot.parent.mkdir(parents=True, exist_ok=True)
                screenshot.write_bytes(base64.b64decode(data["data"]))
                shot = screenshot
            return PageCheck(cdp.errors, plots, int(images), shot)


async def _page_target(http: Any, port: int, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            async with http.get(f"http://127.0.0.1:{port}/json/list") as response:
                pages = [t for t in await response.json() if t.get("type") == "page"]
                if pages:
                    return pages[0]
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError("Chromium did not open its debugging port")
        await asyncio.sleep(0.2)


class _Session:
    """Minimal DevTools client: numbered calls, events collected as they pass."""

    def __init__(self, ws: Any):
        self.ws, self.next_id, self.errors, self.seen = ws, 0, [], []

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        call_id = self.next_id
        await self.ws.send_json({"id": call_id, "method": method, "params": params})
        while True:
            message = await self._receive()
            if message.get("id") == call_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    async def evaluate(self, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    async def wait_for(self, event: str) -> None:
        while event not in self.seen:
            await self._receive()

    async def _receive(self) -> dict[str, Any]:
        message = await self.ws.receive_json()
        method = message.get("method")
        if method:
            self.seen.append(method)
            params = message.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") == "error":
                self.errors.append(" ".join(str(a.get("value", a.get("description", "")))
                                            for a in params.get("args", [])))
            elif method == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                self.errors.append(details.get("exception", {}).get("description")
                                   or details.get("text", "exception"))
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                self.errors.append(params["entry"].get("text", ""))
        return message


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def screenshot_cli(page: Path, out: Path, width: int = 1280, height: int = 2400) -> Path:
    """The plain ``chromium --headless --screenshot`` route (no DevTools), for a quick look."""
    chromium = find_chromium()
    if chromium is None:
        raise FileNotFoundError(f"none of {', '.join(CANDIDATES)} is on PATH")
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                        f"--user-data-dir={profile}", f"--screenshot={out}",
                        f"--window-size={width},{height}", page.resolve().as_uri()],
                       check=True, capture_output=True, timeout=120,
                       env={**os.environ, "HOME": profile})
    return out
