"""Throughput of the AMQP transport with large messages.

Publishes N persistent 1 MiB messages with publisher confirms to a bounded queue
(x-max-length, reject-publish) while a consumer thread get()s them; prints MiB/s.
``--transient`` sends non-persistent messages (batch queues may, see DESIGN.md).

    .venv/bin/python bench/transport_bench.py [--url amqp://...] [-n 500] [--size-mib 1] [--max-length 20]
"""
from __future__ import annotations

import argparse
import os
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from shared.transport import create_transport  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("DM_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F"))
    parser.add_argument("-n", type=int, default=500)
    parser.add_argument("--size-mib", type=float, default=1.0)
    parser.add_argument("--max-length", type=int, default=20)
    parser.add_argument("--transient", action="store_true", help="non-persistent messages (still confirmed)")
    args = parser.parse_args()

    transport = create_transport(args.url, name="bench", dead_letter_queue="bench.dead")
    queue = f"bench.{uuid.uuid4().hex[:8]}"
    transport.declare_queue(queue, max_length=args.max_length, expires_s=300)
    body = os.urandom(int(args.size_mib * 1024 * 1024))
    received = [0]

    def take() -> None:
        for _ in range(args.n):
            message = transport.get(queue, timeout_s=30)
            assert message is not None and len(message.body) == len(body)
            received[0] += 1

    consumer = threading.Thread(target=take)
    start = time.perf_counter()
    consumer.start()
    for _ in range(args.n):
        transport.publish(body, queue=queue, persistent=not args.transient, timeout_s=60)
    consumer.join()
    elapsed = time.perf_counter() - start
    transport.delete_queue(queue)
    transport.close()
    mib = args.n * len(body) / 2**20
    kind = "transient" if args.transient else "persistent"
    print(f"{args.n} x {args.size_mib} MiB {kind}+confirmed, max_length={args.max_length}: "
          f"{mib / elapsed:.0f} MiB/s ({args.n / elapsed:.0f} msg/s, {elapsed:.2f}s)")


if __name__ == "__main__":
    main()
