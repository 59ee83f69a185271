"""Event kinds recorded by the modules app for modules that produce no runtime.

A runtime module's assignment kinds (``<runtime prefix>.module.assigned``) are declared by its runtime.
"""

from powernode.event_kinds import declare

MODULE_ASSIGNED = declare("system.module.assigned", "A module without a runtime was assigned to a template.")
MODULE_UNASSIGNED = declare("system.module.unassigned", "A module without a runtime was unassigned.")


def assignment_kind(runtime: str, what: str) -> str:
    """``system.<runtime>.module.<what>`` for a runtime module, ``system.module.<what>`` otherwise."""
    return f"system.{runtime}.module.{what}" if runtime and runtime != "none" else f"system.module.{what}"


def _declare_runtime_assignment_kinds() -> None:
    # the catalog names its runtimes (Module.Runtime); each one's modules can be assigned and unassigned
    from apps.modules.models import Module

    for runtime in Module.Runtime.values:
        for what in ("assigned", "unassigned"):
            declare(assignment_kind(runtime, what))


_declare_runtime_assignment_kinds()
