"""A one-file Django project on lapse: sessions (SESSION_ENGINE = "lapse.django.sessions")
with django.contrib.auth, and the cache (lapse.django.cache.LapseCache).

Run it with ``python examples/django_app.py`` and open http://127.0.0.1:8000/; log in as
``ann`` / ``secret`` with ``curl -X POST -d user=ann -d password=secret``, or from the
page's console with ``fetch('/login', {method: 'POST', body: new URLSearchParams({user:
'ann', password: 'secret'})})``.
"""

from __future__ import annotations

import sys

from typing import Any

from django.contrib.auth import authenticate, login, logout
from django.core.cache import cache
from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from lapse.django.sessions import revoke_all


SETTINGS: dict[str, Any] = {
    "DEBUG": True,
    "SECRET_KEY": "example-only-never-in-production",
    "ALLOWED_HOSTS": ["127.0.0.1", "localhost", "testserver"],
    "ROOT_URLCONF": __name__,
    "INSTALLED_APPS": ["django.contrib.contenttypes", "django.contrib.auth"],
    "MIDDLEWARE": [
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
    ],
    "DATABASES": {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    "SESSION_ENGINE": "lapse.django.sessions",
    "LAPSE_SESSIONS": {"store": "memory://", "idle_timeout": 1800, "absolute_timeout": 8 * 3600},
    # The development server speaks plain http: a Secure cookie would never come back.
    "SESSION_COOKIE_SECURE": False,
    "CACHES": {"default": {"BACKEND": "lapse.django.cache.LapseCache", "LOCATION": "memory://"}},
    "USE_TZ": True,
}


def index(request: HttpRequest) -> JsonResponse:
    request.session["visits"] = request.session.get("visits", 0) + 1
    user = request.user.get_username() if request.user.is_authenticated else None
    return JsonResponse({"visits": request.session["visits"], "user": user})


@csrf_exempt  # an example API; a real form keeps Django's CSRF protection
def login_view(request: HttpRequest) -> JsonResponse:
    user = authenticate(
        request, username=request.POST.get("user"), password=request.POST.get("password")
    )
    if user is None:
        return JsonResponse({"error": "wrong user or password"}, status=403)
    login(request, user)  # a new session key, tied to the user; the data is kept
    return JsonResponse({"user": user.get_username()})


@csrf_exempt
def logout_view(request: HttpRequest) -> JsonResponse:
    logout(request)  # the session is deleted on the server
    return JsonResponse({"user": None})


@csrf_exempt
def everywhere_view(request: HttpRequest) -> JsonResponse:
    """Log out on every device: every session of this user ends now."""
    if not request.user.is_authenticated:
        return JsonResponse({"ended": 0})
    return JsonResponse({"ended": revoke_all(request.user.pk)})


def report(request: HttpRequest) -> JsonResponse:  # noqa: ARG001 -- a view's signature
    """A value computed once a minute, from the lapse cache."""
    return JsonResponse({"report": cache.get_or_set("report", lambda: "expensive", 60)})


urlpatterns = [
    path("", index),
    path("login", login_view),
    path("logout", logout_view),
    path("everywhere", everywhere_view),
    path("report", report),
]


def main() -> None:
    import django  # noqa: PLC0415

    from django.conf import settings  # noqa: PLC0415
    from django.core.management import call_command, execute_from_command_line  # noqa: PLC0415

    settings.configure(**SETTINGS)
    django.setup()
    call_command("migrate", verbosity=0, run_syncdb=True)
    from django.contrib.auth.models import User  # noqa: PLC0415

    User.objects.create_user("ann", password="secret")  # noqa: S106
    execute_from_command_line([sys.argv[0], "runserver", "--noreload", *sys.argv[1:]])


if __name__ == "__main__":
    main()
