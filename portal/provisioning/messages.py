"""The portal's own sentences in a VM's status message and a job's result message.

Both columns are data: the API returns them as stored (its consumers read them, like a
`code`), and most of what they hold is an agent's driver's own text. So the portal stores
its sentences in English, and a page words them in the reader's language with
:func:`in_words` (the Jinja filter ``vm_message``) — the way the audit trail reads its
older English events again (portal/audit/presenter.py).

Each sentence is defined once, here: its message id is both what jobs.py stores (filled in
English) and what the catalog translates, and the pattern that recognises a stored text is
made from it, so the writing and the reading cannot drift. What fills a ``%(…)s`` — the
driver's own message, a server's name — is data, shown verbatim. Rewording a sentence
leaves the rows stored with the old words in English: keep the old one beside it then.
"""

from __future__ import annotations

import re

from flask import Flask

from portal.i18n import _


def N_(message: str) -> str:  # noqa: N802 - the catalog's marker for deferred translation
    return message


class Sentence:
    """One sentence the portal stores, with its named parts (``%(name)s``)."""

    def __init__(self, message_id: str) -> None:
        self.message_id = message_id
        parts = re.split(r"%\((\w+)\)s", message_id)
        # re.split keeps the names: text, name, text, name, … text.
        self.pattern = re.compile("".join(
            f"(?P<{part}>.*)" if i % 2 else re.escape(part) for i, part in enumerate(parts)
        ), re.DOTALL)

    def __call__(self, **parts: str) -> str:
        """The sentence as stored: in English, whatever the reader's language."""
        return self.message_id % parts if parts else self.message_id

    def parts(self, stored: str) -> dict[str, str] | None:
        """What fills the sentence in ``stored``, or None if ``stored`` is not this one."""
        match = self.pattern.fullmatch(stored)
        return None if match is None else match.groupdict()


# A VM's status message.
DELETED_BEFORE_BUILT = Sentence(N_("Deleted before it was built"))
DELETING_ONCE_BUILT = Sentence(N_("Deleting once the agent finishes building it"))
MIGRATING_TO = Sentence(N_("Migrating to %(server)s"))
PROVISIONING_FAILED = Sentence(N_("provisioning failed"))
CREATE_FAILED_BEFORE_DELETE = Sentence(N_("Create failed before the delete: %(message)s"))
DELETE_FAILED = Sentence(N_("Delete failed"))
DELETE_FAILED_BECAUSE = Sentence(N_("Delete failed: %(message)s"))
MIGRATION_FAILED = Sentence(N_("Migration failed: %(message)s"))
# A job's result message.
CANCELLED_VM_DELETED = Sentence(N_("cancelled: the VM was deleted"))

SENTENCES = (
    DELETED_BEFORE_BUILT, DELETING_ONCE_BUILT, MIGRATING_TO, PROVISIONING_FAILED,
    CREATE_FAILED_BEFORE_DELETE, DELETE_FAILED, DELETE_FAILED_BECAUSE, MIGRATION_FAILED,
    CANCELLED_VM_DELETED,
)


def recognise(stored: str) -> tuple[Sentence, dict[str, str]] | None:
    """The portal's sentence ``stored`` is, with what fills it; None for a driver's text."""
    for sentence in SENTENCES:
        parts = sentence.parts(stored)
        if parts is not None:
            return sentence, parts
    return None


def in_words(stored: str | None) -> str:
    """A stored status or result message as the reader reads it: the portal's sentences
    in the reader's language, anything else (a driver's text) as it is."""
    if not stored:
        return ""
    found = recognise(stored)
    if found is None:
        return stored
    sentence, parts = found
    return _(sentence.message_id, **parts)


def init_messages(app: Flask) -> None:
    app.add_template_filter(in_words, "vm_message")
