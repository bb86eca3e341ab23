"""The embedded AWS endpoint: one port, moto's server in-process, hardened, plus our Lambda and
event-source-mapping APIs.

``endpoint`` routes requests; ``moto_app`` runs moto's WSGI app; ``patches``, ``responses`` and
``partition_index`` fix moto's measured defects (pinned to one moto version); ``warmup`` pays
moto's start-up costs once. The only package that imports moto (with ``lambda_runtime.api``, which
keeps function metadata in moto). May import ``lambda_runtime``, ``streams`` and
``ingress.servers``; never ``stack``, ``cli`` or ``contracts``.
"""
