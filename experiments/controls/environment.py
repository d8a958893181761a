"""Environment control: bring the pipeline up before the experiment and down after it.

With no ``endpoint_url`` in the configuration it starts the embedded emulator (or the one named
by ``emulator``), deploys a stack, seeds ``seed_objects`` objects and writes the stack outputs
into the configuration, where activities find them (``${production_bucket}`` and so on). With an
``endpoint_url`` it deploys onto that emulator; with the stack outputs already given it deploys
nothing. What it started, it stops in ``cleanup_control``.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from chaoslib.exceptions import InterruptExecution

from provisioning.emulators import Emulator, EndpointEmulator, create_emulator
from provisioning.faults.proxy import FaultProxy
from provisioning.pipeline import Pipeline
from provisioning.stack import StackNames

from .. import settings

__all__ = ["before_experiment_control", "cleanup_control"]

logger = logging.getLogger("chaostoolkit")
DEFAULT_SEED_OBJECTS = 1000

_started: dict[str, Any] = {}


def before_experiment_control(
    context: dict[str, Any],
    configuration: dict[str, Any] | None = None,
    secrets: dict[str, Any] | None = None,
    **kwargs: Any,
) -> None:
    if configuration is None:
        raise InterruptExecution("environment control: the experiment has no configuration block")
    try:
        _bring_up(configuration)
    except Exception as exc:
        # Chaos Toolkit only logs a failing control at debug level; interrupt loudly instead.
        logger.error(f"environment control could not bring the pipeline up: {exc}")
        cleanup_control()
        raise InterruptExecution(f"environment control: {exc}") from exc


def _bring_up(configuration: dict[str, Any]) -> None:
    if all(configuration.get(key) for key in settings.STACK_KEYS):
        settings.load(configuration).ensure_safe()
        logger.info(f"environment control: using the given stack {configuration['production_bucket']}")
        return
    emulator = _emulator(configuration)
    logger.info(f"environment control: starting the {emulator.name} emulator")
    emulator.start()
    _started["emulator"] = emulator
    prefix = str(configuration.get("stack_prefix") or f"chaos-{uuid.uuid4().hex[:8]}")
    objects = settings.positive_int(configuration, "seed_objects", DEFAULT_SEED_OBJECTS)
    function_endpoint = None
    if settings.truthy(configuration.get("fault_proxy")):
        # The healer's own AWS calls go through a fault proxy the experiment can drive.
        proxy = FaultProxy(str(emulator.target.endpoint_url)).start()
        _started["proxy"] = proxy
        function_endpoint = configuration["fault_proxy_url"] = proxy.url
    allowed = tuple(b.strip() for b in str(configuration.get("allowed_buckets") or "").split(",") if b.strip())
    pipeline = Pipeline.up(
        emulator.target,
        StackNames.from_prefix(prefix),
        runs_lambda=emulator.runs_lambda,
        objects=objects,
        allow_remote=settings.truthy(configuration.get("allow_remote")),
        allowed_buckets=list(allowed),
        function_endpoint_url=function_endpoint,
    )
    _started["pipeline"] = pipeline
    configuration.update({key: value for key, value in pipeline.outputs.to_dict().items() if value is not None})
    runner = "the local Lambda runtime" if pipeline.runtime else "the backend's Lambda"
    logger.info(
        f"environment control: stack {prefix} ready on {emulator.target.endpoint_url}, "
        f"{len(pipeline.seeded)} objects seeded, healer running in {runner}"
    )


def _emulator(configuration: dict[str, Any]) -> Emulator:
    endpoint_url = configuration.get("endpoint_url")
    name = str(configuration.get("emulator") or ("endpoint" if endpoint_url else "embedded"))
    emulator = create_emulator(name, region=configuration.get("region"))
    if isinstance(emulator, EndpointEmulator):
        if endpoint_url:
            emulator.with_endpoint_url(str(endpoint_url))
        emulator.with_allow_remote(settings.truthy(configuration.get("allow_remote")))
    return emulator


def cleanup_control() -> None:
    """Stop the runtime and remove the stack, then stop the emulator this control started."""
    pipeline: Pipeline | None = _started.pop("pipeline", None)
    emulator: Emulator | None = _started.pop("emulator", None)
    proxy: FaultProxy | None = _started.pop("proxy", None)
    try:
        if pipeline is not None:
            # An emulator this control started goes away whole; on a shared endpoint, clean up.
            pipeline.down(destroy=isinstance(emulator, EndpointEmulator))
    finally:
        if proxy is not None:
            proxy.stop()
        if emulator is not None:
            emulator.stop()
