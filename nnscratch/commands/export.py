"""``nnscratch export CHECKPOINT OUT.onnx``: write a checkpoint's model as an ONNX file.

Exit codes: 0 written; 2 bad options, an OUT that cannot be written (as every command's outputs:
never the checkpoint, never a FIFO or device; see ``nnscratch.commands.common``) or a checkpoint that
cannot be read or holds NaN or infinite weights (as ``predict`` and ``report``), checked before any work; 1 a model that cannot be
exported (a layer without an ONNX form, an input shape it does not take), onnx missing, or OUT not
written after all (a full disk); 130 interrupted.

The loss layers at the end of a training network are dropped (see ``nnscratch.export.onnx``). The
input shape (one sample, no batch axis) comes from ``--input-shape``, else from the preset a
``train-mnist`` checkpoint records or the context (block size) a ``train-text`` one does, else from a
first layer that fixes it (a Linear's in_features).
"""

from __future__ import annotations

import sys

from .common import UsageError, check_finite_weights, check_outputs, read_checkpoint, run_command, shown, write_failed

HELP = "write a checkpoint's model (its loss dropped) as an ONNX file for ONNX Runtime and other engines"


def add_arguments(parser) -> None:
    parser.add_argument("checkpoint", metavar="CHECKPOINT", help="a checkpoint written by nn.save, train-mnist --save or train-text --save")
    parser.add_argument("output", metavar="OUT", help="the ONNX file to write (replaced atomically if it exists)")
    parser.add_argument(
        "--input-shape",
        metavar="D,...",
        help="one sample's shape without the batch axis, e.g. 1,28,28 (default: the train-mnist preset's, "
        "a train-text model's context, or a first Linear layer's in_features)",
    )


def _parse_shape(text: str) -> tuple:
    try:
        shape = tuple(int(part) for part in text.replace(" ", "").split(","))
    except ValueError:
        shape = ()
    if not shape or any(size <= 0 for size in shape):
        raise UsageError(f"--input-shape: expected positive ints separated by commas, like 1,28,28; got {text!r}")
    return shape


def _first_layer(model):
    from ..containers import Sequential

    while isinstance(model, Sequential) and model.layers:
        model = model.layers[0]
    return model


def infer_input_shape(checkpoint, path) -> tuple | None:
    """One sample's shape for ``checkpoint``'s model: its train-mnist preset's, a train-text model's
    context of ids (block_size,), else a first Linear's (in_features,); None when none tells."""
    from ..layers import Linear
    from ..presets import PRESETS
    from .text_checkpoint import KEY, read_metadata

    if KEY in checkpoint.metadata:  # checked in full: a broken record is one line, as for generate
        return (read_metadata(shown(path), checkpoint)["config"]["block_size"],)
    recorded = checkpoint.metadata.get("train_mnist")
    config = recorded.get("config") if isinstance(recorded, dict) else None
    preset = config.get("model") if isinstance(config, dict) else None
    if isinstance(preset, str) and preset in PRESETS:
        return PRESETS[preset].input_shape
    first = _first_layer(checkpoint.model)
    if isinstance(first, Linear):
        return (first.in_features,)
    return None


def run(args) -> int:
    return run_command("nnscratch export", lambda args: _export(args, *_check(args)), args)


def _check(args) -> tuple:
    """(the checkpoint, one sample's shape), or UsageError: all checked before any work."""
    shape = None if args.input_shape is None else _parse_shape(args.input_shape)
    args.output = check_outputs([("OUT", args.output)], [("the checkpoint", args.checkpoint)])["OUT"]
    checkpoint = read_checkpoint(args.checkpoint)
    check_finite_weights(args.checkpoint, checkpoint.model, "an ONNX file of it would compute nothing meaningful")
    shape = shape or infer_input_shape(checkpoint, args.checkpoint)
    if shape is None:
        raise UsageError(f"cannot tell the input shape of {shown(args.checkpoint)}'s model (not a train-mnist or "
                         "train-text checkpoint, first layer not Linear); pass --input-shape, e.g. 1,28,28")
    return checkpoint, shape


def _export(args, checkpoint, shape) -> int:
    from ..export import OPSET, export_onnx

    try:
        proto = export_onnx(checkpoint.model, args.output, shape)
    except (ImportError, TypeError, ValueError) as error:  # no onnx; a layer without an ONNX form
        print(f"nnscratch export: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        write_failed("nnscratch export", "OUT", args.output, error)
        return 1
    output = proto.graph.output[0].type.tensor_type.shape.dim
    out_shape = ", ".join(d.dim_param or str(d.dim_value) for d in output)
    print(f"wrote {shown(args.output)}: input (N, {', '.join(map(str, shape))}) -> output ({out_shape}), "
          f"ONNX opset {OPSET}, float32")
    return 0
