"""``query-harness verify``: the seed's ten acceptance items (驗收標準), checked with evidence.

``model`` the item, status and evidence; ``checklist`` the ten items in the seed's words;
``target`` what is checked (a running local stack, one started for the run, or a deployed stage);
``runner`` runs the checks; ``report`` writes index.html, acceptance.json and junit.xml;
``charts`` the pictures (matplotlib SVG); ``load`` drives locust (``locustfile``) in its own
process; ``checks/`` one module per group of items. May import every part but ``cli``.
"""

from harness.verify.model import Evidence, ItemResult, Status

__all__ = ["Evidence", "ItemResult", "Status"]
