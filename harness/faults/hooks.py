"""The faults of one embedded endpoint, installed on its Lambda runtime and request path."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from harness.faults.dynamodb_faults import DynamoDBFaults
from harness.faults.lambda_faults import LambdaFaults
from harness.faults.pollers import MappingApi, restart_pollers
from harness.faults.registry import CONTROL_PATH, FaultRegistry

__all__ = ["CONTROL_PATH", "EndpointFaults"]


class _Runtime(Protocol):
    invoke_hook: Any

    def functions(self) -> list[str]: ...


@dataclass
class EndpointFaults:
    """The registry, its DynamoDB hook and its control API, for the endpoint to call."""

    registry: FaultRegistry
    dynamodb: DynamoDBFaults

    @classmethod
    def install(
        cls,
        runtime: _Runtime,
        mappings: MappingApi | None,
        tables: Callable[[], Mapping[str, Sequence[str]]],
    ) -> EndpointFaults:
        """Make a registry and set it as ``runtime``'s invoke hook."""
        registry = FaultRegistry(
            functions=runtime.functions,
            tables=tables,
            restart_pollers=(
                None if mappings is None else lambda function: restart_pollers(mappings, function)
            ),
        )
        runtime.invoke_hook = LambdaFaults(registry)
        return cls(registry, DynamoDBFaults(registry))

    def control(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        """Serve the control API: (HTTP status, JSON body)."""
        status, document = self.registry.handle(method, path, body)
        return status, json.dumps(document).encode()
