"""Login sessions that can be ended.

Flask-Login keeps the string in ``session["_user_id"]`` and signs the same string into the
remember-me cookie. Ours is "<user id>:<session version>:<login time>:<nonce>": bumping the
user's session_version (logout, password change) ends every session and remember-me cookie
at once, the login time ends them all after REMEMBER_COOKIE_DURATION whatever the
browser does with the cookie, and the nonce makes each login's cookie different.
"""

from __future__ import annotations

import secrets
import time

from flask import current_app, request, session
from flask_login import login_user, logout_user

from portal.extensions import db
from portal.models import User


def session_id(user: User) -> str:
    return f"{user.id}:{user.session_version}:{int(time.time())}:{secrets.token_urlsafe(6)}"


def start(user: User, remember: bool) -> None:
    login_user(user, remember=remember)
    session["_user_id"] = session_id(user)


def end_everywhere(user: User) -> None:
    """End every session and remember-me cookie of the user, this one included. The caller
    commits."""
    user.session_version = User.session_version + 1
    db.session.flush()
    logout_user()


def restart_here(user: User) -> None:
    """After a password change: every other session ends, this one goes on (remembered if
    it was). The caller commits."""
    remembered = current_app.config.get("REMEMBER_COOKIE_NAME", "remember_token") in request.cookies
    end_everywhere(user)
    start(user, remember=remembered)


def user_for_session(value: str) -> User | None:
    """The user a session or remember-me cookie names, while it is still valid."""
    parts = value.split(":")
    if len(parts) != 4 or not all(part.isdigit() for part in parts[:3]):
        return None  # older formats, including a bare "<id>"
    user_id, version, logged_in_at = (int(part) for part in parts[:3])
    max_age = current_app.config["REMEMBER_COOKIE_DURATION"].total_seconds()
    if time.time() - logged_in_at > max_age:
        return None
    user = db.session.get(User, user_id)
    if user is None or not user.is_active or user.session_version != version:
        return None
    return user
