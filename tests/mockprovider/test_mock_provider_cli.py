"""`tokentrail mock-provider`: a real subprocess on a free port, stopped by a signal; option errors."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import urllib.request

import openai
import pytest
from typer.testing import CliRunner

import tokentrail.cli.mock_provider  # noqa: F401  (registers the command on the app)
from tokentrail.cli.app import app

# Runs the same Typer app the `tokentrail` script runs, with the command registered.
LAUNCH = "import tokentrail.cli.mock_provider; from tokentrail.cli.app import app; app()"


def _start(*args: str) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-c", LAUNCH, "mock-provider", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    banner = process.stdout.readline()  # "tokentrail mock provider listening on http://127.0.0.1:PORT"
    assert "listening on http://127.0.0.1:" in banner, process.stderr.read() if process.stderr else banner
    return process, banner.split()[-1]


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_cli_serves_health_and_the_sdks_then_stops_on_a_signal(stop_signal: signal.Signals):
    process, url = _start("--seed", "3", "--azure-deployment", "prod=gpt-4o")
    try:
        health = json.loads(urllib.request.urlopen(f"{url}/health", timeout=5).read())
        assert health["status"] == "ok"
        with openai.OpenAI(base_url=f"{url}/v1", api_key="sk-cli-secret", max_retries=0) as client:
            response = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
        assert response.usage.prompt_tokens == 1
    finally:
        process.send_signal(stop_signal)
        out, err = process.communicate(timeout=10)
    assert process.returncode == 0
    assert "stopped" in out
    assert "POST /v1/chat/completions 200" in err  # the access log, without the key
    assert "sk-cli-secret" not in out + err


def test_cli_refuses_bad_options():
    runner = CliRunner()
    result = runner.invoke(app, ["mock-provider", "--error-rate", "2"])
    assert result.exit_code == 2 and "error_rate" in result.output
    result = runner.invoke(app, ["mock-provider", "--azure-deployment", "no-model"])
    assert result.exit_code == 2 and "NAME=MODEL" in result.output
    result = runner.invoke(app, ["mock-provider", "--error-kind", "teapot"])
    assert result.exit_code == 2 and "teapot" in result.output


def test_cli_reports_a_busy_port():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(app, ["mock-provider", "--port", str(port), "--quiet"])
    assert result.exit_code == 1 and f"cannot listen on 127.0.0.1:{port}" in result.output
