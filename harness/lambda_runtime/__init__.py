"""The Lambda runtime: functions' handlers run in warm worker processes with AWS's Invoke semantics.

``api`` the Lambda HTTP API (control plane and Invoke) served by the endpoint; ``runtime`` pools,
concurrency and the Event queue; ``environment`` one worker process; ``worker`` the script that
runs inside the function's interpreter (standard library only); ``config`` what a function is.
May import ``aws.moto_app`` (request and response types) and moto (``api`` only); never
``streams``, ``ingress``, ``stack`` or ``cli``.
"""
