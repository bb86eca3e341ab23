"""What the stream processor reported about the read side, read back for operators.

``collisions`` reads the read-key collisions (docs/decisions/0001-read-key-collisions.md) from the
stream processor's log group (its log lines and ``ReadKeyCollisions`` EMF metric) and the
mapping's on-failure queue, through boto3 clients it is given: for the CLI, the acceptance report
and the troubleshooting command. May import boto3/botocore only: no moto, no HTTP servers, no
other part of the harness.
"""

from __future__ import annotations

from harness.readside.collisions import CollisionLine, CollisionReport, read_collisions

__all__ = ["CollisionLine", "CollisionReport", "read_collisions"]
