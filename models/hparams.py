"""The model's hyperparameters, typed: a light module (no TensorFlow) that config imports.

``Frozen`` is the base of every typed settings model of the project (the
pipeline config's sections too): frozen, unknown fields refused, numbers
coerced where YAML is ambiguous (it reads ``3e-3`` as a string; pydantic's lax
mode makes it 0.003), and a bool never taken for a number.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {value}")
    return value


Number = Annotated[float, BeforeValidator(_not_bool)]
Integer = Annotated[int, BeforeValidator(_not_bool)]
Count = Annotated[int, BeforeValidator(_not_bool), Field(ge=1)]


# The custom_config key under which the Trainer and the Tuner get the configured HParams.
HPARAMS_KEY = "hparams"


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class HParams(Frozen):
    """Model and training hyperparameters: the one home of their defaults."""

    hidden_units: tuple[Count, ...] = Field((64, 32), min_length=1)
    dropout: Number = Field(0.5, ge=0, lt=1)
    l2: Number = Field(0.001, ge=0)
    learning_rate: Number = Field(0.003, gt=0, lt=1)
    batch_size: Count = 256
    seed: Integer = 42
