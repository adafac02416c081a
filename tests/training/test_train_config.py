"""TrainConfig: one declaration of the training options, read by the library and the CLI."""

import dataclasses

import pytest
from pydantic import ValidationError

from selfrecon.cli.config import TrainSection
from selfrecon.errors import ConfigError
from selfrecon.training.config import CLI_SET, TrainConfig


@pytest.mark.parametrize(
    ("key", "value", "why"),
    [
        ("lr", 0.0, "greater than 0"),
        ("epochs", 0, "at least 1"),
        ("steps", 0, "at least 1"),
        ("plot_every", -1, "at least 0"),
        ("grad_clip", -1.0, "greater than 0"),
        ("optimizer", "sgd", "adam, adamw"),
        ("progress", "fancy", "auto, bar, lines, none"),
    ],
)
def test_bad_options_are_one_line_config_errors_in_library_and_cli(key, value, why):
    with pytest.raises(ConfigError, match=f"train.{key} = .*{why}"):
        TrainConfig(**{key: value})
    with pytest.raises(ValidationError) as err:  # pydantic reads the same annotations
        TrainSection(**{key: value})
    assert key in str(err.value)


def test_optional_bounds_admit_none():
    assert TrainConfig(steps=None, grad_clip=None, val_batch_size=None).steps is None


def test_cli_section_is_generated_from_the_dataclass():
    fields = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    section = TrainSection()
    assert set(TrainSection.model_fields) == set(fields) - set(CLI_SET)
    assert section.model_dump() == {k: v for k, v in fields.items() if k not in CLI_SET}
    with pytest.raises(ValidationError, match="resume"):
        TrainSection(resume=True)  # set by --resume, not by the file


def test_unknown_keys_name_the_allowed_ones():
    with pytest.raises(ConfigError, match="unknown training option.*'epoch'"):
        TrainConfig.from_dict({"epoch": 3})
