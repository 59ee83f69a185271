"""Event kinds recorded by the operator surface."""

from powernode.event_kinds import declare

OPERATOR_TOKENS_REVOKED = declare(
    "system.operator.tokens_revoked", "A user's operator tokens were revoked (the user was deactivated)."
)
