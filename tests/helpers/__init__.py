"""Modules the tests import that are not tests themselves, imported as ``helpers.<module>``:
pyproject.toml puts tests/ on sys.path (``pythonpath``), so this folder is a package beside the test
folders. A test module never imports another test module: what two share lives here.

Loop twins (slow, obvious references written from the definitions, in float64):
- ``naive``: convolution, pooling, normalization, activations, dropout, losses, a residual MLP.
- ``naive_attention``: multi-head self-attention, one sequence, query and head at a time.
- ``recurrent_loops``: RNN, LSTM and GRU, every sample, step, unit and weight a loop over scalars.
- ``textbook_optim``: the optimizers' rules one float64 number at a time, and the plain layers whose
  gradients the optimizer tests set.

Shared cases:
- ``layer_configs``: the Conv2D and MaxPool2D configurations (the package's table, which
  ``nnscratch sanity-check`` reads too) and the memory layouts the layers are tested in.
- ``recurrent_cases``: the recurrent cells and seeded layers, inputs and states for them.
- ``interop_cases``: a small model per built-in layer, for the ONNX and PyTorch converters' tests.
- ``gallery``: broken layers, each as a learner writes it, with the diagnosis it must get.
- ``dtypes``: the two dtypes a PyTorch parity test runs in, with their tolerances.
- ``check_layers``: plain user-style layers (right and wrong) for sanity_check's tests.
- ``training``: blobs to learn, the loss and spy layers for the tests of fit, evaluate and predict.

Tools:
- ``interop_checks``: how the converters' tests compare: ONNX Runtime's outputs, PyTorch's outputs
  and gradients.
- ``checkpoint_files``: small networks and checkpoint files written by hand (good, tampered, hostile).
- ``aged_files``: files with a past modification time, for the tests of stale temp-file cleanup.
- ``script_modules``: loading a script of scripts/ as a module; its children; its usage errors.
- ``benchmark_checks``: the checks every benchmark row gets (finite speeds, flat memory).
- ``docs_blocks``: the fenced code blocks of a Markdown page, and running its Python blocks.
- ``sanity_check_tables``: reading ``nnscratch sanity-check``'s printed table back.
- ``fake_machine``: a fake clock and BLAS thread counts for the thread-choice tests.
- ``train_mnist_runs``: running train-mnist against a loopback mirror, metrics without timings.
- ``text_runs``: small train-text runs and ways to stop them, for the train-text command's tests.
- ``swap_training``: one network trained from the reference layers and from the fast ones.
- ``differences``: central differences of a scalar function of an array, element by element.
- ``check_contexts``: a check's context built by hand, to call one diagnosis at a time.
- ``siblings``: what every shared base of nnscratch/specs/ promises of a fast layer and its twin.
"""
