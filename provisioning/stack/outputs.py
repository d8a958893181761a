"""What a deployed stack tells its users (printed by ``up --json``)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class StackOutputs:
    endpoint_url: str | None
    region: str
    production_bucket: str
    backup_bucket: str
    topic_arn: str
    function_name: str
    log_group: str
    dead_letter_queue_url: str
    stack_prefix: str
    function_arn: str
    dead_letter_queue_arn: str
    sweep_function_name: str = ""
    sweep_log_group: str = ""

    def to_dict(self) -> dict[str, str | None]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, str | None]) -> StackOutputs:
        return cls(**data)  # type: ignore[arg-type]
