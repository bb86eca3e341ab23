"""``query-harness doctor``: the seed's troubleshooting list (故障排除) as read-only AWS questions.

``model`` the findings; ``readonly`` the botocore hook that refuses any mutating call; ``context``
the clients on the local endpoint or a real account; ``policy`` IAM policy evaluation and
``needs`` what each component must be allowed (one source, shared with the acceptance check);
``service_checks``, ``routing_checks``, ``sync_checks``, ``account_checks`` the checks; ``runner``
runs them; ``render`` prints them. May import ``stack`` (infra, state) and boto3; never moto, the
servers in ``ingress``, or ``cli``.
"""
