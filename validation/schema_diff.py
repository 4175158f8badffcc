"""``tfxp schema diff``: the differences between two schemas, feature by feature, in words.

A text diff of two ``schema.pbtxt`` files hides what changed behind field
order and nesting; this compares the parsed protos instead. A feature's named
``string_domain`` is resolved, so a value dropped from the vocabulary shows as
such.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import message
from tensorflow_metadata.proto.v0 import schema_pb2


def _flatten(msg: message.Message, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field, value in msg.ListFields():
        key = f"{prefix}{field.name}"
        if field.type == field.TYPE_MESSAGE:
            items = value if field.label == field.LABEL_REPEATED else [value]
            for i, item in enumerate(items):
                sub = f"{key}[{i}]." if field.label == field.LABEL_REPEATED else f"{key}."
                flat = _flatten(item, sub)
                out.update(flat or {key: "{}"})
        elif field.type == field.TYPE_ENUM:
            enum = field.enum_type
            names = [
                enum.values_by_number[v].name
                for v in (value if field.label == field.LABEL_REPEATED else [value])
            ]
            out[key] = names if field.label == field.LABEL_REPEATED else names[0]
        else:
            out[key] = list(value) if field.label == field.LABEL_REPEATED else value
    return out


def _features(schema: schema_pb2.Schema) -> dict[str, dict[str, Any]]:
    domains = {d.name: list(d.value) for d in schema.string_domain}
    features = {}
    for feature in schema.feature:
        flat = _flatten(feature)
        flat.pop("name", None)
        if "domain" in flat:  # a named string_domain: compare its values
            flat["string_domain.value"] = domains.get(flat.pop("domain"), [])
        features[feature.name] = flat
    return features


def _show(value: Any) -> str:
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value)


def diff_schemas(curated: schema_pb2.Schema, proposed: schema_pb2.Schema) -> list[str]:
    """Readable lines, one per difference, from ``curated`` to ``proposed``; empty when the same."""
    lines: list[str] = []
    old, new = _features(curated), _features(proposed)
    for name in sorted(set(old) | set(new)):
        if name not in new:
            lines.append(f"- feature {name}: removed (the data would no longer be checked for it)")
            continue
        if name not in old:
            kind = new[name].get("type", "?")
            lines.append(f"+ feature {name}: added ({kind})")
            continue
        a, b = old[name], new[name]
        for key in sorted(set(a) | set(b)):
            if a.get(key) == b.get(key):
                continue
            if isinstance(a.get(key), list) or isinstance(b.get(key), list):
                before, after = list(a.get(key) or []), list(b.get(key) or [])
                dropped = [v for v in before if v not in after]
                added = [v for v in after if v not in before]
                parts = ([f"drops {_show(dropped)}"] if dropped else []) + (
                    [f"adds {_show(added)}"] if added else []
                )
                lines.append(f"~ feature {name}: {key} {'; '.join(parts) or 'reordered'}")
            elif key not in a:
                lines.append(f"~ feature {name}: {key} set to {_show(b[key])} (was unset)")
            elif key not in b:
                lines.append(f"~ feature {name}: {key} removed (was {_show(a[key])})")
            else:
                lines.append(f"~ feature {name}: {key} {_show(a[key])} -> {_show(b[key])}")
    env_a, env_b = list(curated.default_environment), list(proposed.default_environment)
    if env_a != env_b:
        lines.append(f"~ environments: {_show(env_a) or 'none'} -> {_show(env_b) or 'none'}")
    return lines


def update_schema(curated: schema_pb2.Schema, statistics: Any) -> schema_pb2.Schema:
    """The smallest change to ``curated`` that makes data with ``statistics`` valid (TFDV's update_schema).

    Unlike a fresh ``infer_schema``, it keeps every curated range, environment
    and comparator, and only adds what the data needs (a new column, a new
    value in a closed vocabulary...).
    """
    import tensorflow_data_validation as tfdv

    updated = schema_pb2.Schema()
    updated.CopyFrom(curated)
    return tfdv.update_schema(updated, statistics)


def header_comments(text: str) -> str:
    """The leading ``#`` comment block of a schema file (text_format drops comments)."""
    lines = []
    for line in text.splitlines(keepends=True):
        if not line.startswith("#"):
            break
        lines.append(line)
    return "".join(lines)
