"""The run configuration (`zoo run` / `zoo tune` YAML), parsed with `yaml.safe_load` and validated
into typed objects; every error names its key path and the value received. Its data, task,
model, search and tracking sections are the options declared in `tuning.options`."""

import os

from pydantic import BaseModel, ConfigDict, Field

from export._options import FORMATS
from tuning.options import UserOptions, search_options, validate  # noqa: F401 - search_options: the config's SearchOptions
from zoo.errors import InvalidParameterError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EvaluateConfig(_Section):
    enabled: bool = True


class ExportConfig(_Section):
    enabled: bool = False
    formats: list[str] = Field(default_factory=lambda: list(FORMATS))
    quantize: list[str] = Field(default_factory=list)
    # with search.objectives: every member of the Pareto front retrained and exported to front/
    front: bool = False


class RunConfig(UserOptions):
    """The YAML config: the declared options (`tuning.options.UserOptions`: data, task, model,
    search, tracking) and what `zoo run` does after the search (evaluate, export)."""

    evaluate: EvaluateConfig = EvaluateConfig()
    export: ExportConfig = ExportConfig()


def parse_config(data, *, source="config"):
    """Validate a mapping into a `RunConfig`; raise `InvalidParameterError` naming the key path."""
    if not isinstance(data, dict):
        raise InvalidParameterError(
            f"`{source}` must be a YAML mapping with sections data, model, search... "
            f"Received: {type(data).__name__}"
        )
    return validate(data, root=RunConfig)


def load_config(path):
    """Read a YAML config with `yaml.safe_load` (no Python tags) and validate it."""
    import yaml

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InvalidParameterError(f"`config` file does not exist. Received: config={path!r}")
    try:
        with open(path, "rb") as handle:
            text = handle.read().decode("utf-8")
        data = yaml.safe_load(text)
    except UnicodeDecodeError:
        raise InvalidParameterError(f"`config` is not a UTF-8 text file. Received: config={path!r}") from None
    except yaml.YAMLError as error:
        where = getattr(error, "problem_mark", None)
        line = f" at line {where.line + 1}" if where else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise InvalidParameterError(f"`config` is not valid YAML{line}: {problem}. Received: config={path!r}") from None
    if data is None:
        raise InvalidParameterError(f"`config` is empty. Received: config={path!r}")
    return parse_config(data, source="config")
