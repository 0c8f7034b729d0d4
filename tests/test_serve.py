"""``monohand serve``: the HTTP API on a real server, and the page in a real headless Chromium.

The server runs as a subprocess on 127.0.0.1 with its own TMPDIR, which must be empty at the
end (no temporary files left behind). The browser test uploads the example photo, waits for
the overlay and the 3D view, downloads the ``.glb`` through the page and loads it with
trimesh, then uploads a corrupt file (the page must say so) and the photo again (the server
must still work). Screenshots go to ``out/test-artifacts/`` for people to look at.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import numpy as np
import pytest
import trimesh
from PIL import Image

from monohand.serve.app import UploadError, decode_upload

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "hand.jpg"
ARTIFACTS = ROOT / "out" / "test-artifacts"
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A ``monohand serve`` subprocess; yields its base URL; checks its TMPDIR stays clean."""
    tmp = tmp_path_factory.mktemp("serve-tmp")
    port = _free_port()
    env = {**os.environ, "TMPDIR": str(tmp)}
    cmd = [sys.executable, "-m", "monohand", "serve", "--port", str(port), "--max-upload-mb", "2"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            urllib.request.urlopen(url + "/api/options", timeout=1).read()
            break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"server exited: {proc.stdout.read().decode()[-2000:]}")
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("server did not start")
    yield url
    proc.terminate()
    proc.wait(10)
    # torch keeps its (empty) compile cache folder in TMPDIR by design; anything else is ours.
    left = [p for p in tmp.iterdir() if not p.name.startswith("torchinductor_")]
    assert left == [], f"temporary files left behind: {left}"


def _post(url: str, fields: dict, file: tuple[str, bytes] | None = None,
          chunked: bool = False) -> tuple[int, dict]:  # fmt: skip
    """A multipart POST with the standard library (no extra HTTP client needed); ``chunked``:
    without a Content-Length (chunked transfer encoding), in 256 kB pieces."""
    boundary = uuid.uuid4().hex
    parts = []
    for k, v in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n')
    body = "".join(parts).encode()
    if file:
        name, data = file
        head = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"'
                "\r\nContent-Type: application/octet-stream\r\n\r\n")  # fmt: skip
        body += head.encode() + data + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    data = iter([body[i : i + 2**18] for i in range(0, len(body), 2**18)]) if chunked else body
    req = urllib.request.Request(url, data, headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _wait(url: str, job_id: str, timeout: float = 120) -> dict:
    t0 = time.time()
    while time.time() - t0 < timeout:
        job = json.loads(urllib.request.urlopen(f"{url}/api/jobs/{job_id}").read())
        if job["status"] in ("done", "error"):
            return job
        time.sleep(0.2)
    raise TimeoutError(job_id)


def test_decode_upload_errors():
    with pytest.raises(UploadError, match="bad.jpg: not a readable image"):
        decode_upload("bad.jpg", b"\xff\xd8 this is not a jpeg", 10**7)
    with pytest.raises(UploadError, match="empty"):
        decode_upload("e.png", b"", 10**7)
    big = Image.new("L", (400, 300))
    buf = io.BytesIO()
    big.save(buf, format="PNG")
    with pytest.raises(UploadError, match="400x300 is too large"):
        decode_upload("big.png", buf.getvalue(), 100_000)
    # 16-bit greyscale and RGBA come out as RGB uint8.
    for im in (Image.fromarray(np.full((8, 9), 40000, np.uint16)), Image.new("RGBA", (9, 8))):
        buf = io.BytesIO()
        im.save(buf, format="PNG")
        a = decode_upload("x.png", buf.getvalue(), 10**7)
        assert a.shape == (8, 9, 3) and a.dtype == np.uint8


def test_api_upload_result_and_errors(server):
    """The API end to end: a job on the example photo, its files, and refusals."""
    status, job = _post(server + "/api/jobs", {"model": "openhand", "method": "fit"},
                        ("hand.jpg", EXAMPLE.read_bytes()))  # fmt: skip
    assert status == 200, job
    job = _wait(server, job["id"])
    assert job["status"] == "done", job
    hand = job["result"]["hands"][0]
    assert hand["side"] == "right" and len(hand["confidence"]) == 21
    # the API says what it holds, in the file's units (metres)
    assert job["result"]["format"] == "monohand.reconstruction"
    assert 0.2 < np.asarray(hand["joints3d"])[:, 2].mean() < 1.5
    # rounded to 0.01 mm as promised (float32's rounded values printed 17 digits)
    assert all(len(repr(x).split(".")[-1]) <= 5 for p in hand["joints3d"] for x in p)
    files = f"{server}/api/jobs/{job['id']}/files/"
    record = json.loads(urllib.request.urlopen(files + job["result"]["json"]).read())
    assert np.asarray(record["hands"][0]["joints3d"]).shape == (21, 3)
    glb = urllib.request.urlopen(files + hand["glb"]).read()
    mesh = trimesh.load(trimesh.util.wrap_as_stream(glb), file_type="glb", force="mesh")
    assert len(mesh.faces) > 1000
    # Without a method: the page's default, the first offered: the hybrid (a network ships).
    options = json.loads(urllib.request.urlopen(server + "/api/options").read())
    assert options["methods"][0] == "hybrid" and "fit" in options["methods"]
    status, job = _post(server + "/api/jobs", {"model": "openhand"},
                        ("hand.jpg", EXAMPLE.read_bytes()))  # fmt: skip
    assert status == 200 and job["method"] == "hybrid", job
    job = _wait(server, job["id"])
    assert job["status"] == "done" and "prior_pose" in job["result"]["hands"][0]["fit"], job

    try:  # FastAPI's own refusals answer in the same shape as ours
        urllib.request.urlopen(server + "/api/jobs/nosuchjob")
        raise AssertionError("a missing job was found")
    except urllib.error.HTTPError as e:
        assert e.code == 404 and json.loads(e.read()) == {"error": "no job nosuchjob"}

    status, body = _post(server + "/api/jobs", {}, ("notes.jpg", b"hello, not a photo"))
    assert status == 400 and "notes.jpg: not a readable image" in body["error"]
    for chunked in (False, True):  # a stated length, or counted as it streams in
        status, body = _post(server + "/api/jobs", {}, ("big.jpg", b"\0" * (3 * 2**20)), chunked)
        assert status == 413 and "too large (at most 2 MB)" in body["error"], (chunked, body)
    # just over the limit, within the form's allowance: refused by the handler, also 413
    status, body = _post(server + "/api/jobs", {}, ("big.jpg", b"\0" * (2 * 2**20 + 10_000)))
    assert status == 413 and "big.jpg: too large (at most 2 MB)" in body["error"], body
    # A chunked upload that fits is handed on whole.
    status, body = _post(server + "/api/jobs", {}, ("notes.jpg", b"x" * 2**19), chunked=True)
    assert status == 400 and "notes.jpg: not a readable image" in body["error"]
    photo = ("hand.jpg", EXAMPLE.read_bytes())
    status, body = _post(server + "/api/jobs", {"model": "mano"}, photo)
    assert status == 400 and "not available" in body["error"]
    # A photo without a hand: the job fails with a message, the server goes on.
    blank = io.BytesIO()
    Image.new("RGB", (320, 240), (120, 140, 160)).save(blank, format="PNG")
    status, job = _post(server + "/api/jobs", {}, ("wall.png", blank.getvalue()))
    job = _wait(server, job["id"])
    assert job["status"] == "error" and "no hand found" in job["error"]
    try:  # its files: none, and why
        urllib.request.urlopen(f"{server}/api/jobs/{job['id']}/files/hand.json")
        raise AssertionError("a failed job has a file")
    except urllib.error.HTTPError as e:
        assert e.code == 404 and "failed (wall.png: no hand found" in json.loads(e.read())["error"]
    # a tiny one: said to be small for the detector, as the command line says it
    tiny = io.BytesIO()
    Image.new("RGB", (60, 40), (120, 140, 160)).save(tiny, format="PNG")
    status, job = _post(server + "/api/jobs", {}, ("tiny.png", tiny.getvalue()))
    job = _wait(server, job["id"])
    assert "(a 60x40 photo: small for the detector" in job["error"], job
    # a video is the command line's; an upload without a file names what is expected
    status, body = _post(server + "/api/jobs", {}, ("clip.mp4", b"\0\0\0 ftypisom"))
    assert status == 400 and "a video: monohand reconstruct clip.mp4" in body["error"], body
    status, body = _post(server + "/api/jobs", {"model": "openhand"}, None)
    assert status == 400 and "the field file, or example=true" in body["error"], body


@pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="Debian's chromium and chromium-driver are not installed (make test installs them "
    "where apt-get and root are available)",
)
def test_page_in_headless_chromium(server, tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-quic", "--window-size=1280,1400",
                 "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
                 f"--user-data-dir={tmp_path / 'profile'}"):  # fmt: skip
        opts.add_argument(flag)
    opts.add_experimental_option("prefs", {"download.default_directory": str(downloads)})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        driver.execute_cdp_cmd(
            "Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
        )
        driver.get(server + "/")
        wait = WebDriverWait(driver, 120)
        wait.until(lambda d: d.find_element(By.ID, "model").get_attribute("value") == "openhand")

        def upload_and_wait(path: Path) -> None:
            driver.find_element(By.ID, "file").send_keys(str(path))
            wait.until(lambda d: not d.find_element(By.ID, "progress").is_displayed())

        upload_and_wait(EXAMPLE)
        assert not driver.find_element(By.ID, "error").is_displayed()
        overlay_loaded = (
            "const i = document.getElementById('overlay'); return i.complete && i.naturalWidth"
        )
        wait.until(lambda d: d.execute_script(overlay_loaded))
        wait.until(lambda d: d.execute_script("return document.getElementById('viewer').loaded"))
        time.sleep(1.0)  # let the viewer draw a frame before the picture is taken
        driver.save_screenshot(str(ARTIFACTS / "serve_result.png"))
        viewer_box = driver.find_element(By.ID, "viewer").rect
        assert viewer_box["width"] > 200 and viewer_box["height"] > 200
        # Keypoints and confidences are listed for the hand.
        rows = driver.find_elements(By.CSS_SELECTOR, "#hands table.joints tr")
        assert len(rows) == 22
        # Download the .glb through the page and load it.
        link = driver.find_element(By.CSS_SELECTOR, "#glb-links a.glb")
        name = link.get_attribute("download")
        link.click()
        target = downloads / name
        for _ in range(100):
            if target.is_file() and not list(downloads.glob("*.crdownload")):
                break
            time.sleep(0.1)
        mesh = trimesh.load(target, force="mesh")
        assert len(mesh.vertices) > 1000
        # Nothing was fetched from anywhere but this server.
        urls = driver.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name)"
        )
        assert urls and all(u.startswith(server) for u in urls), urls

        bad = tmp_path / "corrupt.jpg"
        bad.write_bytes(b"\xff\xd8\xff\xe0 definitely not a photo")
        upload_and_wait(bad)
        error = driver.find_element(By.ID, "error")
        assert error.is_displayed() and "corrupt.jpg: not a readable image" in error.text
        assert not driver.find_element(By.ID, "result").is_displayed()
        driver.save_screenshot(str(ARTIFACTS / "serve_error.png"))

        job_before = driver.find_element(By.ID, "result").get_attribute("data-job")
        upload_and_wait(EXAMPLE)
        assert not driver.find_element(By.ID, "error").is_displayed()
        assert driver.find_element(By.ID, "result").is_displayed()
        assert driver.find_element(By.ID, "result").get_attribute("data-job") != job_before
    finally:
        driver.quit()


def test_a_jobs_elapsed_time_counts_from_submission_and_stops_when_it_ends(monkeypatch):
    """``elapsed``: seconds since the job was submitted (its wait in the queue included),
    frozen once it ends; ``seconds``: the worker's own time on it, once finished."""
    import monohand.serve.app as serve

    now = [0.0]
    monkeypatch.setattr(serve.time, "time", lambda: now[0])
    job = serve.Job("j", "photo.jpg", "openhand", "hybrid", submitted=100.0)
    now[0] = 104.0  # queued for 4 s
    assert job.public()["elapsed"] == 4.0 and job.public()["seconds"] is None
    job.started = 104.0
    now[0] = 106.5  # running
    assert job.public()["elapsed"] == 6.5
    job.seconds = 3.0  # finished at 107
    now[0] = 200.0
    assert job.public()["elapsed"] == 7.0 and job.public()["seconds"] == 3.0


def test_a_job_names_the_model_its_hands_are(monkeypatch, capsys):
    """A network of another model than OpenHand (a MANO checkpoint) behind the page's default
    "openhand": the job and its result name the model the hands are in, not the choice."""
    from types import SimpleNamespace

    import monohand.reconstruct as reconstruct
    import monohand.serve.app as serve

    hand = SimpleNamespace(side="right", joints3d=np.zeros((21, 3)),
                           fit={"reprojection_px": 15.0},  # 0.75 of its size: said
                           detection=SimpleNamespace(keypoints=np.zeros((21, 2)), size=20.0,
                                                     confidence=np.ones(21)))  # fmt: skip
    monkeypatch.setattr(reconstruct, "reconstruct_photo", lambda *a, **k: SimpleNamespace(
        hands=[hand], K=np.eye(3), K_source="default", files=[]))  # fmt: skip
    worker = serve.Worker(serve.ServeConfig(checkpoint="mano_net.ckpt"))
    monkeypatch.setattr(worker, "_reconstructor", lambda model, method: SimpleNamespace(
        cfg=SimpleNamespace(model="mano", method=method),
        network_name="mano_net.ckpt"))  # fmt: skip
    job = serve.Job("j", "photo.jpg", "openhand", "hybrid")
    worker._run(job, np.zeros((8, 8, 3), np.uint8))
    assert job.status == "done", job.error
    assert job.public()["model"] == "mano" and job.result["model"] == "mano"
    assert job.result["network"] == "mano_net.ckpt"  # which network made them, as the files
    # and what the command line would say of them (``notes.hand_notes``)
    (note,) = job.result["notes"]
    assert note["kind"] == "warning" and note["text"].startswith("hand 0 ends 15 px from its")
    # and the server's log has a line for it
    assert "job j (photo.jpg): 1 hand(s) by hybrid" in capsys.readouterr().err
    # the result relates its pixels to its metres on its own: K and the image's name
    assert job.result["K"] == np.eye(3).tolist() and job.result["image"] == "photo.jpg"


def test_unfinished_jobs_are_never_dropped_and_a_full_queue_refuses(monkeypatch):
    """The kept results make room oldest first, but only finished ones: a job still queued
    or running stays findable (its page once lost it to 16 quicker uploads); with
    ``max_jobs`` waiting, an upload is refused, saying so."""
    import monohand.serve.app as serve

    worker = serve.Worker(serve.ServeConfig(max_jobs=3))
    monkeypatch.setattr(worker.pool, "submit", lambda *a, **k: None)  # nothing runs
    image = np.zeros((8, 8, 3), np.uint8)
    slow = worker.submit("slow.jpg", image, "openhand", "fit")  # stays queued
    done = []
    for k in range(4):
        job = worker.submit(f"quick{k}.jpg", image, "openhand", "fit")
        job.status = "done"
        done.append(job)
    assert worker.get(slow.id) is slow  # unfinished: kept though the oldest
    assert worker.get(done[0].id) is None and worker.get(done[-1].id) is done[-1]
    assert len(worker.jobs) == 3
    for j in worker.jobs.values():
        j.status = "queued"
    with pytest.raises(serve.UploadError, match="busy: 3 photos are queued"):
        worker.submit("more.jpg", image, "openhand", "fit")
