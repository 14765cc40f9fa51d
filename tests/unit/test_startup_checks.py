"""Services refuse to start on settings that would leak or lose secrets."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from shared.bootstrap import build_secret_box
from shared.errors import ConfigError
from shared.settings import Settings

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("service", ["api", "extractor", "loader"])
def test_distributed_service_without_secret_key_refuses_to_start(service: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DM_")}
    env |= {"DM_AMQP_URL": "amqp://guest:guest@127.0.0.1:1/%2F", "DM_DATA_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "services.cli", "serve", service], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "DM_SECRET_KEY is not set" in done.stderr and "Traceback" not in done.stderr


def test_single_process_creates_a_private_key_file_once(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, amqp_url="memory://")
    first = build_secret_box(settings).encrypt("pw")
    key_file = tmp_path / "secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert build_secret_box(settings).decrypt(first) == "pw"


def test_a_malformed_secret_key_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a valid key"):
        build_secret_box(Settings(data_dir=tmp_path, amqp_url="amqp://x", secret_key="short"))
