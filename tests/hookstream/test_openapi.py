"""The OpenAPI document: it validates, and it tells the truth about the baseline."""

import re

from django.core.management import call_command

HTTP_METHODS = {"get", "post", "put", "patch", "delete"}


def test_it_generates_a_valid_document_without_warnings(db, tmp_path):
    target = tmp_path / "openapi.yaml"

    # Validates against the OpenAPI 3 schema; any generator warning fails.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))

    assert target.stat().st_size > 0


def _document(client):
    response = client.get("/v1/openapi.json")
    assert response.status_code == 200
    return response.json()


def test_it_serves_the_document_without_authentication(db, client):
    document = _document(client)

    assert document["openapi"].startswith("3.")
    for path in (
        "/v1/destinations",
        "/v1/destinations/{id}",
        "/v1/destinations/templates",
        "/v1/destinations/{id}/circuit",
        "/v1/destinations/{id}/circuit/reset",
        "/v1/auth/api-keys",
        "/v1/auth/api-keys/{id}",
    ):
        assert path in document["paths"], path


def test_it_describes_the_pagination_envelope_with_the_real_plural(db, client):
    document = _document(client)
    schemas = document["components"]["schemas"]

    ref = document["paths"]["/v1/destinations"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    envelope = schemas[ref["$ref"].rsplit("/", 1)[1]]

    assert set(envelope["properties"]) == {"destinations", "cursor", "has_more"}
    assert set(envelope["required"]) == {"destinations", "cursor", "has_more"}
    assert envelope["properties"]["cursor"]["nullable"] is True
    params = {p["name"]: p for p in document["paths"]["/v1/destinations"]["get"]["parameters"]}
    assert params["limit"]["schema"]["maximum"] == 100 and params["limit"]["schema"]["default"] == 20
    keys = document["paths"]["/v1/auth/api-keys"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert "api_keys" in schemas[keys["$ref"].rsplit("/", 1)[1]]["properties"]


def test_it_gives_every_error_response_the_error_body(db, client):
    document = _document(client)
    error = document["components"]["schemas"]["Error"]

    assert set(error["required"]) == {"error", "status", "request_id"}
    assert "details" in error["properties"]
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method not in HTTP_METHODS:
                continue
            codes = operation["responses"]
            assert "429" in codes, (method, path)
            for code, response in codes.items():
                response = _resolve(document, response)
                if code.startswith(("4", "5")):
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}, (method, path, code)
                assert "X-Request-Id" in response.get("headers", {}), (method, path, code)
                header = _resolve(document, response["headers"]["X-Request-Id"])
                assert header["schema"] == {"type": "string"}


def _resolve(document, item):
    """Follow a local ``$ref`` (responses and headers are shared components)."""
    while "$ref" in item:
        node = document
        for part in item["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        item = node
    return item


def test_it_documents_the_error_answers_of_destinations(db, client):
    paths = _document(client)["paths"]

    assert {"400", "401", "403", "409", "415", "429"} <= set(paths["/v1/destinations"]["post"]["responses"])
    assert {"400", "401", "404", "409"} <= set(paths["/v1/destinations/{id}"]["patch"]["responses"])
    assert "404" in paths["/v1/destinations/{id}/circuit"]["get"]["responses"]


def test_it_documents_api_keys_and_the_session_as_security_schemes(db, client):
    document = _document(client)
    schemes = document["components"]["securitySchemes"]

    assert schemes["ApiKeyAuth"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": schemes["ApiKeyAuth"]["description"],
    }
    assert schemes["BearerAuth"]["scheme"] == "bearer"
    assert schemes["cookieAuth"]["in"] == "cookie"
    security = document["paths"]["/v1/destinations"]["get"]["security"]
    assert {"ApiKeyAuth": []} in security and {"BearerAuth": []} in security
    # Keys are managed with a session only.
    assert document["paths"]["/v1/auth/api-keys"]["post"]["security"] == [{"cookieAuth": []}]


def test_it_documents_the_other_spellings_and_masked_secrets(db, client):
    schemas = _document(client)["components"]["schemas"]

    write = schemas["DestinationWriteRequest"]["properties"]
    assert {"config", "timeout", "provider_config", "timeout_ms", "template", "signing_config"} <= set(write)
    assert write["retry_max_attempts"]["minimum"] == 1 and write["retry_max_attempts"]["maximum"] == 10
    assert "delivery_count" in schemas["Destination"]["properties"]


def test_it_never_publishes_the_code_docstrings(db, client):
    document = _document(client)

    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method not in HTTP_METHODS:
                continue
            description = operation.get("description", "")
            # Docstrings use reST literals and speak of querysets and perform_create.
            for marker in ("``", "queryset", "perform_", "request.organization", ":func:", ":class:"):
                assert marker not in description, (method, path, marker)
    assert "an API key cannot list" in document["paths"]["/v1/auth/api-keys"]["get"]["description"]


def test_it_documents_ingest_with_the_body_types_senders_use(db, client):
    body = _document(client)["paths"]["/v1/ingest/{source_id}"]["post"]["requestBody"]["content"]

    assert {"application/json", "application/x-www-form-urlencoded", "application/octet-stream"} <= set(body)
    assert "*/*" not in body


def test_it_shares_headers_and_error_answers_as_components(db, client):
    document = _document(client)

    assert {"X-Request-Id", "RateLimit-Limit"} <= set(document["components"]["headers"])
    assert "Error404Limited" in document["components"]["responses"]
    destination = document["paths"]["/v1/destinations/{id}"]["get"]["responses"]
    assert destination["404"] == {"$ref": "#/components/responses/Error404Limited"}


def test_it_serves_swagger_ui_and_redoc_from_local_assets(db, client):
    for url in ("/v1/docs/", "/v1/redoc/"):
        page = client.get(url)
        assert page.status_code == 200
        html = page.content.decode()
        scripts = re.findall(r'<script[^>]+src="([^"]+)"', html)
        assert scripts, url
        for src in scripts:
            # Pinned assets of drf-spectacular-sidecar, served by this process: no CDN.
            assert src.startswith("/static/drf_spectacular_sidecar/"), (url, src)
            asset = client.get(src)
            assert asset.status_code == 200, src
            assert b"".join(asset.streaming_content if asset.streaming else [asset.content])
