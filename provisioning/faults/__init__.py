"""AWS API fault injection: a loopback proxy in front of the emulator, driven by rules.

Start ``FaultProxy(emulator.target.endpoint_url)``, point clients at ``proxy.url``, then e.g.
``proxy.add_rule(FaultRule("slowdown", service="s3", operation="PutObject", probability=0.2))``
makes one PutObject in five answer 503 SlowDown. ``FaultProxyClient`` does the same from
another process.
"""

from __future__ import annotations

from .proxy import CONTROL_PREFIX, FaultProxy, FaultProxyClient
from .rules import (
    ERROR_FAULTS,
    FAULTS,
    ErrorResponse,
    FaultRule,
    FaultRuleSet,
    RequestClassifier,
    RequestInfo,
    classify,
    error_response,
)

__all__ = [
    "CONTROL_PREFIX",
    "ERROR_FAULTS",
    "FAULTS",
    "ErrorResponse",
    "FaultProxy",
    "FaultProxyClient",
    "FaultRule",
    "FaultRuleSet",
    "RequestClassifier",
    "RequestInfo",
    "classify",
    "error_response",
]
