import pytest

from speechllm.testing import tiny_batches


@pytest.fixture
def batches() -> list[dict]:
    return tiny_batches(num_batches=6, batch_size=6, tasks=("asr", "ic"), seed=0)
