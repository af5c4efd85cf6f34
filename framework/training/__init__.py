"""One readable training loop (:func:`framework.training.loop.train`) and what it needs."""
