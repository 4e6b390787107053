"""``python -m detector.training --config training.yaml [--resume]``"""

import argparse
import logging
from pathlib import Path

from detector.training.train import TrainingConfig, train


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m detector.training", description=__doc__)
    parser.add_argument("--config", type=Path, required=True, help="training YAML (see TrainingConfig)")
    parser.add_argument("--resume", action="store_true", help="continue the run from its last.pt")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    run = train(TrainingConfig.from_yaml(args.config), resume=args.resume)
    print(f"run folder: {run}")


if __name__ == "__main__":
    main()
