"""Event kinds recorded by the nodes app (templates and instances)."""

from powernode.event_kinds import declare

TEMPLATE_CREATED = declare("system.template.created", "A node template was created.")
INSTANCE_PROVISIONED = declare("system.instance.provisioned", "A node instance was provisioned (agent token issued).")
INSTANCE_ONLINE = declare("system.instance.online", "The instance's agent called in for the first time.")
INSTANCE_AGENT_TOKEN_ROTATED = declare("system.instance.agent_token_rotated", "The agent token was replaced.")
INSTANCE_DELETED = declare("system.instance.deleted", "The instance was deleted; its token stopped working.")
