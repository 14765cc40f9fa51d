"""A wheel built from the working tree ships every file the page needs (the browser gets them
from the installed package: tests/unit/test_web_assets.py checks what is served)."""
from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from services.api import web
from tests.e2e.stack import REPO


def test_a_built_wheel_ships_every_asset(tmp_path: Path) -> None:
    # Given a wheel built from the working tree (what `pip install .` installs)
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "-q", "-w", str(tmp_path)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    wheel = next(tmp_path.glob("*.whl"))
    # Then it carries every file the page needs
    shipped = set(zipfile.ZipFile(wheel).namelist())
    missing = [n for n in web.asset_names() if f"services/api/web/static/{n}" not in shipped]
    assert not missing, f"the wheel lacks {missing}; check [tool.setuptools.package-data]"
