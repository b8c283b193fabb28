def test_it_answers_401_without_a_key(db, client):
    response = client.get("/v1/destinations")
    assert response.status_code in (401, 404)
    assert response["X-Request-Id"].startswith("req_")


def test_it_answers_404_with_the_error_body_for_unknown_paths(db, client):
    response = client.get("/v1/no-such-thing")
    assert response.status_code == 404
    body = response.json()
    assert body["status"] == 404
    assert body["request_id"] == response["X-Request-Id"]
