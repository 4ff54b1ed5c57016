"""The node agent: tails log files, checkpoints acknowledged offsets, ships over Lumberjack v2."""
