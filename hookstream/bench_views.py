"""A do-nothing endpoint for the ingest benchmark (``bench/ingest_throughput.py``).

``POST /bench/noop`` reads the body and answers 202 through the same middleware stack as
every other request, and nothing else: the benchmark's baseline for what the web server,
Django and the loopback network cost by themselves. The route exists only when
``HOOKSTREAM_BENCH_NOOP`` is on; it is never part of a production URL configuration.
"""

from django.conf import settings
from django.http import JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt


@csrf_exempt
def noop(request):
    body = request.body
    return JsonResponse({"received": len(body)}, status=202)


urlpatterns = [path("bench/noop", noop, name="bench-noop")] if settings.HOOKSTREAM_BENCH_NOOP else []
