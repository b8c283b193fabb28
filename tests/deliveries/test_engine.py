"""The delivery engine end to end: a real worker, Redis broker, PostgreSQL, real receivers."""

import pytest

from deliveries.engine import process_delivery
from deliveries.models import Delivery, DeliveryAttempt
from deliveries.services import deliveries_enqueue_on_commit
from tests.deliveries.receiver import wait_until
from tests.factories import make_delivery, make_destination, make_event


@pytest.mark.django_db
def test_it_delivers_synchronously_through_process_delivery(alice, receiver):
    destination = make_destination(alice.org, url=receiver.url)
    delivery = make_delivery(make_event(alice.org), destination)

    process_delivery(delivery.id)

    delivery.refresh_from_db()
    assert delivery.status == "succeeded", delivery.last_error
    assert delivery.attempt_count == 1
    attempt = DeliveryAttempt.objects.get(delivery=delivery)
    assert attempt.status == "success" and attempt.response_status == 200 and attempt.attempt_number == 1
    assert len(receiver.requests) == 1


def test_it_delivers_through_a_real_worker(alice, receiver, worker):
    destination = make_destination(alice.org, url=receiver.url)
    delivery = make_delivery(make_event(alice.org), destination)

    deliveries_enqueue_on_commit([delivery.id])

    receiver.wait_for(1)
    wait_until(lambda: Delivery.objects.get(pk=delivery.id).status == "succeeded", message="succeeded")
