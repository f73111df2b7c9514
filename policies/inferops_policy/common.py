"""Helpers shared by the rule modules: config with defaults, labels for messages."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .metadata import function_name, provider_defaults
from .props import UNKNOWN


def config_value(args: Any, key: str, default: Any) -> Any:
    """A policy config property, falling back to the schema default when the engine sent none."""
    try:
        config: Mapping[str, Any] = args.get_config() or {}
    except AttributeError:
        config = {}
    value = config.get(key)
    return default if value is None else value


def label(resource_type: str, props: dict[str, Any], logical_name: str) -> str:
    """A readable name for messages: the function name when known, else the logical name."""
    name = function_name(resource_type, props, logical_name)
    return logical_name if name is UNKNOWN else str(name)


def defaults_of(args: Any) -> dict[str, Any]:
    """The tags/labels the resource's provider adds (``args.provider``; see ``provider_defaults``)."""
    return provider_defaults(args.resource_type, getattr(args, "provider", None))


def shown(value: Any, limit: int = 80) -> str:
    """A value as a message quotes it: its text, cut to ``limit`` characters."""
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def fmt_usd(amount: float) -> str:
    """Format dollars to the cent, as messages show them."""
    if not math.isfinite(amount):
        return "an amount beyond any budget"
    return f"${amount:,.2f}"


def fmt_num(value: float) -> str:
    """Format a number without a trailing ``.0``."""
    return f"{value:g}"
