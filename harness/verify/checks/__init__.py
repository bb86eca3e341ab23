"""The checks of the acceptance items, one module per concern: ``contract`` (1), ``data`` (2, 3),
``health`` (4), ``performance`` (5), ``availability`` (6, 7), ``security`` (8), ``iam`` (9),
``logs`` (10). Each check takes the target and the options and returns an ItemResult.
"""
