"""docs/delivery.md is the reference of eil.toml: every setting is documented, and
every setting has a docstring."""

from __future__ import annotations

from pathlib import Path

from eil_pipelines.spec.project import DeliverySettings, ProjectSettings, SmtpSettings

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_every_project_setting_is_documented_with_a_docstring():
    text = (DOCS / "delivery.md").read_text(encoding="utf-8")
    keys = []
    for prefix, model in (("smtp", SmtpSettings), ("delivery", DeliverySettings)):
        for name, info in model.model_fields.items():
            keys.append((f"{prefix}.{name}", info.description))
    assert [k for k, _ in keys if f"`{k}`" not in text] == []
    assert [k for k, doc in keys if not doc] == []
    assert all(info.description for info in ProjectSettings.model_fields.values())
