"""Everything a model file holds and how it is made: networks, losses, the healthy reference, checkpoints, training."""
