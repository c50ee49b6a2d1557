#!/usr/bin/env python3
"""Issue 5: thumbnails and video snapshots through the store's ``x-oss-process``, next to their baselines.

One run, on files the script generates (a 12 MP JPEG, a two-minute 1080p H.264 clip with a keyframe every 2 s):

* a 256 px thumbnail (``image/resize,m_lfit,w_256,h_256``) through the store's HTTP endpoint, uncached: median
  latency (curl ``time_total`` of a presigned GET) and the store's peak RSS over its RSS before the first processing
  request; next to in-process ``pyvips.Image.thumbnail`` on the same file (operation cache off) and thumbor
  (``/unsafe/fit-in/256x256``, no storage, no result storage) on the same image. Every uncached request names a
  different object with the same bytes (CopyObject: a hard link), so each one misses the derived cache and does
  the same work. A second pair does the crop-to-fill job: the store's ``m_fill`` next to thumbor's default
  ``/unsafe/256x256`` (which crops); the issue's "same image and size" fits both pairs, so both are reported.
  The tools run in interleaved rounds (order rotated each round, round 0 a warm-up), so
  load from anything else on the machine hits them alike; pyvips runs in its own interpreter, one path per line;
* the same thumbnail cached (the same object again): median latency;
* a snapshot at t=60 s (``video/snapshot,t_60000,f_jpg``, uncached the same way) next to
  ``ffmpeg -ss 60 -i clip -frames:v 1`` (the static ffmpeg of ``imageio-ffmpeg``, wall time of the command),
  alternating with the store.

thumbor lives in ``bench/.venvs/thumbor`` (it pins Pillow<13), imageio-ffmpeg in ``bench/.venvs/ffmpeg``; both are
installed on first use. Everything runs on 127.0.0.1 and every server started here is ended when the script stops.
Figures: a table on stdout, JSON in ``bench/out/thumbnails.json``.

Usage: .venv/bin/python bench/thumbnails.py [--runs 25] [--video-runs 7] [--skip-thumbor]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import oss2
from _common import (
    MB,
    OUT_DIR,
    REPO_DIR,
    Children,
    RssSampler,
    children,
    curl_get,
    ensure_venv,
    format_table,
    free_port,
    log,
    median,
    rss_bytes,
)
from PIL import Image, ImageDraw

WORK_DIR = OUT_DIR / "thumbnails"
JSON_PATH = OUT_DIR / "thumbnails.json"
BUCKET = "bench-thumbnails"
ACCESS_KEY_ID = "LTAIbenchthumbnails"
ACCESS_KEY_SECRET = "bench-thumbnails-secret"  # noqa: S105 - a throwaway key for a store that lives for one run
THUMB = "image/resize,m_lfit,w_256,h_256"
FILL = "image/resize,m_fill,w_256,h_256"  # thumbor's default (no fit-in) crops to fill: the same job
SNAPSHOT = "video/snapshot,t_60000,f_jpg"
TARGETS = {"of_pyvips": 1.3, "thumbor_over_store": 2.0, "extra_rss_mb": 64.0, "cached_ms": 5.0, "of_ffmpeg": 1.0}


# -- inputs ------------------------------------------------------------------------------------------------------
def make_photo(path: Path) -> Path:
    """4000x3000 q90 JPEG with gradients, shapes and grain, so it compresses like a photo (a few MB)."""
    if path.exists():
        return path
    size = (4000, 3000)
    red = Image.linear_gradient("L").resize(size)
    green = Image.radial_gradient("L").resize(size)
    blue = Image.effect_noise(size, 40).point(lambda v: v // 2 + 64)
    image = Image.merge("RGB", (red, green, blue))
    draw = ImageDraw.Draw(image)
    for n in range(60):
        x, y = (n * 397) % 3800, (n * 251) % 2800
        draw.ellipse((x, y, x + 200 + n * 3, y + 150 + n * 2), fill=((n * 40) % 256, (n * 90) % 256, (n * 20) % 256))
    grain = Image.effect_noise(size, 12).convert("RGB")
    Image.blend(image, grain, 0.15).save(path, "JPEG", quality=90)
    return path


def make_clip(ffmpeg: str, path: Path) -> Path:
    """Two minutes of 1080p25 H.264 (testsrc2), a keyframe every 2 s exactly (GOP 50, no scene cuts)."""
    if path.exists():
        return path
    log("encoding the 1080p two-minute clip")
    cmd = [ffmpeg, "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=25", "-t", "120",
           "-c:v", "libx264", "-preset", "veryfast", "-g", "50", "-keyint_min", "50", "-sc_threshold", "0",
           "-pix_fmt", "yuv420p", str(path)]  # fmt: skip
    subprocess.run(cmd, check=True, timeout=1800)
    return path


# -- the store ---------------------------------------------------------------------------------------------------
def start_store(group: Children) -> tuple[int, oss2.Bucket]:
    root = WORK_DIR / "store"
    shutil.rmtree(root, ignore_errors=True)
    port = free_port()
    cmd = [str(REPO_DIR / ".venv" / "bin" / "ossdrop"), "store", "--root", str(root), "--port", str(port),
           "--access-key-id", ACCESS_KEY_ID, "--access-key-secret", ACCESS_KEY_SECRET]  # fmt: skip
    child = group.start("ossdrop-store", cmd)
    child.wait_for_text("listening on", timeout=60)
    bucket = oss2.Bucket(oss2.Auth(ACCESS_KEY_ID, ACCESS_KEY_SECRET), f"http://127.0.0.1:{port}", BUCKET)
    bucket.create_bucket()
    return child.pid, bucket


def copies(bucket: oss2.Bucket, source: str, count: int) -> list[str]:
    """``count`` objects with the source's bytes (hard links in the store): each misses the derived cache."""
    keys = [f"{source}.copy{n}" for n in range(count)]
    for key in keys:
        bucket.copy_object(BUCKET, source, key)
    return keys


def timed_gets(bucket: oss2.Bucket, keys: list[str], process: str) -> list[float]:
    """Seconds of each presigned GET (curl's own time_total); every answer must be a 200 image."""
    seconds = []
    for key in keys:
        url = bucket.sign_url("GET", key, 600, params={"x-oss-process": process})
        transfer = curl_get(url, timeout=120)
        if transfer.status != 200 or transfer.downloaded < 1000:
            raise RuntimeError(f"GET {key}?x-oss-process={process}: {transfer}")
        seconds.append(transfer.seconds)
    return seconds


_PYVIPS = textwrap.dedent("""
    import json, sys, time
    import pyvips
    pyvips.cache_set_max(0)
    def hwm():
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    for path in sys.stdin:
        start = time.perf_counter()
        pyvips.Image.thumbnail(path.strip(), 256, height=256).write_to_buffer(".jpg")
        print(json.dumps({"seconds": time.perf_counter() - start, "hwm": hwm()}), flush=True)
""")


class PyvipsWorker:
    """In-process ``pyvips.Image.thumbnail`` to 256x256 + JPEG encode (the limit), in a fresh interpreter that
    thumbnails one path per input line, so its runs interleave with the store's under the same machine load."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", _PYVIPS], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)  # fmt: skip
        self.hwm = 0

    def thumbnail(self, path: Path) -> float:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"{path}\n")
        self.proc.stdin.flush()
        answer = json.loads(self.proc.stdout.readline())
        self.hwm = int(answer["hwm"])
        return float(answer["seconds"])

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)


_THUMBOR_CONF = """
LOADER = 'thumbor.loaders.file_loader'
FILE_LOADER_ROOT_PATH = {root!r}
STORAGE = 'thumbor.storages.no_storage'
RESULT_STORAGE = 'thumbor.result_storages.no_storage'
ALLOW_UNSAFE_URL = True
QUALITY = 90
"""


def start_thumbor(group: Children, photo: Path, count: int) -> int:
    """thumbor serving ``count`` hard links of the photo from its file loader (no storage, no result storage)."""
    venv = ensure_venv("thumbor", ["thumbor>=7.7"], "import thumbor.result_storages.no_storage")
    images = WORK_DIR / "thumbor-images"
    shutil.rmtree(images, ignore_errors=True)
    images.mkdir(parents=True)
    for n in range(count):
        os.link(photo, images / f"p{n}.jpg")
    conf = WORK_DIR / "thumbor.conf"
    conf.write_text(_THUMBOR_CONF.format(root=str(images)))
    port = free_port()
    child = group.start("thumbor", [str(venv / "thumbor"), "--port", str(port), "--conf", str(conf), "-l", "error"])
    child.wait_for_port(port, timeout=60)
    return port


def thumbor_get(port: int, n: int, *, crop: bool = False) -> float:
    mode = "" if crop else "fit-in/"
    transfer = curl_get(f"http://127.0.0.1:{port}/unsafe/{mode}256x256/p{n}.jpg", timeout=120)
    if transfer.status != 200 or transfer.downloaded < 1000:
        raise RuntimeError(f"thumbor answered {transfer}")
    return transfer.seconds


def thumbnails(group: Children, pid: int, bucket: oss2.Bucket, photo: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Round-robin over the tools (order rotated every round) so machine load hits them alike; medians in ms."""
    bucket.put_object_from_file("photo.jpg", str(photo))
    keys = copies(bucket, "photo.jpg", args.runs + 1)
    port = None if args.skip_thumbor else start_thumbor(group, photo, args.runs + 1)
    vips = PyvipsWorker()
    before = rss_bytes(pid)
    tools: dict[str, Callable[[int], float]] = {
        "store": lambda n: timed_gets(bucket, [keys[n]], THUMB)[0],
        "store_fill": lambda n: timed_gets(bucket, [keys[n]], FILL)[0],
        "pyvips": lambda n: vips.thumbnail(photo),
    }
    if port is not None:
        tools["thumbor"] = lambda n: thumbor_get(port, n)
        tools["thumbor_crop"] = lambda n: thumbor_get(port, n, crop=True)
    times: dict[str, list[float]] = {name: [] for name in tools}
    names = list(tools)
    with RssSampler(pid, interval=0.01) as sampler:
        for n in range(args.runs + 1):  # round 0 is the warm-up of each tool
            for name in names[n % len(names) :] + names[: n % len(names)]:
                seconds = tools[name](n)
                if n:
                    times[name].append(seconds)
    vips.close()
    cached = timed_gets(bucket, [keys[0]] * max(args.runs * 2, 30), THUMB)
    store = {"uncached_ms": median(times["store"]) * 1000, "cached_ms": median(cached) * 1000,
             "fill_uncached_ms": median(times["store_fill"]) * 1000,
             "rss_before_mb": before / MB, "rss_peak_mb": sampler.peak / MB,
             "extra_rss_mb": (sampler.peak - before) / MB}  # fmt: skip
    figures: dict[str, Any] = {
        "store": store,
        "pyvips": {"ms": median(times["pyvips"]) * 1000, "hwm_mb": vips.hwm / MB},
    }
    if port is not None:
        figures["thumbor"] = {"ms": median(times["thumbor"]) * 1000, "crop_ms": median(times["thumbor_crop"]) * 1000}
    return figures


def ffmpeg_binary() -> str:
    venv = ensure_venv("ffmpeg", ["imageio-ffmpeg"], "import imageio_ffmpeg; imageio_ffmpeg.get_ffmpeg_exe()")
    done = subprocess.run([str(venv / "python"), "-c", "import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return done.stdout.strip()


def ffmpeg_snapshot(ffmpeg: str, clip: Path) -> float:
    """Wall time of ``ffmpeg -ss 60 -i clip -frames:v 1 out.jpg``."""
    cmd = [ffmpeg, "-loglevel", "error", "-y", "-ss", "60", "-i", str(clip), "-frames:v", "1",
           str(WORK_DIR / "ffmpeg-frame.jpg")]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(cmd, check=True, timeout=300)
    return time.perf_counter() - start


def snapshots(bucket: oss2.Bucket, ffmpeg: str, clip: Path, runs: int) -> dict[str, float]:
    """The store's snapshot (a distinct copy each time) and the ffmpeg CLI, alternating; round 0 warms up."""
    bucket.put_object_from_file("clip.mp4", str(clip))
    keys = copies(bucket, "clip.mp4", runs + 1)
    store: list[float] = []
    cli: list[float] = []
    for n in range(runs + 1):
        if n % 2:
            cli_s, store_s = ffmpeg_snapshot(ffmpeg, clip), timed_gets(bucket, [keys[n]], SNAPSHOT)[0]
        else:
            store_s, cli_s = timed_gets(bucket, [keys[n]], SNAPSHOT)[0], ffmpeg_snapshot(ffmpeg, clip)
        if n:
            store.append(store_s)
            cli.append(cli_s)
    return {"store_ms": median(store) * 1000, "ffmpeg_ms": median(cli) * 1000}


# -- report ------------------------------------------------------------------------------------------------------
def verdicts(fig: dict[str, Any]) -> list[tuple[str, float, str, float, float, bool]]:
    """(figure, value, baseline, baseline value, ratio, met) for each issue target."""
    store, vips, thumbor, video = fig["store"], fig["pyvips"], fig.get("thumbor"), fig["video"]
    rows = [
        ("thumbnail uncached (ms)", store["uncached_ms"], "pyvips in-process (ms)", vips["ms"],
         store["uncached_ms"] / vips["ms"], store["uncached_ms"] <= TARGETS["of_pyvips"] * vips["ms"]),
        ("store extra RSS (MB)", store["extra_rss_mb"], "target (MB)", TARGETS["extra_rss_mb"],
         store["extra_rss_mb"] / TARGETS["extra_rss_mb"], store["extra_rss_mb"] < TARGETS["extra_rss_mb"]),
        ("thumbnail cached (ms)", store["cached_ms"], "target (ms)", TARGETS["cached_ms"],
         store["cached_ms"] / TARGETS["cached_ms"], store["cached_ms"] < TARGETS["cached_ms"]),
        ("snapshot t=60s 1080p (ms)", video["store_ms"], "ffmpeg CLI (ms)", video["ffmpeg_ms"],
         video["store_ms"] / video["ffmpeg_ms"], video["store_ms"] <= video["ffmpeg_ms"]),
    ]  # fmt: skip
    if thumbor is not None:
        ratio = thumbor["ms"] / store["uncached_ms"]
        rows.insert(1, ("thumbnail uncached (ms)", store["uncached_ms"], "thumbor fit-in (ms)", thumbor["ms"], ratio,
                        ratio >= TARGETS["thumbor_over_store"]))  # fmt: skip
        crop = thumbor["crop_ms"] / store["fill_uncached_ms"]
        rows.insert(2, ("thumbnail m_fill uncached (ms)", store["fill_uncached_ms"], "thumbor crop (ms)",
                        thumbor["crop_ms"], crop, crop >= TARGETS["thumbor_over_store"]))  # fmt: skip
    return rows


def report(fig: dict[str, Any]) -> None:
    rows = [[name, f"{value:.1f}", base, f"{base_value:.1f}", f"{ratio:.2f}", "met" if ok else "NOT met"]
            for name, value, base, base_value, ratio, ok in verdicts(fig)]  # fmt: skip
    print(format_table(rows, ["figure", "value", "baseline", "base", "ratio", "target"]))
    print("targets: uncached <= 1.3x pyvips, thumbor/store >= 2, extra RSS < 64 MB, cached < 5 ms, snapshot <= ffmpeg")
    fig["targets"] = [
        {"figure": n, "value": v, "baseline": b, "baseline_value": bv, "ratio": r, "met": ok}
        for n, v, b, bv, r, ok in verdicts(fig)
    ]
    JSON_PATH.write_text(json.dumps(fig, indent=2))
    log(f"wrote {JSON_PATH.relative_to(REPO_DIR)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=25, help="uncached thumbnail requests per tool")
    parser.add_argument("--video-runs", type=int, default=7, help="uncached snapshots per tool")
    parser.add_argument("--skip-thumbor", action="store_true", help="do not install or run thumbor")
    args = parser.parse_args()
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    photo = make_photo(WORK_DIR / "photo-12mp.jpg")
    ffmpeg = ffmpeg_binary()
    clip = make_clip(ffmpeg, WORK_DIR / "clip-1080p-120s.mp4")
    fig: dict[str, Any] = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                                       "loadavg_at_start": os.getloadavg()},
                           "inputs": {"photo_bytes": photo.stat().st_size, "clip_bytes": clip.stat().st_size,
                                      "thumbnail": THUMB, "snapshot": SNAPSHOT}}  # fmt: skip
    with children(WORK_DIR / "logs") as group:
        pid, bucket = start_store(group)
        log("thumbnails: store, pyvips, thumbor (interleaved)")
        fig.update(thumbnails(group, pid, bucket, photo, args))
        log("snapshots: store, ffmpeg (interleaved)")
        fig["video"] = snapshots(bucket, ffmpeg, clip, args.video_runs)
    fig["machine"]["loadavg_at_end"] = os.getloadavg()
    report(fig)


if __name__ == "__main__":
    main()
