"""Internal codes in plain words, in the reader's language: audit verbs and record names.

Codes ("record.approve", "posting.done", "quickbooks.purchase") stay in the database and the
API; a person reads these words instead (pages, exports). docs/i18n.md lists where they show.
"""

from __future__ import annotations

from django.utils.html import conditional_escape, format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext_lazy as _

from connectors.qonto.models import PostingState
from connectors.quickbooks.models import RecordState
from connectors.words import entity_words, record_name
from matching.models import Band

VERB_WORDS = {
    "records.pulled": _("Pulled from QuickBooks"),
    "record.proposed": _("Match proposed"),
    "record.in_review": _("Sent to review"),
    "record.auto_approved": _("Approved automatically"),
    "record.refused": _("Refused (confidence too low)"),
    "record.approve": _("Approved"),
    "record.approved": _("Approved"),
    "record.reject": _("Rejected"),
    "record.rejected": _("Rejected"),
    "record.pin": _("Pinned to another Qonto entry"),
    "record.upload_as_new": _("Uploaded as a new supplier invoice"),
    "record.override": _("Decision overridden"),
    "record.edit": _("Fields corrected"),
    "record.posting": _("Being posted to Qonto"),
    "record.posted": _("Posted to Qonto"),
    "record.failed": _("Posting to Qonto failed"),
    "record.pulled": _("Pulled from QuickBooks"),
    "record.updated": _("Changed in QuickBooks"),
    "record.deleted": _("Deleted in QuickBooks"),
    "record.files_stored": _("Attachments stored"),
    "record.file_refused": _("Attachment refused"),
    "record.attachment_after_posting": _("Attachment added after posting"),
    "posting.enqueued": _("Posting queued"),
    "posting.claimed": _("Posting started"),
    "posting.done": _("Posted to Qonto"),
    "posting.failed": _("Posting failed"),
    "posting.unknown": _("Posting outcome unknown"),
    "posting.retried": _("Posting retried"),
    "posting.withdrawn": _("Posting withdrawn"),
    "connection.connected": _("Connection made"),
    "connection.disconnected": _("Connection removed"),
    "connection.needs_reconnect": _("Connection needs reconnecting"),
    "connection.reconnected": _("Connection restored"),
    "connection.token_refreshed": _("Connection access renewed"),
    "connection.sync_requested": _("Sync asked for"),
    "connection.sync_refused": _("Sync refused"),
    "connection.started_over": _("Connection started over"),
    "connection.reimport_requested": _("Re-import asked for"),
    "connection.organization_changed": _("Qonto organisation changed"),
    "workspace.created": _("Workspace created"),
    "workspace.deleted": _("Workspace deleted"),
    "workspace.thresholds_changed": _("Thresholds changed"),
    "vendor_rule.set": _("Vendor rule saved"),
    "vendor_rule.deleted": _("Vendor rule removed"),
    "membership.added": _("Member added"),
    "membership.role_changed": _("Member's role changed"),
    "api_key.created": _("API key created"),
    "api_key.revoked": _("API key revoked"),
    "webhook.created": _("Webhook created"),
    "webhook.updated": _("Webhook changed"),
    "webhook.deleted": _("Webhook removed"),
    "onboarding.started": _("Setup started"),
    "onboarding.mapping_confirmed": _("Account pairing confirmed"),
    "onboarding.first_sync_started": _("First sync started"),
    "onboarding.bank_mapping_reset": _("Account pairing reset"),
    "matching.model_fitted": _("Matching model refreshed"),
    "sync.abandoned": _("Sync abandoned"),
    "payment.context": _("Payment: for reconciliation only"),
    "payment.settled": _("Payment of a posted bill"),
    "record.needs_review": _("Needs review"),
    "workspace.locale_changed": _("Language and time zone changed"),
}

ACTOR_TYPE_WORDS = {
    "user": _("person"),
    "system": _("Well"),
    "api_key": _("API key"),
    "api": _("API key"),
    "webhook": _("webhook"),
}


def verb_words(verb: str) -> str:
    """An audit verb as a person reads it; an unknown verb in words, never with dots."""
    if verb in VERB_WORDS:
        return str(VERB_WORDS[verb])
    return verb.replace(".", " ").replace("_", " ").strip().capitalize()


FAMILY_WORDS = {
    "record.": _("Every record event"),
    "records.": _("Records pulled"),
    "posting.": _("Every posting to Qonto"),
    "connection.": _("Every connection event"),
    "workspace.": _("Every workspace change"),
    "membership.": _("Every member change"),
    "api_key.": _("Every API key event"),
    "webhook.": _("Every webhook event"),
    "vendor_rule.": _("Every vendor rule change"),
    "onboarding.": _("Every setup step"),
    "matching.": _("Every matching model refresh"),
    "sync.": _("Every sync event"),
    "payment.": _("Every payment event"),
}


def verb_family_words(verb: str) -> str:
    if verb.endswith("."):
        return str(FAMILY_WORDS.get(verb, verb.rstrip(".").replace("_", " ").capitalize()))
    return verb_words(verb)


def actor_type_words(actor_type: str) -> str:
    return str(ACTOR_TYPE_WORDS.get(actor_type, actor_type))


def state_words(state: str | None) -> str:
    """A record's or a posting's state as its label ("in_review" -> "In review")."""
    if not state:
        return "—"
    for choices in (RecordState, PostingState):
        try:
            return str(choices(state).label)
        except ValueError:
            continue
    return str(state).replace("_", " ")


def band_words(band: str) -> str:
    try:
        return str(Band(band).label).lower()
    except ValueError:
        return str(band).replace("_", " ")


__all__ = ["entity_words", "record_name"]


def isolated(message: str, **values: object) -> SafeString:
    """A translated message with what people typed (record numbers, vendor names, e-mails) each
    in a <bdi>, so that a right-to-left name does not reorder the sentence around it; the
    message and every value are escaped. Numbers are left as they are (for %(n)d)."""
    return mark_safe(  # noqa: S308 - the message is escaped, and each value by format_html
        conditional_escape(message)
        % {
            key: value if isinstance(value, int) else format_html("<bdi>{}</bdi>", value)
            for key, value in values.items()
        }
    )
