"""The local harness of Query Service V3: the whole stack on one machine, with no Docker.

One package per part (see ARCHITECTURE.md for the import rules between them):
``aws`` the embedded AWS endpoint, ``lambda_runtime`` the Lambda runtime, ``streams`` the event
source mappings, ``ingress`` the gateway, load balancer and replicas, ``stack`` bringing it all up,
``contracts`` the contract gates, ``cli`` the ``query-harness`` command; ``pytest_plugin`` the
fixtures.
"""
