"""The maintainer and maintainer group lists: what the pages and the API run."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import aliased, joinedload, selectinload

from portal.i18n import _, _l
from portal.models import (
    MAINTAINER_STATUSES,
    Maintainer,
    MaintainerGroup,
    MaintainerToMaintainerGroup,
)
from portal.vms.labels import labelled_choices
from portal.web.listing import Column, Filter, Listing

maintainers = Listing(
    name="maintainers",
    statement=lambda: select(Maintainer),
    columns=[
        Column("name", _l("Name"), Maintainer.name),
        Column("account", _l("Account"), Maintainer.account),
        Column("email", _l("Email"), Maintainer.email),
        Column("phone", _l("Phone"), Maintainer.phone),
        Column("status", _l("Status"), Maintainer.status),
    ],
    search=[Maintainer.name, Maintainer.account, Maintainer.email],
    filters=[
        Filter(
            "status",
            _l("Status"),
            lambda s, v: s.where(Maintainer.status == v),
            labelled_choices("switched", MAINTAINER_STATUSES),
        ),
    ],
)

Manager = aliased(Maintainer, name="manager")
# Members per group, for sorting (the page shows len(memberships), loaded in one query).
MEMBER_COUNT = (
    select(func.count(MaintainerToMaintainerGroup.id))
    .where(MaintainerToMaintainerGroup.group_id == MaintainerGroup.id)
    .correlate(MaintainerGroup)
    .scalar_subquery()
)

groups = Listing(
    name="maintainer-groups",
    statement=lambda: (
        select(MaintainerGroup)
        .outerjoin(Manager, MaintainerGroup.manager_id == Manager.id)
        .options(joinedload(MaintainerGroup.manager), selectinload(MaintainerGroup.memberships))
    ),
    columns=[
        Column("name", _l("Group"), MaintainerGroup.name),
        Column("manager", _l("Manager"), Manager.name,
               value=lambda g: g.manager.name if g.manager else ""),
        Column("members", _l("Members"), MEMBER_COUNT, value=lambda g: len(g.memberships),
               numeric=True),
        Column("description", _l("Description"), None),
    ],
    search=[MaintainerGroup.name, MaintainerGroup.description],
    filters=[
        Filter(
            "managed",
            _l("Manager"),
            lambda s, v: s.where(MaintainerGroup.manager_id.is_not(None) if v == "yes"
                                 else MaintainerGroup.manager_id.is_(None)),
            lambda: [("yes", _("With a manager")), ("no", _("Without a manager"))],
        ),
    ],
)
