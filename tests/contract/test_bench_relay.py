"""bench.relay, the benchmark's floor for COPY bytes through RabbitMQ, moves every byte in order."""
from __future__ import annotations

import os
import subprocess
import sys
import uuid

from tests.fixtures.servers import BROKER_PREFIXES


def test_relay_moves_every_byte_in_order_across_several_messages(amqp_url: str) -> None:
    prefix = f"dm_relay_{uuid.uuid4().hex[:8]}"
    BROKER_PREFIXES.add(prefix)
    queue = f"{prefix}.copy"
    payload = os.urandom(9 << 20) + b"\\n last row\\n"  # three 4 MiB messages and a short one
    env = {**os.environ, "DM_BENCH_AMQP_URL": amqp_url}
    consumer = subprocess.Popen([sys.executable, "-m", "bench.relay", "consume", queue], env=env,
                                stdout=subprocess.PIPE)
    subprocess.run([sys.executable, "-m", "bench.relay", "publish", queue], input=payload, env=env, check=True,
                   timeout=60)
    out, _ = consumer.communicate(timeout=60)
    assert consumer.returncode == 0
    assert out == payload
