"""Django for the tests: settings, and Django's own test modules for the seams lapse plugs
into (sessions, cache), taken from Django's source distribution on PyPI.

Django's wheel has no tests; its sdist has them. They are downloaded once (the version
installed), kept in ``.cache/`` (not committed: they are Django's code) and imported from
there, so that lapse's backends run Django's own tests, unchanged. If the download fails,
the tests that need them fail, loudly.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import tempfile

from pathlib import Path

import django

from django.conf import settings


ROOT = Path(__file__).parent.parent.parent
SUITES = ("sessions_tests", "cache")


def django_tests() -> Path:
    """The ``tests/`` directory of Django's sdist, for the installed version."""
    version = django.__version__
    target = ROOT / ".cache" / f"django-{version}-tests"
    if all((target / suite / "tests.py").exists() for suite in SUITES):
        return target
    with tempfile.TemporaryDirectory() as scratch:
        subprocess.run(  # noqa: S603 -- pip, from this interpreter
            [
                sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                "--no-binary", ":all:", "--disable-pip-version-check",
                "-d", scratch, f"django=={version}",
            ],
            check=True,
        )  # fmt: skip
        archive = next(Path(scratch).glob("*.tar.gz"))
        with tarfile.open(archive) as tar:
            for suite in SUITES:
                prefix = f"{archive.name.removesuffix('.tar.gz')}/tests/{suite}/"
                for member in tar.getmembers():
                    if member.name.startswith(prefix) and member.isfile():
                        data = tar.extractfile(member)
                        assert data is not None
                        path = target / suite / member.name[len(prefix) :]
                        path.parent.mkdir(parents=True, exist_ok=True)
                        path.write_bytes(data.read())
    return target


def configure() -> Path:
    """Configure Django once for the whole test run; return Django's tests directory."""
    tests = django_tests()
    if str(tests) not in sys.path:
        sys.path.insert(0, str(tests))
    if not settings.configured:
        settings.configure(
            SECRET_KEY="lapse-tests",  # noqa: S106
            INSTALLED_APPS=[
                "django.contrib.contenttypes",
                "django.contrib.auth",
                "django.contrib.sessions",
                "sessions_tests",
                "cache",
            ],
            DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
            SESSION_ENGINE="lapse.django.sessions",
            LAPSE_SESSIONS={"store": "memory://"},
            CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}},
            USE_TZ=True,
            ROOT_URLCONF=[],
            MIDDLEWARE=[],
            DEFAULT_AUTO_FIELD="django.db.models.AutoField",
        )
        django.setup()
        from django.test.utils import (  # noqa: PLC0415 -- after setup()
            setup_databases,
            setup_test_environment,
        )

        setup_test_environment()  # as Django's test runner: ALLOWED_HOSTS, email...
        setup_databases(verbosity=0, interactive=False)  # in-memory SQLite
    return tests
