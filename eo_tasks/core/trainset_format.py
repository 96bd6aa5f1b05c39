"""The training-set file format: the contract between the trainset stage (writer) and the trainer (reader)."""

from __future__ import annotations

FORMAT = "eo-platform/training-set"
FORMAT_VERSION = 1
SPLIT_TRAIN, SPLIT_VALIDATION, SPLIT_TEST = 0, 1, 2
SPLIT_NAMES = ("train", "validation", "test")
