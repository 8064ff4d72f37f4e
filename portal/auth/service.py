"""Accounts: creation, logins, passwords (API tokens: portal.auth.tokens)."""

from __future__ import annotations

from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from portal import text
from portal.auth import throttle
from portal.auth.passwords import password_problem
from portal.extensions import db
from portal.i18n import _, _l
from portal.models import Maintainer, Tenant, TenantAdmin, User

# A hash to compare against when the user does not exist, so that a wrong username takes
# as long as a wrong password and does not reveal which accounts exist.
_DUMMY_HASH = generate_password_hash("not-a-real-password")
# One answer for every refused login: it never tells which accounts exist.
LOGIN_REFUSED = _l("Wrong username or password, or the account is disabled.")
LOCKED = {"user": "account", "addr": "address"}


class AccountError(ValueError):
    """A request about accounts that cannot be carried out; the message says why."""


def hash_password(password: str) -> str:
    # scrypt: memory-hard, Werkzeug's default since 3.0.
    return generate_password_hash(password, method="scrypt")


class LoginRefused(AccountError):
    """A login that did not succeed; ``retry_after`` is set (seconds) while the account or
    the address is locked."""

    def __init__(self, message: str, retry_after: int = 0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def log_in(username: str, password: str, address: str | None) -> User:
    """The active user with these credentials, or LoginRefused. While the account or the
    address is locked the password is not even checked. Failures count towards the locks;
    logins, failures and locks are audited. The caller commits, also after a refusal."""
    from portal.audit.service import record

    username = username.strip()
    wait = throttle.seconds_left(username, address)
    if wait:
        raise LoginRefused(_("Wrong username or password, or the account is disabled. Try "
                             "again in %(num)s s.", num=wait), retry_after=wait)
    user = db.session.scalar(select(User).where(User.username == username))
    if user is None:
        check_password_hash(_DUMMY_HASH, password)
        reason = "unknown user"
    elif not check_password_hash(user.password_hash, password):
        reason = "wrong password"
    elif not user.is_active:
        reason = "account disabled"
    else:
        throttle.record_success(username)
        record("login", "user", user.id, user.username, {"from": address}, user=user)
        return user
    user_id = user.id if user is not None else None
    events = [record("login_failed", "user", user_id, username,
                     {"from": address, "reason": reason})]
    locks = throttle.record_failure(username, address)
    if locks:
        locked = {f"{LOCKED[kind]}_locked_for": f"{s} s" for kind, s in locks.items()}
        events.append(record("lockout", "user", user_id, username, {"from": address, **locked}))
    for event in events:
        event.username = "anonymous"  # whoever typed, not the account's owner
    if locks:
        wait = max(locks.values())
        raise LoginRefused(_("Wrong username or password, or the account is disabled. Try "
                             "again in %(num)s s.", num=wait), retry_after=wait)
    raise LoginRefused(str(LOGIN_REFUSED))


def set_password(user: User, password: str) -> None:
    """A password the user chose: it must pass the policy."""
    problem = password_problem(password, user.username)
    if problem:
        raise AccountError(problem)
    user.password_hash = hash_password(password)


def change_password(user: User, current: str, new: str) -> None:
    """The user's own change: the current password first. Every other session of the user
    ends (the caller restarts this one and commits)."""
    from portal.audit.service import record

    if not check_password_hash(user.password_hash, current):
        raise AccountError(_("The current password is wrong."))
    if new == current:
        raise AccountError(_("The new password is the current one."))
    set_password(user, new)
    record("update", "user", user.id, user.username, {"password": "changed"}, user=user)


def create_user(
    username: str,
    password: str,
    *,
    display_name: str = "",
    operator: bool = False,
    tenants: tuple[str, ...] = (),
    maintainer_account: str | None = None,
    check_password: bool = True,
) -> User:
    """A new account. ``check_password=False`` is for the demo seed only, whose passwords
    are published anyway; every password a person chooses passes the policy."""
    username = text.clean(username)
    if hidden := text.name_problem(username, _("The username")):
        raise AccountError(hidden)
    if not username or len(username) > 64:
        raise AccountError(_("A username is 1 to 64 characters."))
    problem = password_problem(password, username) if check_password else None
    if problem:
        raise AccountError(problem)
    if db.session.scalar(select(User.id).where(User.username == username)) is not None:
        raise AccountError(_("User %(name)s already exists.", name=repr(username)))
    user = User(
        username=username,
        password_hash=hash_password(password),
        display_name=display_name or username,
        is_operator=operator,
    )
    for name in tenants:
        tenant = db.session.scalar(select(Tenant).where(Tenant.name == name))
        if tenant is None:
            raise AccountError(_("No tenant named %(name)s.", name=repr(name)))
        user.tenant_links.append(TenantAdmin(tenant=tenant))
    if maintainer_account:
        maintainer = db.session.scalar(
            select(Maintainer).where(Maintainer.account == maintainer_account)
        )
        if maintainer is None:
            raise AccountError(_("No maintainer with account %(name)s.",
                                 name=repr(maintainer_account)))
        if maintainer.user_id is not None:
            raise AccountError(_("Maintainer %(name)s is already linked to a user.",
                                 name=repr(maintainer_account)))
        maintainer.user = user
    db.session.add(user)
    db.session.flush()
    from portal.audit.service import record

    # Role codes, not sentences: the trail is read in the reader's language
    # (portal.audit.presenter turns "tenant_admin:acme" into "Tenant admin · acme").
    roles = ["operator"] * operator + [f"tenant_admin:{t}" for t in tenants]
    roles += [f"maintainer:{maintainer_account}"] * bool(maintainer_account)
    record("create", "user", user.id, user.username, {"roles": {"from": None, "to": roles}})
    return user
