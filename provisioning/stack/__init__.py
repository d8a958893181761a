"""The self-healing stack: names, policies, deploy and destroy."""

from __future__ import annotations

from .deploy import deploy_stack, destroy_stack
from .names import StackNames
from .outputs import StackOutputs

__all__ = ["StackNames", "StackOutputs", "deploy_stack", "destroy_stack"]
