#!/usr/bin/env python3
"""dashboard_screenshot.py -- a screenshot of corral's dashboard after it has run for a while.

Usage: scripts/dashboard_screenshot.py URL OUT.png [SECONDS] [CHROMIUM]

`chromium --headless --screenshot` runs the page in virtual time: its 1-second timer
fires as fast as the fetches allow, so a few seconds of real load fill the charts.  To
show minutes of a real load (docs/dashboard.png), this keeps a headless Chromium on the
page for SECONDS (default 90) of real time and then captures it, over the DevTools
protocol on a pipe (--remote-debugging-pipe: NUL-separated JSON on fds 3 and 4; no
websocket library needed).  Standard library only.
"""
import base64
import json
import os
import subprocess
import sys
import tempfile
import time


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    url, out = sys.argv[1], sys.argv[2]
    seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 90.0
    browser = sys.argv[4] if len(sys.argv) > 4 else "chromium"
    to_child_r, to_child_w = os.pipe()
    from_child_r, from_child_w = os.pipe()

    def fds():
        # Copies first: a pipe may already be fd 3 or 4, and dup2 onto itself would
        # leave it close-on-exec.
        r, w = os.dup(to_child_r), os.dup(from_child_w)
        os.dup2(r, 3)
        os.dup2(w, 4)

    profile = tempfile.mkdtemp(prefix="corral-shot.")
    proc = subprocess.Popen(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--no-first-run", "--hide-scrollbars", "--remote-debugging-pipe",
         "--user-data-dir=" + profile, "--window-size=1280,900", "about:blank"],
        preexec_fn=fds, close_fds=False,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(to_child_r)
    os.close(from_child_w)
    wr, rd = os.fdopen(to_child_w, "wb", buffering=0), os.fdopen(from_child_r, "rb", buffering=0)
    pending = b""
    next_id = [0]

    def call(method, session=None, **params):
        nonlocal pending
        next_id[0] += 1
        msg = {"id": next_id[0], "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        wr.write(json.dumps(msg).encode() + b"\0")
        while True:  # events and other replies are skipped
            while b"\0" not in pending:
                chunk = rd.read(1 << 16)
                if not chunk:
                    sys.exit("chromium closed the DevTools pipe")
                pending += chunk
            raw, pending = pending.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == next_id[0]:
                if "error" in reply:
                    sys.exit("%s: %s" % (method, reply["error"]))
                return reply["result"]

    try:
        target = call("Target.createTarget", url=url)["targetId"]
        session = call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        # Tall enough for the tables under the charts.
        call("Emulation.setDeviceMetricsOverride", session, width=1280, height=1240,
             deviceScaleFactor=1, mobile=False)
        time.sleep(seconds)
        shot = call("Page.captureScreenshot", session, format="png")
        with open(out, "wb") as f:
            f.write(base64.b64decode(shot["data"]))
        samples = call("Runtime.evaluate", session, expression="window.corralSamples")
        print("%s: %s samples" % (out, samples["result"].get("value")))
        call("Browser.close")
    finally:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        subprocess.run(["rm", "-rf", profile])


if __name__ == "__main__":
    main()
