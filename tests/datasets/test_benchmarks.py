"""llmnb.datasets.benchmarks (tutorials/07_tools.ipynb): GLUE by name online, bundled data offline,
and never the network when offline."""
import pytest

from llmnb.datasets import benchmarks
from llmnb.datasets.benchmarks import load_benchmark, offline_reason, to_text_label


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to load from the Hub fails the test."""
    import datasets

    def refuse(*args, **kwargs):
        raise AssertionError("load_dataset was called while offline")

    monkeypatch.setattr(datasets, "load_dataset", refuse)


def test_offline_never_touches_the_network(no_network, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    data = load_benchmark("glue", "sst2", split="validation", limit=30)
    assert not data.from_hub and len(data.frame) == 30 and list(data.frame.columns) == ["text", "label"]
    assert "bundled 'reviews' (test split)" in data.source and "HF_HUB_OFFLINE=1" in data.source
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "true")
    assert offline_reason() == "HF_DATASETS_OFFLINE=true"
    monkeypatch.delenv("HF_DATASETS_OFFLINE")
    assert offline_reason() is None and offline_reason(offline=True) == "offline=True"
    assert "offline=True" in load_benchmark(offline=True).source
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert "HF_HUB_OFFLINE=1" in load_benchmark(offline=False).source  # the environment wins


def fake_sst2():
    import datasets

    features = datasets.Features({"sentence": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["negative", "positive"]),
                                  "idx": datasets.Value("int32")})
    return datasets.Dataset.from_dict({"sentence": ["great film", "dull", "hidden"], "label": [1, 0, -1], "idx": [0, 1, 2]},
                                      features=features)


def test_online_loads_by_hub_id_and_names_the_labels(monkeypatch):
    import datasets

    calls = []

    def fake_load(hub_id, config, split):
        calls.append((hub_id, config, split))
        return fake_sst2()

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    data = load_benchmark("glue", "sst2", split="test")
    assert calls == [("nyu-mll/glue", "sst2", "test")] and data.from_hub
    assert data.frame.to_dict("list") == {"text": ["great film", "dull"], "label": ["positive", "negative"]}  # -1 dropped
    assert "from the Hugging Face Hub" in data.source and "2 rows" in repr(data)


def test_online_failure_falls_back_and_says_why(monkeypatch):
    import datasets

    def unreachable(*args, **kwargs):
        raise ConnectionError("no route to host")

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setattr(datasets, "load_dataset", unreachable)
    data = load_benchmark("super_glue", "boolq", split="train", limit=5)
    assert not data.from_hub and len(data.frame) == 5
    assert "aps/super_glue/boolq" in data.source and "ConnectionError: no route to host" in data.source


def test_sentence_pairs_are_joined_and_bad_input_is_refused():
    import datasets

    pairs = datasets.Dataset.from_dict(
        {"sentence1": ["a cat sat"], "sentence2": ["a cat was sitting"], "label": [0]},
        features=datasets.Features({"sentence1": datasets.Value("string"), "sentence2": datasets.Value("string"),
                                    "label": datasets.ClassLabel(names=["entailment", "not_entailment"])}))
    assert to_text_label(pairs).to_dict("list") == {"text": ["a cat sat | a cat was sitting"], "label": ["entailment"]}
    with pytest.raises(ValueError, match="split"):
        load_benchmark(split="dev", offline=True)
    assert benchmarks.HUB_IDS["glue"] == "nyu-mll/glue"
