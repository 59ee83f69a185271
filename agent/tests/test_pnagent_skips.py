"""The real tests' gate: skipped with a reason when not root or tools are missing, failed under CI=true."""

from __future__ import annotations

import pytest
from pnagent_fakes import require_root_tools


def test_not_root_skips_with_a_reason(monkeypatch) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="needs root"):
        require_root_tools("ip")


def test_missing_tool_fails_under_ci(monkeypatch) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 0)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true and missing tools: no-such-tool-pnagt"):
        require_root_tools("ip", "no-such-tool-pnagt")
