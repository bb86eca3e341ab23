"""Event source mappings: DynamoDB Streams -> Lambda with AWS's batching, retry, bisect,
partial-batch and on-failure semantics.

``mappings`` the mapping API and its pollers' lifecycle; ``validation`` AWS's parameter rules;
``types`` wire shapes; ``poller`` one shard reader with checkpoints; ``batch`` one batch's
retries. Reaches AWS only through boto3 clients; never imports moto, HTTP servers, ``ingress``,
``stack`` or ``cli``.
"""
