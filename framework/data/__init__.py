"""Datasets: each yields :class:`~framework.data.base.Batch` objects for training and evaluation."""
