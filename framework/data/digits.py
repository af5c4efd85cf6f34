"""Handwritten digits, 8x8 (the UCI "optical recognition of handwritten digits" test set).

Bundled with scikit-learn (``sklearn.datasets.load_digits``): 1797 images of 10 classes, pixel
values 0..16, no download. They are scaled to [0, 1] and split once into stratified train / val /
test parts with a fixed seed (``split_seed``), independent of the trial's seed, so that every
trial of a study sees the same split.
"""

from __future__ import annotations

from typing import Any

import torch

from framework.data.classification import ClassificationData


class Digits(ClassificationData):
    def __init__(self, spec: Any, model: Any):
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        images, labels = load_digits(return_X_y=True)
        images = images / 16.0
        rest_x, test_x, rest_y, test_y = train_test_split(
            images, labels, test_size=spec.test_fraction, stratify=labels,
            random_state=spec.split_seed)
        train_x, val_x, train_y, val_y = train_test_split(
            rest_x, rest_y, test_size=spec.val_fraction / (1 - spec.test_fraction),
            stratify=rest_y, random_state=spec.split_seed)

        def tensors(x: Any, y: Any) -> tuple[torch.Tensor, torch.Tensor]:
            return (torch.tensor(x, dtype=torch.float32).view(-1, 8, 8),
                    torch.tensor(y, dtype=torch.long))

        super().__init__({"train": tensors(train_x, train_y), "val": tensors(val_x, val_y),
                          "test": tensors(test_x, test_y)}, num_classes=10)
