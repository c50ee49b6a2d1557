"""End-to-end tests of the ``ossdrop`` command line: the real console script as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without any ``OSSDROP_*`` variable, plus ``extra``; wide and colourless output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OSSDROP_")}
    return {**env, "PYTHONUNBUFFERED": "1", "COLUMNS": "200", "NO_COLOR": "1", **extra}


def run_cli(*args: str, env: dict[str, str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``python -m ossdrop ARGS`` and capture its output."""
    cmd = [sys.executable, "-m", "ossdrop", *args]
    return subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
