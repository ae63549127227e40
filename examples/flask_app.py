"""A Flask app with server-side sessions from lapse: a counter, a login and a logout.

Run it with ``flask --app examples/flask_app.py run`` and open http://127.0.0.1:5000/.
Sessions live in a bounded MemoryStore; set LAPSE_REDIS_URL (``redis://host:port/0``) to
keep them in Redis instead, shared by every worker.
"""

from __future__ import annotations

import os

import flask

import lapse.flask

from lapse.redis import RedisStore
from lapse.sessions import SessionManager


def make_manager() -> SessionManager:
    url = os.environ.get("LAPSE_REDIS_URL")
    # The dev server speaks plain http on localhost: Secure cookies would never come back.
    if url:
        store = RedisStore(url, prefix="flask-example:")
        return SessionManager(store=store, secure=False, insecure_development=True)
    return SessionManager(secure=False, insecure_development=True)


app = flask.Flask(__name__)
app.session_interface = lapse.flask.SessionInterface(make_manager())


@app.get("/")
def index() -> dict[str, object]:
    flask.session["visits"] = flask.session.get("visits", 0) + 1
    return {"visits": flask.session["visits"], "user": flask.session.get("user")}


@app.post("/login")
def login() -> dict[str, object]:
    user = flask.request.form.get("user", "ann")
    session = lapse.flask.session_of(flask.session)
    session.login(user)  # a new session ID, tied to the user (session fixation is over)
    session["user"] = user
    return {"user": user}


@app.post("/logout")
def logout() -> dict[str, object]:
    lapse.flask.session_of(flask.session).clear()  # deleted on the server, cookie cleared
    return {"user": None}
