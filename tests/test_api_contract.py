"""The OpenAPI document is the contract: a schema fuzzer (Schemathesis) against a real `i2v serve`.

The server's model folder holds no weights, so every job the fuzzer manages to submit fails at load in
milliseconds instead of running (with the tiny model, a fuzzer's 2048²×32×100-step job would take the CPU for
minutes). Generation is tested elsewhere; this checks statuses, content types and bodies against the schema.
`README.md` shows how to run a longer fuzz.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from helpers import ServerProcess

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory):
    home = tmp_path_factory.mktemp("fuzz-home")
    model = tmp_path_factory.mktemp("no-weights")
    (model / "model_index.json").write_text(json.dumps({"_class_name": "I2VGenXLSampler"}))
    process = ServerProcess(home, model, env={"I2V_MAX_UPLOAD_BYTES": "2000000", "I2V_QUEUE_LIMIT": "20"}).start()
    yield process
    process.stop()


def test_schemathesis_finds_no_contract_violation(fuzz_server, tmp_path):
    command = shutil.which("schemathesis") or shutil.which("st")
    if command is None:
        pytest.fail("schemathesis is not installed: bash scripts/install.sh installs the dev tools")
    result = subprocess.run(
        [command, "run", f"{fuzz_server.url}/openapi.json", "--checks", CHECKS, "--max-examples", "15", "--seed", "20261130",
         "--no-color", "--request-timeout", "30"],
        capture_output=True, text=True, cwd=tmp_path, timeout=240,
    )
    assert result.returncode == 0, result.stdout[-6000:]
