"""The policy update: what one learner process (or one rank of a group) runs. Log-probs of
response tokens, micro-batches, precision, the optimizer steps of a rollout, checkpoints,
PPO's critic; the `Learner` seam the training loop talks to, and its factory."""
