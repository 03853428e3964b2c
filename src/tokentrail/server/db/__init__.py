"""The collector's storage. Importing the package registers every table on
`models.metadata` (feature modules such as `evaluation_models` add theirs to it), so
Alembic's environment and the schema comparison always see the whole schema."""

from tokentrail.server.db import budget_models as budget_models
from tokentrail.server.db import dashboard_models as dashboard_models
from tokentrail.server.db import evaluation_models as evaluation_models
from tokentrail.server.db import ingest_counters as ingest_counters
