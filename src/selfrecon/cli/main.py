"""The ``selfrecon`` command: argument parsing, error reporting, dispatch.

This module imports neither torch nor the library at import time (``selfrecon --help`` is
instant); each command imports what it needs from :mod:`selfrecon.cli.commands`.

Every user mistake exits with code 2 and one line ``selfrecon: <what is wrong>; <what to do>``
(``--debug`` shows the traceback): the library's own error types (:mod:`selfrecon.errors`), bad
YAML and unreadable files. Any other exception is a bug in selfrecon, not the user's: exit 1 with
"please report" and its one-line cause. Ctrl-C during training exits with 130 after saving
``last.pt``.
"""

from __future__ import annotations

import argparse
import sys

from selfrecon import __version__

DEMO_TASKS = ("inpainting", "cs", "mri", "ct", "denoise")
INIT_TASKS = (
    "cs",
    "inpainting",
    "ct",
    "mri",
    "inpainting-poisson",
    "lowdose-ct",
    "denoise",
    "mri-multi",
    "sr",
)


class UsageError(Exception):
    """A command-line mistake (exit 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line instead of usage + message
        raise UsageError(f"{message}; see `{self.prog} --help`")


def _add_set(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. --set train.lr=1e-4 (repeatable; values are YAML)",
    )


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="selfrecon",
        description="Learn to reconstruct images from noisy, incomplete measurements alone "
        "(EI, REI, SURE, Noise2Self).",
        epilog="Start with `selfrecon demo`, or `selfrecon init inpainting -o config.yaml`, then "
        "check → train → eval → predict.",
    )
    p.add_argument("--version", action="version", version=f"selfrecon {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    _add_setup_commands(sub)
    _add_run_commands(sub)
    _add_tool_commands(sub)
    return p


def _add_setup_commands(sub) -> None:
    """demo, init, check, identify, simulate: from nothing to a validated config and data."""
    s = sub.add_parser("demo", help="train on built-in data and compare with A†y (start here)")
    s.add_argument(
        "--task",
        choices=DEMO_TASKS,
        default="inpainting",
        help="inpainting (EI), cs (EI), mri (REI, Gaussian noise), ct (EI), "
        "denoise (Noise2Self); default inpainting",
    )
    s.add_argument("--quick", action="store_true", help="a smaller run (seconds on a CPU)")
    s.add_argument(
        "--out",
        default=None,
        help="run folder (default runs/demo-TASK; a previous run there is replaced)",
    )
    s.add_argument("--device", default="auto", help="auto | cpu | cuda")
    _add_set(s)

    s = sub.add_parser("init", help="write a commented starter config for a task")
    s.add_argument("task", help=f"one of: {', '.join(INIT_TASKS)}")
    s.add_argument("-o", "--output", default="config.yaml", help="file to write (config.yaml)")
    s.add_argument("--overwrite", action="store_true", help="replace an existing file")

    s = sub.add_parser("check", help="validate a config and its data; print a summary")
    s.add_argument("config")
    _add_set(s)
    s.add_argument("--no-identify", action="store_true", help="skip the identifiability check")

    s = sub.add_parser("identify", help="can this operator + group be learnt without ground truth?")
    s.add_argument("config")
    _add_set(s)
    s.add_argument("--time-budget", type=float, default=30.0, help="seconds allowed (30)")

    s = sub.add_parser("simulate", help="turn the config's images into measurement sets on disk")
    s.add_argument("config")
    s.add_argument(
        "-o",
        "--output",
        required=True,
        help="folder to create; gets train/ val/ test/ measurement sets",
    )
    s.add_argument("--overwrite", action="store_true")
    _add_set(s)


def _add_run_commands(sub) -> None:
    """train, eval, predict: a run folder's life."""
    s = sub.add_parser("train", help="train a reconstruction network")
    s.add_argument("config", nargs="?", help="config file (optional with --resume)")
    _add_set(s)
    s.add_argument("--resume", metavar="RUN", help="continue the run in folder RUN")

    s = sub.add_parser("eval", help="PSNR/SSIM of the network and of A†y on data with ground truth")
    s.add_argument("run")
    s.add_argument("--checkpoint", choices=("best", "last"), default="best")
    s.add_argument("--data", help="a measurement set folder with x (default: the run's test set)")
    s.add_argument("--batch-size", type=int, default=16)

    s = sub.add_parser("predict", help="reconstruct measurement files with a trained run")
    s.add_argument("run")
    s.add_argument(
        "--input",
        required=True,
        help="a .npy file, a folder of .npy files (one measurement each) or a "
        "measurement set folder",
    )
    s.add_argument("--output", required=True, help="output folder (not inside the input)")
    s.add_argument("--checkpoint", choices=("best", "last"), default="best")
    s.add_argument("--mask", help="mask file, if the measurements used another mask than training")
    s.add_argument("--angles", help="angles file (CT), if different from training")
    s.add_argument("--overwrite", action="store_true", help="replace existing output files")
    s.add_argument("--batch-size", type=int, default=16)


def _add_tool_commands(sub) -> None:
    """bench, plot, info, calibrate."""
    s = sub.add_parser(
        "bench", help="train and score every row of benchmark experiments; write RESULTS.md"
    )
    s.add_argument("names", nargs="*", help="experiments (default: every config in --configs)")
    s.add_argument("--quick", action="store_true", help="tiny budgets: a smoke test, not results")
    s.add_argument("--device", default="auto", help="auto | cpu | cuda")
    s.add_argument("--out", default=None, help="results folder (default benchmarks/results)")
    s.add_argument("--configs", default=None, help="config folder (default benchmarks/configs)")
    s.add_argument("--report", default=None, help="RESULTS.md path (default beside --out)")
    s.add_argument("--force", action="store_true", help="retrain runs that are already done")
    _add_set(s)

    s = sub.add_parser("plot", help="redraw loss curves and sample panels of a run")
    s.add_argument("run")

    sub.add_parser("info", help="versions, device, optional extras, built-in datasets")

    s = sub.add_parser("calibrate", help="self-supervised calibration of a classical denoiser")
    s.add_argument("noisy", help="noisy image (PNG, TIFF, NPY...)")
    s.add_argument(
        "--denoiser",
        default="median",
        help="median (donut) | median-full | gaussian | wavelet | tv | nlmeans",
    )
    s.add_argument("--grid", default=None, help="parameter values: 1:6, 0.5:3:0.5 or 1,2,4")
    s.add_argument("--truth", default=None, help="clean image, to show the true error too")
    s.add_argument("-o", "--output", required=True, help="output folder")
    s.add_argument("--width", type=int, default=4, help="grid mask width (4)")
    s.add_argument(
        "--denoised",
        choices=("shrunk", "j-invariant", "plain"),
        default="shrunk",
        help="image to write: the J-invariant output shrunk toward the noisy image (default, "
        "Noise2Self §4), the J-invariant output the loss calibrated, or the plain filter",
    )
    s.add_argument(
        "--noise-var", type=float, default=None, help="noise variance for shrinking (estimated)"
    )
    s.add_argument("--overwrite", action="store_true")


def _one_line(msg: str) -> str:
    line = " ".join(str(msg).strip().split()) or "unknown error"
    if line.startswith("selfrecon: "):
        line = line[len("selfrecon: ") :]
    if ";" not in line:
        line += "; run with --debug for details"
    return line


def _user_errors() -> tuple[type[BaseException], ...]:
    import yaml

    from selfrecon.errors import SelfreconError

    # the library's own user-facing error types, unreadable files and YAML; anything else
    # (a ValueError or TypeError from deep inside) is a bug, not the user's fault
    return (UsageError, SelfreconError, OSError, yaml.YAMLError)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    try:
        args = build_parser().parse_args(argv)
    except UsageError as err:
        print(f"selfrecon: {_one_line(str(err))}", file=sys.stderr)
        return 2
    if args.command is None:
        build_parser().print_help()
        return 0
    try:
        from selfrecon.cli import commands

        return int(getattr(commands, f"cmd_{args.command}")(args) or 0)
    except KeyboardInterrupt:
        from selfrecon.cli import commands

        msg = commands.interrupt_message()
        print(f"\nselfrecon: interrupted; {msg}", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - sorted below: user mistakes vs bugs
        if debug:
            raise
        user = isinstance(err, _user_errors())
        try:
            from pydantic import ValidationError

            if isinstance(err, ValidationError):
                from selfrecon.cli.config import format_validation_error
                from selfrecon.errors import ConfigError

                err = ConfigError(format_validation_error(err))
                user = True
        except ImportError:  # pragma: no cover
            pass
        if not user:
            print(
                f"selfrecon: internal error {type(err).__name__}: {_one_line(str(err))}; this is "
                "a bug, not your mistake: please report it with the output of --debug",
                file=sys.stderr,
            )
            return 1
        print(f"selfrecon: {_one_line(str(err))}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
