"""Contract gates: pure functions over the documents in ``contracts/`` and ``infra/``.

``diff`` the OpenAPI breaking-change check with declared changes; ``gates`` drift and rename
checks. Imports only ``stack.infra`` (for the project root); no servers, no AWS.
"""
