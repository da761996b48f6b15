"""The api and ingest services stay light: importing them pulls in neither torch nor sentence-transformers."""
import subprocess
import sys

import pytest


@pytest.mark.parametrize("module", ["services.api.app", "services.ingest.app"])
def test_service_imports_no_model_libraries(module):
    code = f"import sys, {module}; print(sorted(m for m in ('torch', 'sentence_transformers') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
