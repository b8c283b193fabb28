"""Log in, log out, and switch organization."""

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpResponseNotAllowed
from django.shortcuts import redirect
from django.urls import reverse

from console.base import memberships_of, safe_next
from hookstream.api.authentication import SESSION_ORG_KEY


class LoginView(auth_views.LoginView):
    template_name = "console/login.html"
    redirect_authenticated_user = True


class LogoutView(auth_views.LogoutView):
    next_page = "console:login"


@login_required
def organization_switch(request):
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    wanted = request.POST.get("organization_id", "")
    membership = memberships_of(request.user).filter(organization_id=wanted).first()
    if membership is None:
        messages.error(request, "You are not a member of that organization.")
    else:
        request.session[SESSION_ORG_KEY] = membership.organization_id
        messages.success(request, f"Switched to {membership.organization.name}.")
    return redirect(safe_next(request, reverse("console:dashboard")))
