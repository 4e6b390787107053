"""``python -m detector.training --config training.yaml [--resume | --pack]``"""

import argparse
import logging
from pathlib import Path

from detector.training.train import TrainingConfig, train_or_pack


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m detector.training", description=__doc__)
    parser.add_argument("--config", type=Path, required=True, help="training YAML (see TrainingConfig)")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--resume", action="store_true", help="continue the run from its last.pt")
    action.add_argument("--pack", action="store_true",
                        help="prepare the data and write the config's pack for a GPU machine instead of training "
                             "(detector/training/GPU.md)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    for line in train_or_pack(TrainingConfig.from_yaml(args.config), resume=args.resume, pack=args.pack):
        print(line)


if __name__ == "__main__":
    main()
