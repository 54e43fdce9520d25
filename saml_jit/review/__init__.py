"""Review and evidence: who has what and why, review campaigns, reports, the dashboard, exports.

* :mod:`.rules` — pure: which events need review, what a campaign covers;
* :mod:`.access` — the access snapshot: per account, its identities, state,
  groups and privileges with their source and dates;
* :mod:`.campaigns` — opening, deciding, applying and closing reviews;
* :mod:`.reports` — orphaned accounts, duplicate records, review debt, ways around SSO;
* :mod:`.dashboard`, :mod:`.charts` — the figures and their SVG charts;
* :mod:`.exports` — streamed CSV and JSON lines for auditors and SIEMs.

The admin pages live in :mod:`saml_jit.admin`; nothing here renders HTML
except the charts.
"""
