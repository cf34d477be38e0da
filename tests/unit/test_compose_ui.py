"""docker-compose's Temporal UI: the codec with the browser's cookie, and no terminate."""

from __future__ import annotations

from pathlib import Path

import yaml

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"


def test_the_ui_decodes_with_the_cookie_and_cannot_terminate() -> None:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    ui = services["temporal-ui"]["environment"]
    api = services["api"]["environment"]
    # The UI on 127.0.0.1:8080 calls the API's codec on 127.0.0.1:8000 with credentials (same
    # host: the workbench's codec cookie goes along); the API allows that origin (its UI port).
    assert ui["TEMPORAL_CODEC_ENDPOINT"] == "http://127.0.0.1:8000/codec"
    assert ui["TEMPORAL_CODEC_INCLUDE_CREDENTIALS"] == "true"
    assert "127.0.0.1:8080:8080" in services["temporal-ui"]["ports"]
    assert api["TRLGATE_TEMPORAL_UI_PORT"] == "8080"
    for setting in ("WORKFLOW_TERMINATE", "WORKFLOW_RESET", "BATCH_ACTIONS"):
        assert ui[f"TEMPORAL_{setting}_DISABLED"] == "true", setting
    assert "TEMPORAL_WORKFLOW_CANCEL_DISABLED" not in ui  # cancel is the clean stop
