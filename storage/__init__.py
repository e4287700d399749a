"""Persistence: Piccolo tables and migrations, the organisation, the audit trail.

Importing this package points Piccolo at `storage.piccolo_conf` unless `PICCOLO_CONF` says
otherwise; the engine is built from `FORMFLOW_DATABASE_URL` on first use.
"""

import os

os.environ.setdefault("PICCOLO_CONF", "storage.piccolo_conf")
