"""A local Lambda runtime for backends that cannot execute Lambda (moto without Docker).

It runs the *deployed* function: the zip whose hash matches the function's CodeSha256, with
the handler, environment, timeout and on-failure destination the backend reports. Events
arrive as SNS HTTP deliveries and are handled with Lambda's asynchronous semantics.
"""

from __future__ import annotations

from .runtime import LocalLambdaRuntime, RuntimeStats

__all__ = ["LocalLambdaRuntime", "RuntimeStats"]
