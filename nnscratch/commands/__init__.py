"""One module per command: ``HELP``, ``add_arguments(parser)``, ``run(args) -> exit code``.

A long command keeps a part that reads on its own in a module named after it: ``train_mnist_options``
(train-mnist's options and their checks), ``sanity_check_cases`` and ``sanity_check_sequences`` (what
sanity-check checks the built-in layers on), ``sanity_check_inputs`` (their seeded inputs and targets).
"""
