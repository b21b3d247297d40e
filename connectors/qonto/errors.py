"""Why Well posts nothing to Qonto for a record (or not yet): named errors with their reason."""

from __future__ import annotations


class NotPostable(ValueError):
    """This record means nothing to post in Qonto (or not yet); the message says why."""


class WaitingForPayment(NotPostable):
    """A purchase without a receipt is its bank transaction, and Qonto has none for it yet."""


class EntryTaken(NotPostable):
    """The Qonto entry is already another record's: a Qonto entry has at most one live link."""
