"""What each component of the stack must be allowed to do, derived from ``infra/`` (one source).

The doctor's permission check reads this (and the acceptance report's least-privilege item can):
an action missing from a role breaks the component. The table a function reads or writes is the
one its ``NOTIFICATION_TABLE_NAME`` environment names, as the Lambdas' code does.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.stack.infra import FunctionSpec, Infra

__all__ = ["Need", "component_roles", "needs"]

TABLE_VARIABLE = "NOTIFICATION_TABLE_NAME"


@dataclass(frozen=True)
class Need:
    role: str
    action: str
    resource: str
    why: str


def component_roles(infra: Infra) -> dict[str, str]:
    """Component -> the name of the role it runs as."""
    roles = {f"Lambda {f.name}": f.role_name for f in infra.functions}
    task = infra.task_definition
    for key, component in (("taskRoleArn", "ECS task"), ("executionRoleArn", "ECS task execution")):
        if task.get(key):
            roles[component] = str(task[key]).rsplit("/", 1)[-1]
    return roles


def needs(infra: Infra, region: str, account: str, stream_arns: dict[str, str]) -> list[Need]:
    """Every (role, action, resource) the code, and AWS's services on its behalf, call.

    ``stream_arns`` maps a table name to its latest stream ARN as the account reports it.
    """
    scope = f"{region}:{account}"
    mapped = {m.function_name: m for m in infra.mappings}
    found: list[Need] = []
    for function in infra.functions:
        found += _logs(
            function.role_name, scope, f"/aws/lambda/{function.name}", "Lambda writes its logs"
        )
        table = function.environment.get(TABLE_VARIABLE)
        mapping = mapped.get(function.name)
        if mapping is not None:
            stream = stream_arns.get(mapping.source_table) or (
                f"arn:aws:dynamodb:{scope}:table/{mapping.source_table}/stream/latest"
            )
            why = f"its mapping reads {mapping.source_table}'s stream"
            found += [
                Need(function.role_name, f"dynamodb:{action}", stream, why)
                for action in ("DescribeStream", "GetRecords", "GetShardIterator", "ListStreams")
            ]
            if mapping.on_failure_queue:
                queue = f"arn:aws:sqs:{scope}:{mapping.on_failure_queue}"
                found.append(
                    Need(
                        function.role_name,
                        "sqs:SendMessage",
                        queue,
                        "discarded batches go to the on-failure queue",
                    )
                )
            if table:
                found += [
                    Need(
                        function.role_name,
                        f"dynamodb:{a}",
                        f"arn:aws:dynamodb:{scope}:table/{table}",
                        "it writes the read side",
                    )
                    for a in ("PutItem", "DeleteItem")
                ]
        elif table:
            found += _queries(function, scope, infra, table)
    roles = component_roles(infra)
    if "ECS task" in roles:
        found += [
            Need(
                roles["ECS task"],
                "lambda:InvokeFunction",
                f"arn:aws:lambda:{scope}:function:{f.name}",
                "the service invokes it",
            )
            for f in infra.functions
            if f.name not in mapped
        ]
    group = infra.container.get("logConfiguration", {}).get("options", {}).get("awslogs-group")
    if "ECS task execution" in roles and group:
        found += _logs(
            roles["ECS task execution"], scope, group, "the awslogs driver ships the task's output"
        )
    return found


def _logs(role: str, scope: str, group: str, why: str) -> list[Need]:
    stream = f"arn:aws:logs:{scope}:log-group:{group}:log-stream:any"
    return [
        Need(role, action, stream, why) for action in ("logs:CreateLogStream", "logs:PutLogEvents")
    ]


def _queries(function: FunctionSpec, scope: str, infra: Infra, table: str) -> list[Need]:
    table_arn = f"arn:aws:dynamodb:{scope}:table/{table}"
    found = [Need(function.role_name, "dynamodb:Query", table_arn, "user queries")]
    for index in infra.table(table).global_secondary_indexes:
        found.append(
            Need(
                function.role_name,
                "dynamodb:Query",
                f"{table_arn}/index/{index['name']}",
                "marketing and fail queries",
            )
        )
    return found
