"""The `imgclf` commands, one module each (train, lr-find, evaluate, predict, export), and
their shared start-up (run directory, resolved config, seeding, loggers) in `startup`.
"""
