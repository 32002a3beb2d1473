"""Debian's Chromium, as every browser test and the classroom benchmark launch it (never a browser download)."""

import os
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def launcher(folder: Path, nice: int = 0, cores: str | None = None) -> Path:
    """A script in `folder` that starts Chromium at `nice` (on `cores`, a taskset list, if given), for
    Playwright's executable_path. As root, Chromium sets its display threads to nice −8 (five times a nice-0
    process's share of a busy core); the script takes that right (CAP_SYS_NICE) from it, so the nice value
    holds, as for a user's own browser."""
    script = Path(folder) / f"chromium-nice{nice}-cores{cores or 'all'}"
    drop = "setpriv --inh-caps=-sys_nice --bounding-set=-sys_nice " if os.geteuid() == 0 else ""
    pin = f"taskset -c {cores} " if cores else ""
    script.write_text(f'#!/bin/sh\nexec {pin}{drop}nice -n {nice} {CHROMIUM} "$@"\n')
    script.chmod(0o755)
    return script
