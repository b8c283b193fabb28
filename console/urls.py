"""The console (session-cookie web UI). Each area keeps its own URL module."""

from django.urls import include, path

from console.views import auth as views_auth

app_name = "console"

urlpatterns = [
    path("login/", views_auth.LoginView.as_view(), name="login"),
    path("logout/", views_auth.LogoutView.as_view(), name="logout"),
    path("organization/switch/", views_auth.organization_switch, name="organization-switch"),
    # Dashboard, destinations (with templates, circuit and dead letters).
    path("", include("console.urls_destinations")),
    # Events, sources, connections, topics and API keys.
    path("", include("console.urls_pages")),
]
