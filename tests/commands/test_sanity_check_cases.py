"""The Conv2D and MaxPool2D configurations: one table, read by the command's cases and by the tests."""

from __future__ import annotations

from helpers import layer_configs
from nnscratch.commands.sanity_check_cases import CONV_CONFIGS, MAXPOOL_CONFIGS, builtin_cases


def test_the_command_and_the_tests_read_one_table():
    assert layer_configs.CONV_CONFIGS is CONV_CONFIGS and layer_configs.MAXPOOL_CONFIGS is MAXPOOL_CONFIGS
    cases = builtin_cases()
    assert [case.config for case in cases if case.layer == "Conv2D"] == [config.name for config in CONV_CONFIGS]
    assert [case.config for case in cases if case.layer == "MaxPool2D"] == [config.name for config in MAXPOOL_CONFIGS]


def test_every_configuration_is_there_once():
    # the command's 12 and the tests' 15 Conv2D configurations shared 10; their 4 and 10 MaxPool2D ones, 1
    for table, count in ((CONV_CONFIGS, 17), (MAXPOOL_CONFIGS, 13)):
        assert len(table) == count
        assert len({config.name for config in table}) == count
        assert len({tuple(config[1:]) for config in table}) == count  # no two alike but for the name
    _, c_in, c_out, kernel, stride, padding, bias, shape = CONV_CONFIGS[-1]  # unpacks as the old tuples did
    assert (c_in, c_out, kernel, stride, padding, bias, shape) == (1, 2, 2, 1, 3, True, (2, 1, 3, 3))
