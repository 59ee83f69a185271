"""Event kinds recorded by the internal CA."""

from powernode.event_kinds import declare

CERTIFICATE_ISSUED = declare("system.pki.certificate.issued", "The internal CA signed a certificate.")
CERTIFICATE_REVOKED = declare("system.pki.certificate.revoked", "A certificate was revoked.")
