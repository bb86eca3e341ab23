"""The whole stack: backends, provisioning from ``infra/``, start-up order, state and the seed.

``stack`` brings it up and down; ``backends`` where AWS comes from (embedded, LocalStack, a URL);
``infra`` and ``terraform`` read ``infra/``; ``provision`` creates it through boto3; ``state`` the
``.harness/state.json`` file; ``commands`` the seed and ``wait_for_sync``. May import every part
but ``cli``; never moto directly (the embedded endpoint is a separate process).
"""
