from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularRedocView, SpectacularSwaggerView

from hookstream import bench_views

urlpatterns = [
    *bench_views.urlpatterns,  # empty unless HOOKSTREAM_BENCH_NOOP is on
    # First, and ingest first in it: Django tries the patterns in order, ingest is the
    # hottest route, and the apps' routers hold dozens of patterns. (Before deliveries'
    # routes, whose events/<id>/retry intake's anchored routes leave alone.)
    path("v1/", include("intake.urls")),
    # JSON, as the name says (the generic view would answer YAML by default).
    path("v1/openapi.json", SpectacularJSONAPIView.as_view(), name="openapi"),
    path("v1/docs/", SpectacularSwaggerView.as_view(url_name="openapi"), name="api-docs"),
    path("v1/redoc/", SpectacularRedocView.as_view(url_name="openapi"), name="api-redoc"),
    path("", include("monitoring.urls")),  # /healthz, /readyz, /metrics, /v1/issues, /v1/alert-rules…
    path("v1/", include("hookstream.api.urls")),
    path("v1/", include("destinations.urls")),
    path("v1/", include("deliveries.urls")),
    path("admin/", admin.site.urls),
    path("", include("console.urls")),
]

handler400 = "hookstream.api.exceptions.handler400"
handler403 = "hookstream.api.exceptions.handler403"
handler404 = "hookstream.api.exceptions.handler404"
handler500 = "hookstream.api.exceptions.handler500"
