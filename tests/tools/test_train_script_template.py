"""The exported script trains as the engine does: the same weights train, in the same AdamW groups,
for the same number of steps, under the same learning rate at every step."""
import importlib.util
import json

import pandas as pd
import pytest
import torch

import llmnb
from llmnb.core.engine import make_optimizer, make_scheduler
from llmnb.finetuning.config import FineTuneConfig
from llmnb.finetuning.strategies import apply_strategy


def exported(tmp_path, config, rows):
    script = llmnb.export_script(config, tmp_path / "job" / "train.py", data=rows, model="tiny-bert")
    spec = importlib.util.spec_from_file_location("exported_train", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    cfg = json.loads((script.parent / "train_config.json").read_text())
    return module, cfg, len(pd.read_csv(script.parent / "train.csv"))


def named_groups(model, groups):
    names = {id(p): n for n, p in model.named_parameters()}
    return [(sorted(names[id(p)] for p in g["params"]), g["weight_decay"]) for g in groups]


def lr_by_step(optimizer, scheduler, steps):
    rates = []
    for _ in range(steps):
        rates.append(scheduler.get_last_lr()[0])
        optimizer.step()  # no gradients: the weights stay, the schedule moves on
        scheduler.step()
    return rates


@pytest.mark.parametrize("options", [
    {},
    {"schedule": "cosine", "warmup": 0.25, "epochs": 1.5, "batch_size": 8},
    {"schedule": "constant", "weight_decay": 0.1, "lr": 3e-4, "max_steps": 13},
    {"freeze": 1, "warmup": 0.0},
], ids=["defaults", "cosine", "constant", "freeze"])
def test_script_and_engine_agree_step_by_step(tmp_path, easy_rows, options):
    config = FineTuneConfig(quiet=True, **options)
    script, cfg, n_train = exported(tmp_path, config, easy_rows)

    max_steps = script.planned_steps(cfg, n_train)
    assert max_steps == config.planned_steps(steps_per_epoch=-(-n_train // config.batch_size))

    engine_model = apply_strategy(llmnb.load_model("tiny-bert", seed=0).model, config)
    script_model = script.choose_trainable(llmnb.load_model("tiny-bert", seed=0).model, cfg)
    engine_optimizer = make_optimizer(engine_model, config, torch.device("cpu"))
    script_optimizer = torch.optim.AdamW(script.parameter_groups(script_model, cfg), lr=cfg["lr"])
    assert named_groups(engine_model, engine_optimizer.param_groups) == named_groups(script_model, script_optimizer.param_groups)

    engine_rates = lr_by_step(engine_optimizer, make_scheduler(engine_optimizer, config, max_steps), max_steps)
    script_rates = lr_by_step(
        script_optimizer, torch.optim.lr_scheduler.LambdaLR(script_optimizer, script.lr_factor(cfg, max_steps)), max_steps
    )
    assert engine_rates == pytest.approx(script_rates, rel=1e-12, abs=0)
    assert max(engine_rates) == pytest.approx(config.lr, rel=0.2)  # the peak is reached (warmup ends near it)


def test_a_schedule_the_script_does_not_know_would_be_caught(tmp_path, easy_rows):
    # The comparison above can fail: a script whose warmup differs gives other rates.
    config = FineTuneConfig(quiet=True)
    script, cfg, n_train = exported(tmp_path, config, easy_rows)
    steps = script.planned_steps(cfg, n_train)
    shifted = script.lr_factor({**cfg, "warmup": cfg["warmup"] / 2}, steps)
    assert [shifted(s) for s in range(steps)] != [script.lr_factor(cfg, steps)(s) for s in range(steps)]
