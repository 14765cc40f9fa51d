"""A floor for moving COPY bytes through RabbitMQ, as the product's architecture requires.

``python -m bench.relay publish QUEUE`` reads standard input in 4 MiB chunks and publishes each
as one transient message with publisher confirms (as the extractor publishes batches), then an
empty message as the end; ``python -m bench.relay consume QUEUE`` writes the bodies to standard
output in order and acknowledges each (one message prefetched, as the loader takes batches) until
the empty one. Between ``psql COPY … TO STDOUT`` and ``psql COPY … FROM STDIN`` this is the least
any extractor and loader on RabbitMQ can do: no row boundaries, no savepoints, one COPY.
"""
from __future__ import annotations

import os
import sys

import pika

CHUNK = 4 << 20
URL = os.environ.get("DM_BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")


def _channel() -> tuple[pika.BlockingConnection, object]:
    connection = pika.BlockingConnection(pika.URLParameters(URL))
    channel = connection.channel()
    return connection, channel


def publish(queue: str) -> None:
    connection, channel = _channel()
    channel.queue_declare(queue, durable=False, auto_delete=False)
    channel.confirm_delivery()
    transient = pika.BasicProperties(delivery_mode=pika.DeliveryMode.Transient)
    read = sys.stdin.buffer.read
    while True:
        chunk = read(CHUNK)
        channel.basic_publish("", queue, chunk, transient)
        if not chunk:
            break
    connection.close()


def consume(queue: str) -> None:
    connection, channel = _channel()
    channel.queue_declare(queue, durable=False, auto_delete=False)
    channel.basic_qos(prefetch_count=1)
    write = sys.stdout.buffer.write
    for method, _props, body in channel.consume(queue):
        channel.basic_ack(method.delivery_tag)
        if not body:
            break
        write(body)
    sys.stdout.buffer.flush()
    channel.queue_delete(queue)
    connection.close()


if __name__ == "__main__":
    {"publish": publish, "consume": consume}[sys.argv[1]](sys.argv[2])
