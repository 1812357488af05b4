"""docs/delivery.md is the reference of eil.toml: every setting is documented, and
every setting has a docstring."""

from __future__ import annotations

from pathlib import Path

from eil_pipelines.spec.models import field_docs
from eil_pipelines.spec.project import DeliverySettings, ProjectSettings, SmtpSettings

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_every_project_setting_is_documented_with_a_docstring():
    text = (DOCS / "delivery.md").read_text(encoding="utf-8")
    keys = []
    for prefix, model in (("smtp", SmtpSettings), ("delivery", DeliverySettings)):
        docs = field_docs(model)
        for name in model.model_fields:
            keys.append((f"{prefix}.{name}", docs.get(name)))
    assert [k for k, _ in keys if f"`{k}`" not in text] == []
    assert [k for k, doc in keys if not doc] == []
    settings_docs = field_docs(ProjectSettings)
    assert all(settings_docs.get(name) for name in ProjectSettings.model_fields)
