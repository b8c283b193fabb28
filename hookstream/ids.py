"""Resource ids: a type prefix and 32 lowercase hex characters (spec §1)."""

import uuid
from functools import partial


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def id_factory(prefix: str):
    """A callable default for a model's primary key (named, so migrations can serialize it)."""
    return partial(new_id, prefix)
