"""`seqzoo average`: the mean of the weights of a run's last checkpoints, as a new model."""

import os

from seqzoo.cli.common import check_output_file, positive_int
from seqzoo.errors import InputError


def run(args):
    from seqzoo.models.base import save_model
    from seqzoo.training.averaging import average_checkpoints, run_checkpoints, run_model

    out = args.out
    if not out.endswith(".keras"):
        raise InputError(f"--out {out}: expected a .keras file name")
    check_output_file(out, args.overwrite, "--out")
    paths = run_checkpoints(args.run, args.last)
    model = average_checkpoints(paths, run_model(args.run))
    save_model(model, out)
    steps = ", ".join(str(int(os.path.basename(p)[5:-4])) for p in paths)
    print(f"wrote {out}: the mean of {len(paths)} checkpoints of {args.run} (steps {steps})")
    return 0


def add_parser(commands):
    p = commands.add_parser(
        "average", help="average the weights of a run's last checkpoints into a new model",
        description="Averages the model weights of the last --last checkpoints of a seqzoo "
        "train run folder (floating-point variables; the others from the newest) and saves "
        "the result as a .keras model that seqzoo predict, eval, export and finetune take. "
        "The run keeps --keep-checkpoints checkpoints (default 3).")
    p.add_argument("--run", required=True, metavar="DIR", help="a run folder of seqzoo train")
    p.add_argument("--last", type=positive_int, default=3, metavar="N",
                   help="how many of the newest checkpoints to average (default 3)")
    p.add_argument("--out", required=True, help="the .keras file to write")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    return p
