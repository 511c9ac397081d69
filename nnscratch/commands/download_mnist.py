"""``nnscratch download-mnist``: fetch and verify the four MNIST files into the data directory."""

from __future__ import annotations

import sys

from .common import UsageError, os_error_text, read_deadline, run_command, shown

HELP = "download and verify MNIST into the data directory (a second run uses the cache, no network)"


def add_arguments(parser) -> None:
    parser.add_argument(
        "--data-dir",
        metavar="D",
        default=None,
        help="where the files go (default: $NNSCRATCH_DATA_DIR, else ./data/mnist)",
    )
    parser.add_argument(
        "--mirror",
        metavar="URL",
        action="append",
        dest="mirrors",
        default=None,
        help="base URL the file names are appended to; repeat to try several in order "
        "(default: $NNSCRATCH_MNIST_MIRROR, comma-separated, else the built-in public mirrors)",
    )
    parser.add_argument(
        "--deadline",
        metavar="SECONDS",
        default=None,
        help="the most one mirror may take for one file, retries included, from 0.1 to 86400; a mirror "
        "that runs out of time, or stays under 1 kB/s for 30 s, is not tried again for the other files "
        "(default: $NNSCRATCH_DOWNLOAD_DEADLINE, else 300)",
    )
    parser.add_argument("--force", action="store_true", help="download again even if the cache verifies")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args) -> int:
    return run_command("download-mnist", _run, args)


def _run(args) -> int:
    # imported here so `nnscratch --help` does not pay for requests and tqdm
    from ..data import MNISTCacheError, MNISTDownloadError, download_mnist

    try:
        deadline = read_deadline(args.deadline)
        root = download_mnist(
            data_dir=args.data_dir, mirrors=args.mirrors, force=args.force, progress=not args.quiet,
            deadline=deadline,
        )
    except (MNISTDownloadError, MNISTCacheError) as error:  # the mirrors, or what is in the directory
        print(error, file=sys.stderr)
        return 1
    except (ValueError, TypeError) as error:  # a malformed --mirror or environment variable
        raise UsageError(str(error)) from None
    except OSError as error:  # the data directory cannot be created or written (a full disk)
        print(f"download-mnist: {os_error_text(error)}", file=sys.stderr)
        return 1
    print(f"MNIST is ready in {shown(root)} (4 files, SHA-256 verified)")
    return 0
