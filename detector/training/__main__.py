"""``python -m detector.training --config training.yaml [--resume | --pack | --prepare]``"""

import argparse
import logging
from pathlib import Path

from detector.training.train import TrainingConfig, run_step, step_from_flags


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m detector.training", description=__doc__)
    parser.add_argument("--config", type=Path, required=True, help="training YAML (see TrainingConfig)")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--resume", action="store_true", help="continue the run from its last.pt")
    action.add_argument("--pack", action="store_true",
                        help="prepare the data and write the config's pack for a GPU machine instead of training "
                             "(detector/training/GPU.md)")
    action.add_argument("--prepare", action="store_true",
                        help="only prepare the data: the training lists and the held-out sets' YAMLs")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    step = step_from_flags(resume=args.resume, pack=args.pack, prepare=args.prepare)
    for line in run_step(TrainingConfig.from_yaml(args.config), step):
        print(line)


if __name__ == "__main__":
    main()
