"""`StageParams`: the pydantic base class for a stage's parameters (docs/architecture.md, "Pipeline model")."""

from __future__ import annotations

import pydantic


class StageParams(pydantic.BaseModel):
    """Stage parameters: frozen, unknown fields refused; subclass and add typed fields."""

    model_config = pydantic.ConfigDict(frozen=True, extra="forbid")


__all__ = ["StageParams"]
