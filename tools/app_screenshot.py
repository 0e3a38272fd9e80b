"""Screenshot of the web app in a real browser, for the README: docs/app.png.

Starts `python -m blinddps app` on a free port, waits until it answers, drives headless
Chromium (Debian's `chromium` package: apt-get install -y chromium) over the DevTools
protocol on a pipe (no extra Python package): picks an example, presses Restore, waits for
the job to finish (or for --at-step), takes the screenshot, and stops both.

    python tools/app_screenshot.py                       # docs/app.png as committed
    python tools/app_screenshot.py --example "camera shake" --max-size 128 --at-step 40 -o live.png
    python tools/app_screenshot.py --no-job -o page.png  # the page as it opens

The default job is the camera-shake example with its kernel known (proximal sampler, 20
steps at 256 px: about 15 s on 2 CPU cores); blind DPS takes 100 steps, a few minutes at
256 px, so --max-size 128 suits a quick look.  The picture is quantised to a palette
(Pillow) to keep the PNG small.
"""
from __future__ import annotations

import argparse
import base64
import fcntl
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
                  "--remote-debugging-pipe"]


class Chromium:
    """Headless Chromium driven through the DevTools protocol on fds 3 / 4 (NUL-separated JSON)."""

    def __init__(self, binary: str, profile: str, width: int, height: int):
        to_child, self._to_browser = _high_pipe()
        self._from_browser, from_child = _high_pipe()
        # The browser reads commands on fd 3 and writes replies on fd 4.
        script = f'exec "$0" "$@" 3<&{to_child} 4>&{from_child} {to_child}<&- {from_child}>&-'
        self.proc = subprocess.Popen(["bash", "-c", script, binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                                      f"--window-size={width},{height}", "about:blank"],
                                     pass_fds=(to_child, from_child), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_child)
        os.close(from_child)
        self._buffer, self._next_id, self.session = b"", 0, None
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)

    def call(self, method: str, **params) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if self.session and not method.startswith(("Target.", "Browser.")):
            message["sessionId"] = self.session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def _read(self) -> dict:
        while b"\0" not in self._buffer:
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def js(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float, what: str, every: float = 0.5, log=None):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.js(expression)
            if log:
                log()
            if value:
                return value
            time.sleep(every)
        raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")

    def screenshot(self) -> Image.Image:
        data = self.call("Page.captureScreenshot", format="png")["data"]
        return Image.open(io.BytesIO(base64.b64decode(data)))

    def close(self) -> None:
        try:
            self.call("Browser.close")
            self.proc.wait(timeout=10)
        except Exception:  # a browser that does not close is stopped
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)


def _high_pipe() -> tuple[int, int]:
    """A pipe whose ends are numbered 10 or more, clear of the 3 and 4 the browser uses."""
    r, w = os.pipe()
    high = fcntl.fcntl(r, fcntl.F_DUPFD, 10), fcntl.fcntl(w, fcntl.F_DUPFD, 10)
    os.close(r)
    os.close(w)
    return high


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(port: int, folder: Path, max_size: int, log) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    proc = subprocess.Popen([sys.executable, "-m", "blinddps", "app", "--port", str(port), "--device", "cpu",
                             "--max-size", str(max_size), "--output", str(folder)], stdout=log, stderr=log,
                            env=env, cwd=ROOT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the app exited with code {proc.returncode}: see {log.name}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as reply:
                if reply.status == 200:
                    return proc
        except OSError:
            time.sleep(0.5)
    raise TimeoutError("the app did not answer within 120 s")


STATUS = "document.querySelector('#bdps-status')?.innerText || ''"
CLICK_EXAMPLE = """(() => {
  const items = [...document.querySelectorAll('#bdps-examples button, #bdps-examples td, #bdps-examples div')];
  const hit = items.find(e => e.innerText && e.innerText.trim() === %s);
  if (hit) { hit.click(); return true; }
  return false;
})()"""


def run_job(browser: Chromium, example: str, at_step: int, timeout: float) -> None:
    browser.wait_for(CLICK_EXAMPLE % json.dumps(example), 30, f"the example {example!r}")
    browser.wait_for("!!document.querySelector('#bdps-photo img')", 30, "the example photo to load")
    browser.js("document.querySelector('#bdps-run').click()")
    last = [""]

    def log() -> None:
        text = browser.js(STATUS).strip().replace("\n", " ")
        if text != last[0]:
            print(f"  {text}", flush=True)
            last[0] = text

    done = ("/Step (\\d+) of/.exec(%s)?.[1] >= %d" % (STATUS, at_step)) if at_step else f"({STATUS}).startsWith('Done')"
    browser.wait_for(f"({done}) || ({STATUS}).includes('rror')", timeout, "the job", every=1.0, log=log)
    if "rror" in browser.js(STATUS):
        raise RuntimeError(f"the job failed: {browser.js(STATUS)}")
    time.sleep(1.5)  # the last images arrive with the status: give them time to paint


def save_small(image: Image.Image, path: Path) -> None:
    """A palette PNG (256 colours, optimised): the page is mostly flat colour, so it stays sharp."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
        path, optimize=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--output", type=Path, default=ROOT / "docs" / "app.png")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=1000)
    parser.add_argument("--max-size", type=int, default=512, help="the app's --max-size (smaller: a faster job)")
    parser.add_argument("--example", default="camera shake, kernel known", help="the example to run, by its label")
    parser.add_argument("--at-step", type=int, default=0, help="take the picture at this step instead of at the end")
    parser.add_argument("--no-job", action="store_true", help="the page as it opens, no job")
    parser.add_argument("--timeout", type=float, default=900, help="seconds the job may take")
    parser.add_argument("--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser"))
    args = parser.parse_args()
    if not args.chromium:
        parser.error("no chromium found: apt-get install -y chromium (or pass --chromium PATH)")
    with tempfile.TemporaryDirectory(prefix="blinddps-shot-") as tmp, open(Path(tmp) / "app.log", "w") as log:
        port = free_port()
        app = start_app(port, Path(tmp) / "app", args.max_size, log)
        browser = None
        try:
            browser = Chromium(args.chromium, str(Path(tmp) / "profile"), args.width, args.height)
            browser.call("Page.navigate", url=f"http://127.0.0.1:{port}/")
            browser.wait_for("!!document.querySelector('#bdps-run')", 60, "the page")
            if not args.no_job:
                run_job(browser, args.example, args.at_step, args.timeout)
            else:
                time.sleep(1.0)
            save_small(browser.screenshot(), args.output)
        finally:
            if browser is not None:
                browser.close()
            app.terminate()
            app.wait(timeout=30)
    print(f"wrote {args.output} ({args.output.stat().st_size / 1e3:.0f} kB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
