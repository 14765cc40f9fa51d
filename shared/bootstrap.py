"""What every entrypoint builds: the transport, the secret box, the metadata store."""
from __future__ import annotations

import sqlalchemy as sa

from shared.secrets import SecretBox, resolve_secret_key
from shared.settings import Settings
from shared.store.db import migrate, open_store
from shared.topology import Topology
from shared.transport import create_transport
from shared.transport.base import Transport


def build_transport(settings: Settings, *, name: str) -> tuple[Transport, Topology]:
    topology = Topology(settings.queue_prefix)
    transport = create_transport(settings.amqp_url, name=name, dead_letter_queue=topology.dead)
    topology.declare(transport)
    return transport, topology


def build_secret_box(settings: Settings) -> SecretBox:
    """Raises ConfigError when the distributed form has no DM_SECRET_KEY."""
    single_process = settings.amqp_url.startswith("memory://")
    return SecretBox(resolve_secret_key(settings.secret_key, data_dir=settings.data_dir,
                                        allow_generate=single_process))


def build_store(settings: Settings) -> sa.Engine:
    """Open the metadata store and apply its migrations."""
    engine = open_store(settings.metadata_url())
    migrate(engine)
    return engine
