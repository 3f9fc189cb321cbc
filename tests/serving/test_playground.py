"""The playground page in a real headless Chromium: it loads, an uploaded file and a microphone
recording each get a streamed answer, a bad file gets the server's message. A screenshot of
the answered page is kept in ``tests/artifacts/``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from speechllm.inference import answer, load_model
from speechllm.models.tiny import save_tiny_export
from speechllm.serving import ServeConfig, load_app, running
from tests.serving.world import write_recordings

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
TOKENS = 12
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-ui-for-media-stream",  # allow the microphone without a prompt...
    "--use-fake-device-for-media-stream",  # ...and make it a test tone
]

if not CHROMIUM.exists():
    pytest.skip("Debian chromium is not installed (make test installs it)", allow_module_level=True)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    from playwright.sync_api import sync_playwright

    root = tmp_path_factory.mktemp("playground")
    export = save_tiny_export(root / "export")
    with (
        running(load_app(str(export), "tiny", config=ServeConfig())) as url,
        sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch_persistent_context(
            str(root / "profile"),  # a fresh profile
            executable_path=str(CHROMIUM),
            headless=True,
            args=ARGS,
        )
        page = browser.new_page()
        page.goto(url)
        page.wait_for_function("document.getElementById('model').textContent === 'tiny'")
        yield page, export, write_recordings(root / "recordings", 2)
        browser.close()


def _ask(page, instruction: str) -> str:
    page.fill("#instruction", instruction)
    page.fill("#max-tokens", str(TOKENS))
    page.click("#ask")
    page.wait_for_function(
        "/^(Done|Error)/.test(document.getElementById('status').textContent)", timeout=60_000
    )
    return page.text_content("#status")


def test_an_uploaded_file_gets_the_answer_streamed_in(world: tuple) -> None:
    page, export, recordings = world
    page.set_input_files("#file", str(recordings[0]))
    page.wait_for_function("!document.getElementById('ask').disabled")
    status = _ask(page, "Transcribe the audio.")
    assert status.startswith("Done ("), status
    expected = answer(
        load_model(export), recordings[0], "Transcribe the audio.", max_new_tokens=TOKENS
    )
    assert page.text_content("#answer") == expected
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "playground.png"), full_page=True)
    assert (ARTIFACTS / "playground.png").stat().st_size > 0


def test_a_microphone_recording_gets_an_answer(world: tuple) -> None:
    page, _, _ = world
    page.click("#record")
    page.wait_for_function("document.getElementById('record').textContent === 'Stop'")
    page.wait_for_timeout(800)
    page.click("#record")
    page.wait_for_function("/ready/.test(document.getElementById('status').textContent)")
    assert _ask(page, "Say it.").startswith("Done ("), page.text_content("#status")


def test_an_undecodable_file_shows_the_servers_message(world: tuple, tmp_path: Path) -> None:
    page, _, _ = world
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"this is not a wav file")
    page.set_input_files("#file", str(junk))
    page.wait_for_function("/ready/.test(document.getElementById('status').textContent)")
    status = _ask(page, "Say it.")
    assert status.startswith("Error 400") and "unreadable" in status, status
