"""A client generated from the OpenAPI document by openapi-python-client works against the API.

Client generators skip operations they cannot type (a ``*/*`` request body, say): generating
one and calling ingest and a list through it proves the document is usable as published.
"""

import importlib
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connections

from intake import services as intake_services

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def generated_client(tmp_path_factory, django_db_blocker):
    with django_db_blocker.unblock():
        root = tmp_path_factory.mktemp("openapi_client")
        document = root / "openapi.json"
        call_command("spectacular", "--format", "openapi-json", "--file", str(document))
        connections.close_all()
    config = root / "config.yaml"
    config.write_text(
        "post_hooks: []\nproject_name_override: hookstream_client\npackage_name_override: hookstream_client\n"
    )
    generator = Path(sys.executable).with_name("openapi-python-client")
    result = subprocess.run(
        [
            str(generator),
            "generate",
            "--path",
            str(document),
            "--config",
            str(config),
            "--meta",
            "none",
            "--output-path",
            str(root / "hookstream_client"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # Every operation was generated: no warning about a skipped one.
    assert "WARNING" not in result.stdout, result.stdout
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module("hookstream_client")
    finally:
        sys.path.remove(str(root))
        for name in [m for m in sys.modules if m == "hookstream_client" or m.startswith("hookstream_client.")]:
            del sys.modules[name]


def test_it_ingests_and_lists_through_a_generated_client(generated_client, live_server, alice):
    # The package exists only once generated: imported by name, at run time.
    destinations_list = importlib.import_module("hookstream_client.api.destinations.destinations_list")
    events_list = importlib.import_module("hookstream_client.api.events.events_list")
    ingest_post = importlib.import_module("hookstream_client.api.ingest.ingest_post")
    IngestPostJsonBody = importlib.import_module("hookstream_client.models").IngestPostJsonBody  # noqa: N806

    source = intake_services.source_create(organization=alice.org, data={"name": "Orders"})
    anonymous = generated_client.Client(base_url=live_server.url)
    keyed = generated_client.AuthenticatedClient(base_url=live_server.url, token=alice.raw_key)

    ingested = ingest_post.sync(source.pk, client=anonymous, body=IngestPostJsonBody.from_dict({"order": 42}))
    page = events_list.sync(client=keyed)
    destinations = destinations_list.sync_detailed(client=keyed)

    assert ingested.event_id.startswith("evt_")
    assert [event.id for event in page.events] == [ingested.event_id]
    assert destinations.status_code == 200
    assert destinations.parsed.destinations == [] and destinations.parsed.has_more is False
