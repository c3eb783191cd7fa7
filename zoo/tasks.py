"""The tasks the catalog knows: the one place their names are written."""

CLASSIFICATION_TASKS = ("binary", "multiclass")
SUPERVISED_TASKS = ("binary", "multiclass", "regression")
